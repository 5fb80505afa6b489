from __future__ import annotations

import itertools
import random

from hypothesis import given
from hypothesis import strategies as st

from workbench.client import Completion, Op
from workbench.generator import (
    Context,
    Generator,
    Wait,
    each_worker,
    from_fn,
    lazy,
    limit,
    mix,
    once,
    phases,
    read_until_ok,
    repeat,
    seq,
    sleep,
    stagger,
    time_limit,
    until_ok,
)


def drain(
    gen: Generator,
    *,
    workers: int = 1,
    seed: int = 1,
    t: float = 0.0,
    result: str = "ok",
    max_steps: int = 1000,
) -> list[Op]:
    """Runs a generator with instantly completing operations, worker by worker."""
    rng = random.Random(seed)
    out: list[Op] = []
    done = set()
    for i in range(max_steps):
        w = i % workers
        if w in done:
            if len(done) == workers:
                break
            continue
        ctx = Context(t, w, workers, rng)
        step = gen.next(ctx)
        if step is None:
            done.add(w)
            continue
        if isinstance(step, Wait):
            t = step.until if step.until is not None else t + 0.01
            continue
        out.append(step)
        gen.update(ctx, step, Completion(result))  # type: ignore[arg-type]
    return out


def test_limit_and_seq() -> None:
    assert [o.value for o in drain(limit(3, repeat(Op("r", 7))))] == [7, 7, 7]
    assert [o.f for o in drain(seq([Op("a"), Op("b")]))] == ["a", "b"]


def test_repeat_hands_out_distinct_objects() -> None:
    ops = drain(limit(2, repeat(Op("r"))))
    assert ops[0] is not ops[1]


def test_mix_draws_from_all_and_is_seeded() -> None:
    def gen() -> Generator:
        return limit(50, mix([repeat(Op("a")), repeat(Op("b"))]))

    a = [o.f for o in drain(gen(), seed=7)]
    b = [o.f for o in drain(gen(), seed=7)]
    c = [o.f for o in drain(gen(), seed=8)]
    assert a == b
    assert a != c
    assert set(a) == {"a", "b"}


def test_time_limit_ends_the_generator() -> None:
    gen = time_limit(1.0, repeat(Op("r")))
    rng = random.Random(0)
    assert isinstance(gen.next(Context(0.0, 0, 1, rng)), Op)
    assert isinstance(gen.next(Context(0.9, 0, 1, rng)), Op)
    assert gen.next(Context(1.0, 0, 1, rng)) is None


def test_stagger_spaces_operations_at_about_the_rate() -> None:
    gen = stagger(10.0, repeat(Op("r")))
    rng = random.Random(3)
    t, times = 0.0, []
    while len(times) < 500:
        step = gen.next(Context(t, 0, 1, rng))
        if isinstance(step, Wait):
            assert step.until is not None and step.until > t
            t = step.until
        else:
            times.append(t)
    rate = len(times) / times[-1]
    assert 8.0 < rate < 12.0


def test_phases_wait_for_the_previous_phase_to_complete() -> None:
    gen = phases(once(Op("a")), once(Op("b")))
    rng = random.Random(0)
    a = gen.next(Context(0, 0, 2, rng))
    assert isinstance(a, Op) and a.f == "a"
    # While "a" is in flight, the other worker is told to wait, not given "b".
    assert isinstance(gen.next(Context(0, 1, 2, rng)), Wait)
    gen.update(Context(0, 0, 2, rng), a, Completion("ok"))
    b = gen.next(Context(0, 1, 2, rng))
    assert isinstance(b, Op) and b.f == "b"


def test_each_worker_gives_every_worker_its_own_generator() -> None:
    ops = drain(each_worker(lambda w: once(Op("read", w))), workers=3)
    assert sorted(o.value for o in ops) == [0, 1, 2]


def test_until_ok_stops_after_the_first_ok() -> None:
    gen = until_ok(repeat(Op("r")))
    rng = random.Random(0)
    first = gen.next(Context(0, 0, 1, rng))
    assert isinstance(first, Op)
    gen.update(Context(0, 0, 1, rng), first, Completion("fail"))
    second = gen.next(Context(0, 0, 1, rng))
    assert isinstance(second, Op)
    gen.update(Context(0, 0, 1, rng), second, Completion("ok"))
    assert gen.next(Context(0, 0, 1, rng)) is None


def test_sleep_then_continue_in_phases() -> None:
    ops = drain(phases(sleep(2.0), once(Op("x"))))
    assert [o.f for o in ops] == ["x"]


@given(st.integers(0, 2**32), st.integers(1, 8))
def test_same_seed_same_operation_sequence(seed: int, workers: int) -> None:
    def gen() -> Generator:
        counter = itertools.count()
        return limit(
            40,
            mix(
                [
                    from_fn(lambda ctx: Op("w", next(counter))),
                    from_fn(lambda ctx: Op("r", ctx.rng.randint(0, 9))),
                ]
            ),
        )

    a = [(o.f, o.value) for o in drain(gen(), workers=workers, seed=seed)]
    b = [(o.f, o.value) for o in drain(gen(), workers=workers, seed=seed)]
    assert a == b and len(a) == 40


def test_read_until_ok_is_one_at_a_time_and_stops_at_ok_or_after_its_tries() -> None:
    g = read_until_ok(Op("read"), tries=3)
    rng = random.Random(0)
    first = g.next(Context(0.0, 0, 2, rng))
    assert isinstance(first, Op)
    # While one copy is in flight, another worker is told to wait, not given a second copy.
    assert isinstance(g.next(Context(0.0, 1, 2, rng)), Wait)
    g.update(Context(0.0, 0, 2, rng), first, Completion("fail", error="x"))
    second = g.next(Context(0.0, 1, 2, rng))
    assert isinstance(second, Op)
    g.update(Context(0.0, 1, 2, rng), second, Completion("ok"))
    assert g.next(Context(0.0, 0, 2, rng)) is None
    assert [o.f for o in drain(read_until_ok(Op("read"), tries=3), result="info")] == ["read"] * 3


def test_lazy_builds_its_generator_only_when_first_asked() -> None:
    learnt: list[int] = []
    g = phases(
        from_fn(lambda ctx: None if learnt else (learnt.append(1) or Op("learn"))),
        lazy(lambda: seq([Op("read", list(learnt))])),
    )
    ops = drain(g)
    assert [(o.f, o.value) for o in ops] == [("learn", None), ("read", [1])]
