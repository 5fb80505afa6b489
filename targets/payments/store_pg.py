"""The key store on PostgreSQL: Brandur Leach's atomic phases, with a fenced lease.

Phases (each one transaction, READ COMMITTED with row locks):

1. claim: ``INSERT ... ON CONFLICT (account, key) DO NOTHING``; on conflict the existing row is
   locked (``FOR UPDATE``) and judged: fingerprint, finished (replay), leased (busy), or
   abandoned / released (taken over with a new lease token);
2. (the provider call, outside any transaction), then ``record_charge``: recovery point
   ``charge_created`` with the charge id;
3. ``finish``: the payment row, the debit and the stored response in one transaction, after
   checking that our token still holds the lease (a replica that paused past its lease cannot
   complete over the request that took the key over).

The variant's switches change exactly one of these (see ``variants.py``).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from targets.payments.store import Claim
from targets.payments.variants import VariantSpec
from targets.pg_pool import PgPool
from workbench import failpoint

_KEY_COLUMNS = (
    "id, fingerprint, locked_at IS NOT NULL AS leased, "
    "COALESCE(EXTRACT(EPOCH FROM (locked_at + make_interval(secs => %s) - now())), 0) AS left, "
    "recovery_point, charge_id, response_code, response_body"
)


class PgKeyStore:
    def __init__(self, dsn: str, spec: VariantSpec) -> None:
        self.pool = PgPool(dsn, application_name="payments")
        self.spec = spec

    async def claim(
        self, account: str, key: str, fingerprint: str, body: dict[str, Any], token: str
    ) -> Claim:
        spec = self.spec

        async def txn(conn: psycopg.AsyncConnection[Any]) -> Claim:
            async with conn.transaction():
                row_id: int | None = None
                existing: tuple[Any, ...] | None = None
                if spec.unique_key:
                    cur = await conn.execute(
                        "INSERT INTO idempotency_keys (account, key, fingerprint, request_body,"
                        " locked_at, lease_token, recovery_point)"
                        " VALUES (%s, %s, %s, %s, now(), %s, 'started')"
                        " ON CONFLICT (account, key) DO NOTHING RETURNING id",
                        (account, key, fingerprint, Jsonb(body), token),
                    )
                    inserted = await cur.fetchone()
                    if inserted is not None:
                        row_id = int(inserted[0])
                    else:
                        cur = await conn.execute(
                            f"SELECT {_KEY_COLUMNS} FROM idempotency_keys"
                            " WHERE account = %s AND key = %s FOR UPDATE",
                            (spec.lease_seconds, account, key),
                        )
                        existing = await cur.fetchone()
                    await failpoint("after-key-lookup")
                else:
                    # check-then-act: look, then insert; nothing stops two requests that both
                    # looked before either inserted.
                    cur = await conn.execute(
                        f"SELECT {_KEY_COLUMNS} FROM idempotency_keys"
                        " WHERE account = %s AND key = %s ORDER BY id LIMIT 1 FOR UPDATE",
                        (spec.lease_seconds, account, key),
                    )
                    existing = await cur.fetchone()
                    await failpoint("after-key-lookup")
                    if existing is None:
                        cur = await conn.execute(
                            "INSERT INTO idempotency_keys (account, key, fingerprint,"
                            " request_body, locked_at, lease_token, recovery_point)"
                            " VALUES (%s, %s, %s, %s, now(), %s, 'started') RETURNING id",
                            (account, key, fingerprint, Jsonb(body), token),
                        )
                        inserted = await cur.fetchone()
                        assert inserted is not None
                        row_id = int(inserted[0])
                if row_id is not None:
                    return Claim("new", row=str(row_id))
                assert existing is not None
                rid, fp, leased, left, point, charge_id, code, resp = existing
                if spec.fingerprint and fp != fingerprint:
                    return Claim("mismatch")
                if point == "finished":
                    return Claim("replay", response_code=code, response_body=resp)
                if leased and (float(left) > 0 or not spec.recover_abandoned):
                    return Claim("busy", retry_after=max(float(left), 0.1))
                await conn.execute(
                    "UPDATE idempotency_keys SET locked_at = now(), lease_token = %s WHERE id = %s",
                    (token, rid),
                )
                return Claim("resume", row=str(rid), recovery_point=point, charge_id=charge_id)

        return await self.pool.run(txn, "claim")

    async def _fenced(self, conn: psycopg.AsyncConnection[Any], claim: Claim, token: str) -> bool:
        """Locks the key's row; True when ``token`` still holds its lease (or fencing is off)."""
        cur = await conn.execute(
            "SELECT lease_token, recovery_point FROM idempotency_keys WHERE id = %s FOR UPDATE",
            (int(claim.row),),
        )
        row = await cur.fetchone()
        if not self.spec.fence:
            return row is not None
        return row is not None and row[0] == token and row[1] != "finished"

    async def record_charge(self, claim: Claim, token: str, charge_id: str) -> bool:
        async def txn(conn: psycopg.AsyncConnection[Any]) -> bool:
            async with conn.transaction():
                if not await self._fenced(conn, claim, token):
                    return False
                await conn.execute(
                    "UPDATE idempotency_keys SET recovery_point = 'charge_created',"
                    " charge_id = %s WHERE id = %s",
                    (charge_id, int(claim.row)),
                )
                return True

        return await self.pool.run(txn, "record charge")

    async def finish(
        self, claim: Claim, token: str, payment: dict[str, Any], code: int, body: Any
    ) -> bool:
        async def effect(conn: psycopg.AsyncConnection[Any]) -> bool:
            if not await self._fenced(conn, claim, token):
                return False
            await conn.execute(
                "INSERT INTO payments (id, account, key, amount_cents, currency, charge_id)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    payment["id"],
                    payment["account"],
                    payment["idempotency_key"],
                    payment["amount_cents"],
                    payment["currency"],
                    payment["charge_id"],
                ),
            )
            await conn.execute(
                "UPDATE accounts SET balance_cents = balance_cents - %s WHERE id = %s",
                (payment["amount_cents"], payment["account"]),
            )
            return True

        async def response(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(
                "UPDATE idempotency_keys SET recovery_point = 'finished', response_code = %s,"
                " response_body = %s, locked_at = NULL, lease_token = NULL WHERE id = %s",
                (code, Jsonb(body), int(claim.row)),
            )

        if self.spec.response_with_effect:

            async def txn(conn: psycopg.AsyncConnection[Any]) -> bool:
                async with conn.transaction():
                    if not await effect(conn):
                        return False
                    await response(conn)
                    await failpoint("before-response-commit")
                return True

            return await self.pool.run(txn, "finish")

        # response-saved-separately: the effect commits, then the response in a second
        # transaction; a crash in between leaves a debited payment behind a key that still
        # says charge_created, and the retry that recovers it pays again.
        async def effect_txn(conn: psycopg.AsyncConnection[Any]) -> bool:
            async with conn.transaction():
                return await effect(conn)

        async def response_txn(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction():
                await response(conn)

        if not await self.pool.run(effect_txn, "finish (effect)"):
            return False
        await failpoint("before-response-commit")
        await self.pool.run(response_txn, "finish (response)")
        return True

    async def finish_failed(self, claim: Claim, token: str, code: int, body: Any) -> bool:
        async def txn(conn: psycopg.AsyncConnection[Any]) -> bool:
            async with conn.transaction():
                if not await self._fenced(conn, claim, token):
                    return False
                await conn.execute(
                    "UPDATE idempotency_keys SET recovery_point = 'finished',"
                    " response_code = %s, response_body = %s, locked_at = NULL,"
                    " lease_token = NULL WHERE id = %s",
                    (code, Jsonb(body), int(claim.row)),
                )
                return True

        return await self.pool.run(txn, "store failure")

    async def release(self, claim: Claim, token: str) -> None:
        async def txn(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction():
                await conn.execute(
                    "UPDATE idempotency_keys SET locked_at = NULL, lease_token = NULL"
                    " WHERE id = %s AND lease_token = %s",
                    (int(claim.row), token),
                )

        await self.pool.run(txn, "release")

    async def balance(self, account: str) -> int:
        async def txn(conn: psycopg.AsyncConnection[Any]) -> int:
            async with conn.transaction():
                cur = await conn.execute(
                    "SELECT balance_cents FROM accounts WHERE id = %s", (account,)
                )
                row = await cur.fetchone()
                if row is None:
                    raise KeyError(account)
                return int(row[0])

        return await self.pool.run(txn, "balance")

    async def record(self, account: str, key: str) -> dict[str, Any] | None:
        async def txn(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any] | None:
            async with conn.transaction():
                cur = await conn.execute(
                    "SELECT recovery_point, response_code, response_body, fingerprint,"
                    " count(*) OVER () FROM idempotency_keys"
                    " WHERE account = %s AND key = %s ORDER BY id",
                    (account, key),
                )
                row = await cur.fetchone()
                if row is None:
                    return None
                return {
                    "state": row[0],
                    "response_code": row[1],
                    "response_body": row[2],
                    "fingerprint": row[3],
                    "rows": int(row[4]),
                }

        return await self.pool.run(txn, "record")

    async def ping(self) -> None:
        async def txn(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute("SELECT 1")
            await conn.rollback()

        await self.pool.run(txn, "ping")

    async def close(self) -> None:
        await self.pool.close()
