"""The key store on Redis: the same phases as on PostgreSQL, each one Lua script (atomic).

Keys: ``idem:{account}:{key}`` a hash (fp, body, state, token, locked_until, charge_id, code,
resp) and ``bal:{account}`` the balance in cents (absent means the initial balance). Leases are
judged by Redis's own clock (``TIME``, allowed in scripts since Redis 5 replicates effects), and
the charge/finish/release scripts are fenced by the lease token. Durability comes from the
server: ``appendonly yes`` + ``appendfsync always`` (the redis-volatile variant runs without).
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from targets.payments.schema import INITIAL_BALANCE_CENTS
from targets.payments.store import Claim
from targets.payments.variants import VariantSpec
from targets.pg_pool import StoreUnavailable, deadline
from workbench import failpoint

_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "

# KEYS[1] record; ARGV fp, body, token, lease_ms, check_fp, recover, keep_ms
CLAIM = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'body', ARGV[2], 'state', 'started',
             'token', ARGV[3], 'locked_until', now + tonumber(ARGV[4]))
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  return {'new'}
end
local h = redis.call('HMGET', KEYS[1], 'fp', 'state', 'locked_until', 'charge_id', 'code', 'resp')
if ARGV[5] == '1' and h[1] ~= ARGV[1] then return {'mismatch'} end
if h[2] == 'finished' then return {'replay', h[5], h[6]} end
if h[3] then
  local left = tonumber(h[3]) - now
  if left > 0 then return {'busy', tostring(left)} end
  if ARGV[6] ~= '1' then return {'busy', ARGV[4]} end
end
redis.call('HSET', KEYS[1], 'token', ARGV[3], 'locked_until', now + tonumber(ARGV[4]))
return {'resume', h[2], h[4] or ''}
"""
)

# The fence shared by the scripts below: ARGV[1] token, ARGV[2] '1' when fencing.
_FENCE = """
local h = redis.call('HMGET', KEYS[1], 'token', 'state')
if ARGV[2] == '1' and (h[1] ~= ARGV[1] or h[2] == 'finished') then return 0 end
if ARGV[2] ~= '1' and not h[2] then return 0 end
"""

# ARGV token, fence, charge_id
RECORD_CHARGE = (
    _FENCE
    + """
redis.call('HSET', KEYS[1], 'state', 'charge_created', 'charge_id', ARGV[3])
return 1
"""
)

# KEYS record, balance; ARGV token, fence, amount, code, resp, keep_ms, initial
FINISH = (
    _FENCE
    + """
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], ARGV[7]) end
redis.call('DECRBY', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'state', 'finished', 'code', ARGV[4], 'resp', ARGV[5])
redis.call('HDEL', KEYS[1], 'token', 'locked_until')
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
"""
)

