"""Payments with idempotency keys: a correct Stripe-style design on PostgreSQL and on Redis,
and the known ways to get it wrong, as variants of one target (see docs/catalogue/payments.md)."""
