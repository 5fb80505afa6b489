"""The outbox target's tables: the order service's (public schema) and the consumer's own.

Order service:

- ``orders``: one row per order, its ``status`` and ``version`` (1 when placed, +1 per change);
- ``order_changes``: one row per committed change, the event it must produce (``event_id``) and
  ``committed_at`` (epoch seconds, the server's clock, taken in the change's transaction). Not
  part of the pattern: the ground truth the checkers compare the consumer's effects with;
- ``commands``: the idempotency record of each client command (its answer, and for the
  side-effect machine the messages to send again on a replay);
- ``outbox``: insert-only event rows, as Debezium's outbox router expects (``id`` BIGSERIAL,
  ``txid`` the writing transaction's id), plus the relay's bookkeeping columns;
- ``relay_cursor``: where a cursor relay stands.

Consumer (schema ``consumer``): ``inbox`` (processed event ids), ``effects`` (each event's
effect with how often it was applied and delivered, and when first applied), ``order_view``
(the projection the effects build), ``apply_seq`` (global order of first applications).
"""

from __future__ import annotations

SQL = """
CREATE TABLE orders (
    order_id text PRIMARY KEY,
    status text NOT NULL,
    version int NOT NULL
);
CREATE TABLE order_changes (
    event_id uuid PRIMARY KEY,
    order_id text NOT NULL,
    version int NOT NULL,
    status text NOT NULL,
    command text NOT NULL,
    committed_at double precision NOT NULL
);
CREATE TABLE commands (
    command text PRIMARY KEY,
    result jsonb NOT NULL,
    messages jsonb NOT NULL
);
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id uuid NOT NULL UNIQUE,
    aggregate_id text NOT NULL,
    version int NOT NULL,
    payload jsonb NOT NULL,
    claimed_by text,
    claimed_at timestamptz,
    sent_at timestamptz
);
CREATE INDEX outbox_unsent ON outbox (aggregate_id, version) WHERE sent_at IS NULL;
CREATE TABLE relay_cursor (
    relay text PRIMARY KEY,
    last_tx xid8 NOT NULL,
    last_id bigint NOT NULL
);

CREATE SCHEMA consumer;
CREATE TABLE consumer.inbox (
    event_id uuid PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE SEQUENCE consumer.apply_seq;
CREATE TABLE consumer.effects (
    event_id uuid PRIMARY KEY,
    order_id text NOT NULL,
    version int NOT NULL,
    status text NOT NULL,
    command text NOT NULL,
    applied int NOT NULL,
    deliveries int NOT NULL,
    first_seq bigint NOT NULL,
    applied_at double precision NOT NULL
);
CREATE TABLE consumer.order_view (
    order_id text PRIMARY KEY,
    status text NOT NULL,
    version int NOT NULL
);
"""