# ARGV token, fence, code, resp, keep_ms
FINISH_FAILED = (
    _FENCE
    + """
redis.call('HSET', KEYS[1], 'state', 'finished', 'code', ARGV[3], 'resp', ARGV[4])
redis.call('HDEL', KEYS[1], 'token', 'locked_until')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""
)

# ARGV token
RELEASE = """
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'token', 'locked_until')
end
return 1
"""

TIMEOUT = 2.0


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class RedisKeyStore:
    def __init__(self, url: str, spec: VariantSpec) -> None:
        # No client-side retries: re-running a script whose answer was lost is not what the
        # flow asked for (a claim re-run would find its own lease and answer "busy").
        self.r = aioredis.Redis.from_url(
            url,
            socket_timeout=TIMEOUT,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
        self.spec = spec
        self.keep_ms = str(int(spec.retention_seconds * 1000))
        self.lease_ms = str(int(spec.lease_seconds * 1000))
        self.fence = "1" if spec.fence else "0"

    @staticmethod
    def _key(account: str, key: str) -> str:
        return f"idem:{account}:{key}"

    async def _eval(self, script: str, keys: list[str], args: list[str], what: str) -> Any:
        try:
            return await deadline(self.r.eval(script, len(keys), *keys, *args), TIMEOUT, what)
        except (RedisError, OSError) as e:
            raise StoreUnavailable(f"{what}: {type(e).__name__}: {e}") from e

    async def claim(
        self, account: str, key: str, fingerprint: str, body: dict[str, Any], token: str
    ) -> Claim:
        k = self._key(account, key)
        res = await self._eval(
            CLAIM,
            [k],
            [
                fingerprint,
                json.dumps(body, sort_keys=True),
                token,
                self.lease_ms,
                "1" if self.spec.fingerprint else "0",
                "1" if self.spec.recover_abandoned else "0",
                str(max(int(self.keep_ms), 24 * 3600 * 1000)),
            ],
            "claim",
        )
        await failpoint("after-key-lookup")
        kind = _s(res[0])
        if kind == "new":
            return Claim("new", row=k)
        if kind == "mismatch":
            return Claim("mismatch")
        if kind == "replay":
            return Claim("replay", response_code=int(_s(res[1])), response_body=json.loads(res[2]))
        if kind == "busy":
            return Claim("busy", retry_after=max(int(_s(res[1])) / 1000, 0.1))
        charge = _s(res[2]) or None
        return Claim("resume", row=k, recovery_point=_s(res[1]), charge_id=charge)

    async def record_charge(self, claim: Claim, token: str, charge_id: str) -> bool:
        res = await self._eval(
            RECORD_CHARGE, [claim.row], [token, self.fence, charge_id], "record charge"
        )
        return int(res) == 1

    async def finish(
        self, claim: Claim, token: str, payment: dict[str, Any], code: int, body: Any
    ) -> bool:
        # One script is one atomic step: the failpoint can only sit just before it.
        await failpoint("before-response-commit")
        res = await self._eval(
            FINISH,
            [claim.row, f"bal:{payment['account']}"],
            [
                token,
                self.fence,
                str(int(payment["amount_cents"])),
                str(code),
                json.dumps(body),
                self.keep_ms,
                str(INITIAL_BALANCE_CENTS),
            ],
            "finish",
        )
        return int(res) == 1

    async def finish_failed(self, claim: Claim, token: str, code: int, body: Any) -> bool:
        res = await self._eval(
            FINISH_FAILED,
            [claim.row],
            [token, self.fence, str(code), json.dumps(body), self.keep_ms],
            "store failure",
        )
        return int(res) == 1

    async def release(self, claim: Claim, token: str) -> None:
        await self._eval(RELEASE, [claim.row], [token], "release")

    async def balance(self, account: str) -> int:
        try:
            v = await deadline(self.r.get(f"bal:{account}"), TIMEOUT, "balance")
        except (RedisError, OSError) as e:
            raise StoreUnavailable(f"balance: {e}") from e
        return INITIAL_BALANCE_CENTS if v is None else int(v)

    async def record(self, account: str, key: str) -> dict[str, Any] | None:
        try:
            h = await deadline(
                self.r.hmget(self._key(account, key), ["state", "code", "resp", "fp"]),
                TIMEOUT,
                "record",
            )
        except (RedisError, OSError) as e:
            raise StoreUnavailable(f"record: {e}") from e
        if h[0] is None:
            return None
        return {
            "state": _s(h[0]),
            "response_code": int(_s(h[1])) if h[1] is not None else None,
            "response_body": json.loads(h[2]) if h[2] is not None else None,
            "fingerprint": _s(h[3]) if h[3] is not None else None,
            "rows": 1,
        }

    async def ping(self) -> None:
        try:
            await deadline(self.r.ping(), TIMEOUT, "ping")
        except (RedisError, OSError) as e:
            raise StoreUnavailable(f"ping: {e}") from e

    async def close(self) -> None:
        await self.r.aclose()
