"""The payments target: what to start, how to drive it, which faults expose which variant and
which checkers judge it.

Topology: PostgreSQL ``pg`` (the provider's ledger always; the API's keys for PG variants),
Redis ``redis`` for Redis variants, the ``provider`` service (one replica, its state in PG so a
kill loses nothing) and ``payments-api`` (two replicas). Every edge goes through Toxiproxy:
``client->payments-api-{i}``, ``payments-api-{i}->pg|redis``, ``payments-api-{i}->provider``,
``provider-1->pg``.
"""

from __future__ import annotations

from collections.abc import Mapping

from checkers.conservation import Conservation
from checkers.idempotency import DoubleCharge, Fingerprint, ReplayConsistency
from checkers.liveness import Liveness
from targets.payments.client import API, PROVIDER, PaymentsClient
from targets.payments.schema import PROVIDER_SQL, init_sql
from targets.payments.variants import ENV_VAR, VARIANTS, VariantSpec, variant
from targets.payments.workload import Ledger, PaymentsWorkload, final_phase
from workbench import Options, Plan, Postgres, Redis, Service, Topology

API_REPLICAS = 2

#: Every kind of fault the workbench has, aimed at this target (``{store}`` is pg or redis).
ALL_FAULTS: tuple[str, ...] = (
    "kill:service=payments-api",
    "kill:service=provider",
    "pause:service=payments-api",
    "partition:links=client->*:select=one",
    "partition:links=payments-api-*->{store}:select=one",
    "partition:links=payments-api-*->provider:select=one",
    "partition-oneway:links=payments-api-*->provider:stream=downstream",
    "partition-oneway:links=client->*:stream=downstream:select=one",
    "latency:links=payments-api-*->provider:latency=800:jitter=300",
    "latency:links=payments-api-*->{store}:latency=100:jitter=50",
    "timeout:links=client->*:timeout=500:select=one",
    "reset-peer:links=payments-api-*->{store}:timeout=200:toxicity=0.5",
    "{db-crash}",
    "pg-terminate",
    "clock:service=payments-api:select=all",
    "failpoint:point=after-claim:action=crash",
    "failpoint:point=after-provider-charge:action=crash",
    "failpoint:point=before-response-commit:action=crash",
    "failpoint:point=after-response-commit:action=crash",
    "failpoint:point=after-provider-charge:action=pause",
    "failpoint:point=before-response-commit:action=raise:probability=0.5:replicas=all",
    "failpoint:point=after-key-lookup:action=sleep:ms=300:replicas=all",
    "failpoint:service=provider:point=provider-after-charge:action=raise:probability=0.3",
)

#: The catalogue's fault mix per bug variant (docs/catalogue/payments.md says why).
BUG_FAULTS: dict[str, tuple[str, ...]] = {
    "check-then-act": (
        "failpoint:point=after-key-lookup:action=sleep:ms=300:replicas=all",
        "latency:links=payments-api-*->pg:latency=60:jitter=20",
    ),
    "response-saved-separately": (
        "failpoint:point=before-response-commit:action=crash",
        "failpoint:point=before-response-commit:action=raise:probability=0.5:replicas=all",
    ),
    "no-fingerprint": (
        "kill:service=payments-api",
        "partition:links=client->*:select=one",
    ),
    "caches-5xx": (
        "failpoint:service=provider:point=provider-after-charge:action=raise:probability=0.3",
        "partition-oneway:links=payments-api-*->provider:stream=downstream",
    ),
    "no-downstream-key": (
        "failpoint:service=provider:point=provider-after-charge:action=raise:probability=0.3",
        "partition-oneway:links=payments-api-*->provider:stream=downstream",
        "failpoint:point=after-provider-charge:action=crash",
    ),
    "short-lease": (
        "failpoint:point=after-provider-charge:action=sleep:ms=600:replicas=all",
        "latency:links=payments-api-*->provider:latency=500:jitter=100",
    ),
    "redis-ttl": (
        "partition-oneway:links=client->*:stream=downstream:select=one",
        "kill:service=payments-api",
    ),
    "redis-volatile": ("redis-kill",),
    "pending-forever": (
        "failpoint:point=after-provider-charge:action=crash",
        "kill:service=payments-api",
    ),
}


def all_faults(spec: VariantSpec) -> list[str]:
    """:data:`ALL_FAULTS` filled in for the variant's store."""
    crash = "pg-crash" if spec.store == "pg" else "redis-kill"
    return [f.replace("{store}", spec.store).replace("{db-crash}", crash) for f in ALL_FAULTS]


class PaymentsTarget:
    name = "payments"
    description = (
        "payments with idempotency keys (Stripe-style) on PostgreSQL or Redis, a fake provider "
        "keeping the ground truth, and the known ways to get it wrong"
    )
    variants: Mapping[str, str] = {name: v.description for name, v in VARIANTS.items()}

    def plan(self, variant_name: str, options: Options) -> Plan:
        spec = variant(variant_name)
        # The final phase retries the keys the main workload left unresolved: both generators
        # of one campaign share this ledger, and nothing else does.
        ledger = Ledger()
        return Plan(
            topology=topology(variant_name, spec),
            client=PaymentsClient,
            workload=PaymentsWorkload(ledger, replicas=API_REPLICAS),
            final=final_phase(ledger, replicas=API_REPLICAS, lease_seconds=spec.lease_seconds),
            checkers=[
                DoubleCharge(),
                ReplayConsistency(),
                Fingerprint(),
                Conservation(),
                Liveness(),
            ],
            faults=list(BUG_FAULTS.get(variant_name, ())) or all_faults(spec),
            # Seconds before a request counts as indeterminate (info): above the API's own
            # worst case.
            op_timeout=5.0,
        )


def topology(variant_name: str, spec: VariantSpec) -> Topology:
    store = spec.store
    return Topology(
        postgres=[Postgres("pg", init_sql=init_sql(store, spec.unique_key))]
        if store == "pg"
        else [Postgres("pg", init_sql=PROVIDER_SQL)],
        redis=[Redis("redis", persistence="aof-always" if spec.durable_store else "none")]
        if store == "redis"
        else [],
        services=[
            Service.asgi(
                PROVIDER,
                "targets.payments.provider:app",
                depends_on=["pg"],
                client_facing=False,
            ),
            Service.asgi(
                API,
                "targets.payments.api:app",
                replicas=API_REPLICAS,
                env={ENV_VAR: variant_name},
                depends_on=[store, PROVIDER],
                # Under libfaketime so the clock fault applies: leases are judged by the store's
                # clock, so shifting a replica's clock must change nothing.
                faketime=True,
            ),
        ],
    )
