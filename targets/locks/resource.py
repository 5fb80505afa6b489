"""The protected resource: a PostgreSQL row per resource, and its record of accepted writes.

Every write is one statement that updates the row (bumping its ``version``) and inserts the
record row describing it (writer, op id, fencing token, the version it read, the version it
made, PostgreSQL's timestamps), so the record holds exactly the writes the resource accepted:
the ground truth the checkers judge (see :mod:`checkers.locks`).

Fencing (``fenced=True``), after Kleppmann: the row keeps ``max_token``, the highest token it
has seen; a read *registers* its token (``max_token := token`` only if no higher one was seen,
else the read is refused) and a write is refused unless its token is still the highest. Fencing
the read too matters for a read-modify-write: a holder with token 34 that reads while the
holder with token 33 is between its read and its write must make 33's write fail, or 33's write
would land and 34 would overwrite it from a stale read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from targets.locks.variants import RESOURCES

SCHEMA = """
CREATE TABLE locks_resource (
    name      text PRIMARY KEY,
    value     bigint   NOT NULL DEFAULT 0,
    elements  bigint[] NOT NULL DEFAULT '{}',
    version   bigint   NOT NULL DEFAULT 0,
    max_token bigint,
    initial   bigint   NOT NULL DEFAULT 0
);
CREATE TABLE locks_writes (
    resource   text    NOT NULL,
    seq        bigint  NOT NULL,
    based_on   bigint  NOT NULL,
    writer     text    NOT NULL,
    op_id      text    NOT NULL,
    kind       text    NOT NULL,
    arg        bigint,
    token      bigint,
    prev_value bigint,
    value      bigint,
    read_at    double precision,
    written_at double precision,
    PRIMARY KEY (resource, seq)
);
CREATE SEQUENCE locks_tokens;
""" + "".join(f"INSERT INTO locks_resource (name) VALUES ('{r}');\n" for r in RESOURCES)

_NOW = "extract(epoch from clock_timestamp())::float8"
_NOT_STALE = "(max_token IS NULL OR max_token <= %(token)s)"


@dataclass(frozen=True)
class State:
    """What a read saw."""

    value: int
    elements: list[int]
    version: int
    read_at: float


async def read(
    conn: psycopg.AsyncConnection[Any],
    resource: str,
    *,
    token: int | None = None,
    fenced: bool = False,
    for_update: bool = False,
) -> State | None:
    """The resource's state; ``None`` when a fenced read is refused (a higher token was seen)."""
    if fenced:
        if token is None:
            raise ValueError("a fenced read needs a token")
        cur = await conn.execute(
            f"UPDATE locks_resource SET max_token = %(token)s WHERE name = %(r)s AND {_NOT_STALE} "
            f"RETURNING value, elements, version, {_NOW}",
            {"r": resource, "token": token},
        )
    else:
        lock = " FOR UPDATE" if for_update else ""
        cur = await conn.execute(
            f"SELECT value, elements, version, {_NOW} FROM locks_resource WHERE name = %(r)s{lock}",
            {"r": resource},
        )
    row = await cur.fetchone()
    if row is None:
        return None
    return State(int(row[0]), [int(x) for x in row[1]], int(row[2]), float(row[3]))


async def write(
    conn: psycopg.AsyncConnection[Any],
    resource: str,
    state: State,
    *,
    kind: str,
    arg: int | None,
    op_id: str,
    writer: str,
    token: int | None,
    fenced: bool = False,
    match_version: bool = False,
) -> int | None:
    """Writes the result of a read-modify-write of ``state`` and records it, in one statement.

    Returns the version made (the record's ``seq``), or ``None`` when the resource refused it
    (a stale token when ``fenced``; a changed version when ``match_version``).
    """
    value = state.value + 1 if kind == "incr" else state.value
    elements = (
        [*state.elements, int(arg)] if kind == "append" and arg is not None else state.elements
    )
    conds = ["name = %(r)s"]
    sets = ["value = %(value)s", "elements = %(elements)s::bigint[]", "version = version + 1"]
    if fenced:
        conds.append(_NOT_STALE)
        sets.append("max_token = %(token)s")
    if match_version:
        conds.append("version = %(based_on)s")
    cur = await conn.execute(
        f"""
        WITH u AS (
            UPDATE locks_resource SET {", ".join(sets)}
            WHERE {" AND ".join(conds)}
            RETURNING version, {_NOW} AS at
        )
        INSERT INTO locks_writes (resource, seq, based_on, writer, op_id, kind, arg, token,
                                  prev_value, value, read_at, written_at)
        SELECT %(r)s, u.version, %(based_on)s, %(writer)s, %(op_id)s, %(kind)s, %(arg)s,
               %(token)s, %(prev)s, %(value)s, %(read_at)s, u.at
        FROM u
        RETURNING seq
        """,
        {
            "r": resource,
            "value": value,
            "elements": elements,
            "token": token,
            "based_on": state.version,
            "writer": writer,
            "op_id": op_id,
            "kind": kind,
            "arg": arg,
            "prev": state.value,
            "read_at": state.read_at,
        },
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


def read_record(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The final read: every resource's state and the whole record, in ``seq`` order."""
    resources: dict[str, Any] = {}
    for name, value, elements, version, max_token, initial in conn.execute(
        "SELECT name, value, elements, version, max_token, initial FROM locks_resource "
        "ORDER BY name"
    ):
        resources[name] = {
            "value": value,
            "elements": list(elements),
            "version": version,
            "max_token": max_token,
            "initial": initial,
        }
    cols = (
        "resource",
        "seq",
        "based_on",
        "writer",
        "op_id",
        "kind",
        "arg",
        "token",
        "prev_value",
        "value",
        "read_at",
        "written_at",
    )
    writes = [
        dict(zip(cols, row, strict=True))
        for row in conn.execute(
            f"SELECT {', '.join(cols)} FROM locks_writes ORDER BY resource, seq"
        )
    ]
    return {"resources": resources, "writes": writes}
