"""Tables, seed rows and constants shared by the services, the workload and the checkers.

One PostgreSQL server holds two schemas that share nothing: ``public`` is the payments API's
store (PG variants), ``provider`` is the fake payment provider's ledger (every variant; the
provider's ground truth lives in a durable database so no fault can lose it).
"""

from __future__ import annotations

ACCOUNTS: tuple[str, ...] = ("acct-1", "acct-2", "acct-3", "acct-4")
#: Every account starts with $1,000,000.00; the workload never runs one dry.
INITIAL_BALANCE_CENTS = 100_000_000
CURRENCIES: tuple[str, ...] = ("usd", "eur")

PROVIDER_SQL = """
CREATE SCHEMA IF NOT EXISTS provider;
CREATE TABLE IF NOT EXISTS provider.charges (
    seq             bigserial PRIMARY KEY,
    id              text NOT NULL UNIQUE,
    -- The downstream idempotency key the caller sent (NULL when none): honoured as Stripe does.
    idempotency_key text UNIQUE,
    account         text NOT NULL,
    amount_cents    bigint NOT NULL,
    currency        text NOT NULL,
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);
"""


def api_sql(unique_key: bool = True) -> str:
    """The API's tables in ``public`` with the seeded accounts. ``unique_key=False`` leaves out
    the (account, key) constraint (the check-then-act variant)."""
    unique = ",\n    UNIQUE (account, key)" if unique_key else ""
    seeds = ", ".join(f"('{a}', {INITIAL_BALANCE_CENTS})" for a in ACCOUNTS)
    return f"""
CREATE TABLE IF NOT EXISTS accounts (
    id            text PRIMARY KEY,
    balance_cents bigint NOT NULL
);
INSERT INTO accounts (id, balance_cents) VALUES {seeds} ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS idempotency_keys (
    id             bigserial PRIMARY KEY,
    account        text NOT NULL,
    key            text NOT NULL,
    fingerprint    text NOT NULL,
    request_body   jsonb NOT NULL,
    -- The lease: a request owns the key while locked_at is recent (judged by the database's
    -- clock) and lease_token is its token; completions are fenced by the token.
    locked_at      timestamptz,
    lease_token    text,
    recovery_point text NOT NULL,  -- started | charge_created | finished
    charge_id      text,
    response_code  int,
    response_body  jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(){unique}
);
CREATE INDEX IF NOT EXISTS idempotency_keys_lookup ON idempotency_keys (account, key);
CREATE TABLE IF NOT EXISTS payments (
    id           text PRIMARY KEY,
    account      text NOT NULL,
    key          text NOT NULL,
    amount_cents bigint NOT NULL,
    currency     text NOT NULL,
    charge_id    text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
"""


def init_sql(store: str, unique_key: bool = True) -> str:
    """Everything the PostgreSQL server needs for a variant: the provider's schema always, the
    API's tables when the API stores its keys in PostgreSQL."""
    return PROVIDER_SQL + (api_sql(unique_key) if store == "pg" else "")
