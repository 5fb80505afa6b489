"""The outbox target's variants: one correct or buggy way each to get an order's events from its
transaction to the consumer's effect.

A variant is a handful of switches read by the target (topology, faults) and by every service
(the API's write path, the relay's loop, the consumer's apply). Services get the variant's name
in ``OUTBOX_VARIANT`` and look it up here, so all of them always agree. docs/catalogue/outbox.md
gives each bug's interleaving, the faults that expose it and the checker that reports it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

ENV_VAR = "OUTBOX_VARIANT"

#: How the API gets an event to the broker.
#: ``outbox``: an outbox row in the order's transaction (a relay publishes it);
#: ``dual-write``: commit, then publish directly;
#: ``publish-before-commit``: publish inside the transaction, then commit;
#: ``side-effect-machine``: the handler returns rows and messages as data; the runner commits
#: the rows with an idempotency record holding the messages, then sends them, and sends them
#: again whenever a retry hits the idempotency record.
Write = Literal["outbox", "dual-write", "publish-before-commit", "side-effect-machine"]

#: How the relay finds what to publish (``none``: there is no relay).
#: ``skip-locked``: claim rows ``FOR UPDATE SKIP LOCKED`` in a transaction held while publishing,
#: then mark them sent in it;
#: ``mark-first``: mark rows sent (commit), then publish;
#: ``claim-column``: stamp ``claimed_by`` (commit), publish, mark sent; claims never expire;
#: ``no-lock``: read unsent rows without locking, publish, mark;
#: ``serial-cursor``: ``id > last`` by the BIGSERIAL id;
#: ``xid-cursor``: ``(txid, id) > last`` below the snapshot's xmin;
#: ``cdc``: a logical replication slot, advanced after the broker acknowledged;
#: ``cdc-advance-first``: the slot consumed first (``pg_logical_slot_get_changes``).
Relay = Literal[
    "none",
    "skip-locked",
    "mark-first",
    "claim-column",
    "no-lock",
    "serial-cursor",
    "xid-cursor",
    "cdc",
    "cdc-advance-first",
]

#: ``inbox``: processed ids in the effect's transaction, ack after commit;
#: ``no-inbox``: apply every delivery, ack after commit;
#: ``ack-first``: ack, then apply (with the inbox).
Consume = Literal["inbox", "no-inbox", "ack-first"]

PARTITIONS = 2
"""Streams ``orders.events.0`` .. ``.1``; an order's events all go to one (by crc32 of its id),
and consumer replica ``i`` alone reads partition ``i - 1``, as a Kafka partition would."""

STREAM_PREFIX = "orders.events"
GROUP = "consumers"
SLOT = "outbox_relay"

SLEEP_MS = 300
"""Stall of the API's late-commit failpoint: long enough for later transactions to commit."""


@dataclass(frozen=True)
class Variant:
    name: str
    line: str
    correct: bool
    write: Write = "outbox"
    relay: Relay = "skip-locked"
    relays: int = 1
    per_aggregate_order: bool = True
    """The skip-locked relay claims only an aggregate's oldest unsent event."""
    consume: Consume = "inbox"
    durable_broker: bool = True

    @property
    def has_relay(self) -> bool:
        return self.relay != "none"

    @property
    def uses_slot(self) -> bool:
        return self.relay in ("cdc", "cdc-advance-first")


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "skip-locked",
            "two polling relays claim rows FOR UPDATE SKIP LOCKED, oldest unsent event per "
            "order only, publish then mark; consumer dedups through an inbox (correct)",
            True,
            relays=2,
        ),
        Variant(
            "xid-cursor",
            "a cursor relay over (transaction id, id), reading only below the snapshot's xmin "
            "so a late commit is never skipped (correct)",
            True,
            relay="xid-cursor",
        ),
        Variant(
            "cdc",
            "change data capture: the relay reads outbox inserts from a logical replication "
            "slot and advances it after the broker acknowledged, as Debezium does (correct)",
            True,
            relay="cdc",
        ),
        Variant(
            "side-effect-machine",
            "the handler returns rows and messages as data; the runner commits them with an "
            "idempotency record and sends the messages again on every replay (correct)",
            True,
            write="side-effect-machine",
            relay="none",
        ),
        Variant(
            "dual-write",
            "commit the order, then publish to the broker directly: a crash in between loses "
            "the event",
            False,
            write="dual-write",
            relay="none",
        ),
        Variant(
            "publish-before-commit",
            "publish inside the transaction, then commit: a rolled-back order leaves a "
            "phantom message",
            False,
            write="publish-before-commit",
            relay="none",
        ),
        Variant(
            "mark-before-publish",
            "the relay marks rows sent and commits, then publishes: a relay crash in between "
            "loses them",
            False,
            relay="mark-first",
        ),
        Variant(
            "no-inbox",
            "correct relays, but the consumer applies every delivery: a relay crash between "
            "publish and mark applies an effect twice",
            False,
            relays=2,
            consume="no-inbox",
        ),
        Variant(
            "serial-cursor",
            "the relay's cursor is the BIGSERIAL id (id > last): a transaction that took its "
            "id early and committed late is skipped",
            False,
            relay="serial-cursor",
        ),
        Variant(
            "racing-relays",
            "two relays read unsent rows without claiming them and the consumer trusts "
            "once-only publication: both publish, the effect applies twice",
            False,
            relay="no-lock",
            relays=2,
            consume="no-inbox",
        ),
        Variant(
            "unordered-skip-locked",
            "two SKIP LOCKED relays without per-order ordering: while one holds an order's "
            "'paid', the other publishes its 'shipped' first",
            False,
            relays=2,
            per_aggregate_order=False,
        ),
        Variant(
            "no-reclaim",
            "the relay stamps claimed_by, publishes, then marks; rows claimed by a relay that "
            "died are never reclaimed",
            False,
            relay="claim-column",
        ),
        Variant(
            "ack-before-apply",
            "the consumer acknowledges a message, then applies it: a crash in between loses "
            "the effect",
            False,
            consume="ack-first",
            relays=2,
        ),
        Variant(
            "volatile-broker",
            "the broker keeps streams in memory only: a Redis restart loses what was not yet "
            "consumed",
            False,
            relays=2,
            durable_broker=False,
        ),
        Variant(
            "cdc-advance-first",
            "change data capture that consumes the slot before publishing: a relay crash in "
            "between loses the events",
            False,
            relay="cdc-advance-first",
        ),
    )
}


def variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(
            f"unknown outbox variant {name!r}; variants: {', '.join(VARIANTS)}"
        ) from None


def from_env() -> Variant:
    """The variant named by ``OUTBOX_VARIANT`` (services call this at start)."""
    return variant(os.environ.get(ENV_VAR, "skip-locked"))
