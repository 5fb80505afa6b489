"""The outbox target: an order service, its transactional outbox, a relay and a consumer.

Topology (every edge a Toxiproxy link): PostgreSQL ``pg`` (the order service's tables and the
consumer's schema; ``wal_level=logical`` for the change-data-capture variants), Redis ``redis``
(the broker: one stream per partition, AOF ``appendfsync always`` unless the variant says not),
``orders-api`` (two replicas, reached through ``client->orders-api-{i}``), ``relay`` (one or two
replicas, for variants with an outbox: ``relay-{i}->pg``, ``relay-{i}->redis``) and ``consumer``
(two replicas, one per partition: ``consumer-{i}->pg``, ``consumer-{i}->redis``). Variants that
publish from the API also get ``orders-api-{i}->redis``.

Ground truth, read in the final phase: the order service's committed changes, the consumer's
effects (how often each was applied) and the streams.
"""

from __future__ import annotations

from collections.abc import Mapping

from checkers.aggregate_order import AggregateOrder
from checkers.delivery_lag import DeliveryLag
from checkers.messages import DuplicateEffects, LostMessages, PhantomMessages
from targets.outbox.client import API, CONSUMER, RELAY, OutboxClient
from targets.outbox.schema import SQL
from targets.outbox.variants import ENV_VAR, SLEEP_MS, VARIANTS, Variant, variant
from targets.outbox.workload import Book, OrdersWorkload, final_phase
from workbench import Options, Plan, Postgres, Redis, Service, Topology

API_REPLICAS = 2
CONSUMERS = 2

LATE_COMMIT = (
    f"failpoint:service={API}:point=before-commit:action=sleep:ms={SLEEP_MS}:probability=0.3"
)

#: Every kind of fault, aimed at this target; ``relay`` ones apply to variants with a relay.
ALL_FAULTS: tuple[str, ...] = (
    f"kill:service={API}",
    f"kill:service={RELAY}",
    f"kill:service={CONSUMER}",
    f"pause:service={RELAY}",
    f"pause:service={CONSUMER}",
    "partition:links=client->*:select=one",
    f"partition:links={RELAY}-*->redis:select=one",
    f"partition:links={RELAY}-*->pg:select=one",
    f"partition:links={CONSUMER}-*->pg:select=one",
    f"partition:links={CONSUMER}-*->redis:select=one",
    f"latency:links={API}-*->pg:latency=150:jitter=50:select=one",
    f"latency:links={RELAY}-*->redis:latency=150:jitter=50:select=one",
    "redis-kill",
    "pg-crash",
    "pg-terminate",
    LATE_COMMIT,
    f"failpoint:service={API}:point=before-commit:action=crash",
    f"failpoint:service={API}:point=after-commit:action=crash",
    f"failpoint:service={RELAY}:point=after-claim:action=crash",
    f"failpoint:service={RELAY}:point=after-publish:action=crash",
    f"failpoint:service={CONSUMER}:point=after-apply:action=crash",
    f"failpoint:service={CONSUMER}:point=after-ack:action=crash",
)

#: The catalogue's fault mix per bug variant (docs/catalogue/outbox.md says why).
BUG_FAULTS: dict[str, tuple[str, ...]] = {
    "dual-write": (
        f"failpoint:service={API}:point=after-commit:action=crash",
        f"partition:links={API}-*->redis:select=one",
    ),
    "publish-before-commit": (
        f"failpoint:service={API}:point=before-commit:action=raise:probability=0.2:replicas=all",
        f"failpoint:service={API}:point=before-commit:action=crash",
    ),
    "mark-before-publish": (
        f"failpoint:service={RELAY}:point=after-claim:action=crash",
        f"partition:links={RELAY}-*->redis:select=one",
    ),
    "no-inbox": (
        f"failpoint:service={RELAY}:point=after-publish:action=crash",
        f"failpoint:service={RELAY}:point=after-publish:action=raise:probability=0.3:replicas=all",
    ),
    "serial-cursor": (
        LATE_COMMIT,
        f"latency:links={API}-*->pg:latency=150:jitter=50:select=one",
    ),
    "racing-relays": (f"latency:links={RELAY}-*->redis:latency=50:jitter=20:select=all",),
    "unordered-skip-locked": (
        f"latency:links={RELAY}-*->redis:latency=150:jitter=50:select=one",
        f"pause:service={RELAY}",
    ),
    "no-reclaim": (
        f"failpoint:service={RELAY}:point=after-claim:action=crash",
        f"partition:links={RELAY}-*->redis:select=one",
    ),
    "ack-before-apply": (
        f"failpoint:service={CONSUMER}:point=after-ack:action=crash",
        f"partition:links={CONSUMER}-*->pg:select=one",
    ),
    "volatile-broker": (
        "redis-kill",
        f"latency:links={CONSUMER}-*->pg:latency=200:jitter=50:select=all",
    ),
    "cdc-advance-first": (
        f"failpoint:service={RELAY}:point=after-claim:action=crash",
        f"partition:links={RELAY}-*->redis:select=one",
    ),
}


def all_faults(spec: Variant) -> list[str]:
    """:data:`ALL_FAULTS` that apply to the variant (no relay faults without a relay)."""
    return [f for f in ALL_FAULTS if spec.has_relay or f"{RELAY}" not in f]


class OutboxTarget:
    name = "outbox"
    description = (
        "an order service with a transactional outbox on PostgreSQL, a relay to Redis Streams "
        "and a deduplicating consumer, and the known ways to lose or duplicate a message"
    )
    variants: Mapping[str, str] = {name: v.line for name, v in VARIANTS.items()}

    def plan(self, variant_name: str, options: Options) -> Plan:
        spec = variant(variant_name)
        # The final phase retries the commands the main phase left indeterminate: both
        # generators of one campaign share this book, and nothing else does.
        book = Book()
        return Plan(
            topology=topology(spec),
            client=OutboxClient,
            workload=OrdersWorkload(book, replicas=API_REPLICAS),
            final=final_phase(book, replicas=API_REPLICAS),
            checkers=[
                LostMessages(),
                PhantomMessages(),
                DuplicateEffects(),
                AggregateOrder(),
                DeliveryLag(),
            ],
            faults=list(BUG_FAULTS.get(variant_name, ())) or all_faults(spec),
            op_timeout=5.0,
            notes={"correct": spec.correct, "relay": spec.relay, "consume": spec.consume},
        )


def topology(spec: Variant) -> Topology:
    env = {ENV_VAR: spec.name}
    api_deps = ["pg"] if spec.write == "outbox" else ["pg", "redis"]
    services = [Service.asgi(API, "targets.outbox.api:app", replicas=API_REPLICAS, env=env,
                             depends_on=api_deps)]  # fmt: skip
    if spec.has_relay:
        services.append(
            Service.asgi(
                RELAY,
                "targets.outbox.relay:app",
                replicas=spec.relays,
                env=env,
                depends_on=["pg", "redis"],
                client_facing=False,
            )
        )
    services.append(
        Service.asgi(
            CONSUMER,
            "targets.outbox.consumer:app",
            replicas=CONSUMERS,
            env=env,
            depends_on=["pg", "redis"],
            client_facing=False,
        )
    )
    settings = {"wal_level": "logical", "max_replication_slots": "4"} if spec.uses_slot else {}
    return Topology(
        postgres=[Postgres("pg", init_sql=SQL, settings=settings)],
        redis=[Redis("redis", persistence="aof-always" if spec.durable_broker else "none")],
        services=services,
    )
