"""Locks protecting a read-modify-write: Redis leases with and without fencing, PostgreSQL
advisory locks, optimistic versions and SERIALIZABLE, and the known ways to get them wrong, as
variants of one target (see docs/catalogue/locks.md)."""
