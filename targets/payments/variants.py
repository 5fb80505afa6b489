"""The variants of the payments target: one frozen record of switches per variant.

Each bug variant differs from its correct sibling (``correct-pg`` or ``correct-redis``) in one
idea, named by the variant; the service code reads these switches at the point where the idea
lives. ``docs/catalogue/payments.md`` explains each one (interleaving, fault, checker signal).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Literal

Store = Literal["pg", "redis"]

#: Lease (``locked_at``) of the correct variants. Leases are judged by the store's clock (PG
#: ``now()``, Redis ``TIME``), never the replica's, and completions are fenced by a lease token,
#: so the lease only bounds how long an abandoned request blocks its key.
LEASE_SECONDS = 3.0
#: Retention of finished keys in Redis (Stripe keeps keys 24 hours).
RETENTION_SECONDS = 24 * 3600


@dataclass(frozen=True)
class VariantSpec:
    """Switches read by the services. Defaults are the correct design."""

    name: str
    description: str
    store: Store = "pg"
    unique_key: bool = True  # check-then-act: False (SELECT, then INSERT, no constraint)
    response_with_effect: bool = True  # response-saved-separately: False
    fingerprint: bool = True  # no-fingerprint: False
    cache_5xx: bool = False  # caches-5xx: True
    downstream_key: bool = True  # no-downstream-key: False
    lease_seconds: float = LEASE_SECONDS
    fence: bool = True  # short-lease: False (completions trust the lease, as Brandur's code)
    recover_abandoned: bool = True  # pending-forever: False
    retention_seconds: float = RETENTION_SECONDS  # redis-ttl: 2
    durable_store: bool = True  # redis-volatile: False (no AOF: a Redis restart forgets all)


_PG = VariantSpec("correct-pg", "Stripe-style atomic phases on PostgreSQL (the reference)")
_REDIS = VariantSpec(
    "correct-redis",
    "the same contract on Redis: Lua claim/complete scripts, AOF appendfsync always",
    store="redis",
)

VARIANTS: dict[str, VariantSpec] = {
    v.name: v
    for v in (
        _PG,
        _REDIS,
        replace(
            _PG,
            name="check-then-act",
            description="looks the key up, then inserts it: no unique (account, key) constraint",
            unique_key=False,
        ),
        replace(
            _PG,
            name="response-saved-separately",
            description="payment and debit commit in one transaction, the stored response in a "
            "second one",
            response_with_effect=False,
        ),
        replace(
            _PG,
            name="no-fingerprint",
            description="replays the stored response to a reused key whatever the request body",
            fingerprint=False,
        ),
        replace(
            _PG,
            name="caches-5xx",
            description="stores a provider failure (502) as the key's final response",
            cache_5xx=True,
        ),
        replace(
            _PG,
            name="no-downstream-key",
            description="calls the provider without an idempotency key of its own",
            downstream_key=False,
        ),
        replace(
            _PG,
            name="short-lease",
            description="a 0.2 s lease, shorter than a provider call, and unfenced completions",
            lease_seconds=0.2,
            fence=False,
        ),
        replace(
            _REDIS,
            name="redis-ttl",
            description="finished key records expire after 2 s instead of 24 h",
            retention_seconds=2.0,
        ),
        replace(
            _REDIS,
            name="redis-volatile",
            description="Redis without persistence: a restart forgets keys and balances",
            durable_store=False,
        ),
        replace(
            _PG,
            name="pending-forever",
            description="never recovers a key whose request died holding its lease (liveness)",
            recover_abandoned=False,
        ),
    )
}

CORRECT_VARIANTS = ("correct-pg", "correct-redis")
ENV_VAR = "PAYMENTS_VARIANT"


def variant(name: str) -> VariantSpec:
    """The spec of variant ``name``; raises ValueError naming the known ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(
            f"unknown payments variant {name!r}; known: {', '.join(VARIANTS)}"
        ) from None


def from_env() -> VariantSpec:
    """The variant a service replica runs, from ``PAYMENTS_VARIANT`` (default ``correct-pg``)."""
    return variant(os.environ.get(ENV_VAR, "correct-pg"))
