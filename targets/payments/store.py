"""What the payments API needs from its key store, whichever database holds it.

The API's flow (``api.py``) is written once against :class:`KeyStore`; ``store_pg.py`` and
``store_redis.py`` implement it, each honouring the variant's switches where the idea lives.
Every method may raise :class:`targets.pg_pool.StoreUnavailable` (outcome unknown).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal, Protocol

ClaimKind = Literal["new", "resume", "replay", "busy", "mismatch"]


@dataclass(frozen=True)
class Claim:
    """The answer to "may this request work on this key?".

    - ``new`` / ``resume``: yes; the request now holds the lease (``token``) and continues from
      ``recovery_point`` (``started`` or ``charge_created``, with ``charge_id``); ``row`` names
      the key's record for later phases;
    - ``replay``: the key is finished: answer ``response_code`` / ``response_body`` verbatim;
    - ``busy``: another request holds the lease (answer 409 after ``retry_after`` seconds);
    - ``mismatch``: the key was used with a different request body (answer 422).
    """

    kind: ClaimKind
    row: str = ""
    recovery_point: str = "started"
    charge_id: str | None = None
    response_code: int | None = None
    response_body: Any = None
    retry_after: float = 1.0


class KeyStore(Protocol):
    async def claim(
        self, account: str, key: str, fingerprint: str, body: dict[str, Any], token: str
    ) -> Claim: ...

    async def record_charge(self, claim: Claim, token: str, charge_id: str) -> bool:
        """Recovery point ``charge_created``; False when the lease was lost (fenced out)."""

    async def finish(
        self, claim: Claim, token: str, payment: dict[str, Any], code: int, body: Any
    ) -> bool:
        """The payment, the debit and the stored response; False when fenced out."""

    async def finish_failed(self, claim: Claim, token: str, code: int, body: Any) -> bool:
        """Stores a failure as the key's final response (only the caches-5xx variant)."""

    async def release(self, claim: Claim, token: str) -> None:
        """Gives the lease up (so a retry may continue at once); fenced by ``token``."""

    async def balance(self, account: str) -> int: ...

    async def record(self, account: str, key: str) -> dict[str, Any] | None:
        """What the store holds for a key: ``{"state", "response_code", "response_body",
        "fingerprint", "rows"}`` or None."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


def fingerprint(body: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the request body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def downstream_key(account: str, key: str, record: str) -> str:
    """The provider-side idempotency key, derived from the key's *record* as in Brandur's
    rocket-rides-atomic (``"rocket-rides-atomic-#{key.id}"``): every retry that resumes the
    record presents the same key to the provider, so it charges at most once. ``record`` is the
    claim's ``row`` (the PostgreSQL row id; the Redis record's name). Where one client key can
    get two records (check-then-act), each record charges on its own."""
    digest = hashlib.sha256(f"{account}\x00{key}\x00{record}".encode()).hexdigest()
    return "pay_" + digest[:32]
