"""The locks target's operations.

Main phase: each operation is one locked increment (``incr``) or one append of a unique element
(``append``) on a resource drawn at random from :data:`RESOURCES`; variants with ``probes``
also take and release the probe lock (``acquire`` then, as that worker's very next operation,
``release``, with a fresh owner id each time: the mutex model's owner).

Final phase, after every fault is healed: a pause longer than a lease (so leases of dead holders
run out), then per resource a locked increment marked ``"final": true`` retried until one
succeeds (at most 3 tries; the lock-liveness checker judges these), then one ``read-resource``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from targets.locks.variants import LEASE_MS, RESOURCES, Variant
from workbench import Completion, Context, Generator, Op, Options, Step, gen

INCR_SHARE = 0.6
PROBE_SHARE = 0.2


class LockedOps:
    """Increments and appends; with ``probes``, acquire/release pairs too."""

    def __init__(self, probes: bool, ids: Iterator[int]) -> None:
        self.probes = probes
        self.ids = ids
        self.holding: dict[int, str] = {}  # worker -> owner whose release is due
        self._in_flight: dict[int, tuple[int, str]] = {}

    def next(self, ctx: Context) -> Step:
        n = next(self.ids)
        owner = self.holding.get(ctx.worker)
        if owner is not None:
            op = Op("release", owner)
        elif self.probes and ctx.rng.random() < PROBE_SHARE:
            op = Op("acquire", f"w{ctx.worker}.o{n}")
        else:
            op = locked_op(ctx, n)
        if op.f in ("acquire", "release"):
            self._in_flight[id(op)] = (ctx.worker, str(op.value))
        return op

    def update(self, ctx: Context, op: Op, completion: Completion) -> None:
        entry = self._in_flight.pop(id(op), None)
        if entry is None:
            return
        worker, owner = entry
        if op.f == "acquire" and completion.type != "fail":
            self.holding[worker] = owner  # ok or unknown: release it next
        elif op.f == "release":
            self.holding.pop(worker, None)


def locked_op(ctx: Context, n: int, resource: str | None = None, final: bool = False) -> Op:
    r = resource if resource is not None else RESOURCES[ctx.rng.randrange(len(RESOURCES))]
    value: dict[str, object] = {"op_id": f"{'f' if final else 'o'}{n}", "resource": r}
    if final:
        value["final"] = True
        return Op("incr", value)
    if ctx.rng.random() < INCR_SHARE:
        return Op("incr", value)
    value["element"] = n
    return Op("append", value)


def workload(variant: Variant, options: Options, ids: Iterator[int]) -> Generator:
    """The main phase; the harness applies the campaign's rate."""
    return LockedOps(variant.probes, ids)


def final(variant: Variant, options: Options, ids: Iterator[int]) -> Generator:
    workers = max(1, options.workers)

    def mine(worker: int) -> list[str]:
        out = [r for j, r in enumerate(RESOURCES) if j % workers == worker]
        if workers > len(RESOURCES) and RESOURCES[worker % len(RESOURCES)] not in out:
            out.append(RESOURCES[worker % len(RESOURCES)])
        return out

    def retries(resource: str) -> Generator:
        return gen.until_ok(
            gen.limit(3, gen.from_fn(lambda ctx: locked_op(ctx, next(ids), resource, True)))
        )

    def for_worker(worker: int) -> Generator:
        return gen.phases(*(retries(r) for r in mine(worker)))

    return gen.phases(
        gen.sleep(2 * LEASE_MS / 1000),
        gen.each_worker(for_worker),
        gen.once(Op("read-resource")),
    )


def op_ids() -> Iterator[int]:
    return itertools.count()
