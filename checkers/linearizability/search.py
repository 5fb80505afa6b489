"""Wing & Gong's linearizability search with Lowe's memoisation, in the shape of Porcupine's.

The history becomes a list of call and return entries sorted by time (calls before returns on
equal times: intervals are closed, so touching operations are concurrent). A depth-first search
walks the list from its head: a call entry whose operation the model accepts in the current state
is *linearized* -- its call and return entries are lifted out of the list and the walk restarts
at the head; reaching a return entry means that operation should have been linearized already,
so the search backtracks (undoes the last linearization and tries the next call after it).
Each (set of linearized operations, model state) pair is explored at most once: a set of
visited pairs, with Python ints as bitsets.

Beyond Porcupine, four prunings that keep the answer exact:

- Crashed operations (return at +infinity, output UNKNOWN) need not be linearized at all: the
  search succeeds when no return entry is left, i.e. when the walk reaches the tail.
- Read-only operations (the model says the input never changes state) are linearized greedily:
  if one fits now, any linearization that places it later can place it now instead, so the node
  is decided by that one child and the search does not branch on it (and a node whose fitting
  read leads to an explored pair is dead at once).
- Crashed operations with equal inputs are interchangeable (same effect, both pending to
  +infinity); they are linearized in call order only, which removes symmetric branches.
- Dead ends the model can see (:meth:`Model.dead_ends`, e.g. the kv model's: a pending get
  whose output no longer starts with the state, and no pending put that could reset it): a
  pair from which some returned operation can never fit is not explored. The model argues
  soundness; the search only consults it after a linearization that went through ``step``.

Time and memory are bounded: past ``deadline`` or ``max_states`` visited pairs the answer is
``"unknown"``, never a hang or an out-of-memory.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from checkers.linearizability.models import UNKNOWN, Model
from checkers.linearizability.operations import LinOp

DEFAULT_MAX_STATES = 2_000_000
"""About 150 bytes per visited pair: ~300 MB at the default bound."""

_STEP_MEMO = 64  # remembered step answers per operation
_CHECK_EVERY = 0x3FF  # check the clock and the cache size every 1024 linearizations


@dataclass
class SearchResult:
    """What :func:`search` returns; operation numbers are positions in the ``ops`` it was given.

    - ``valid``: True, False, or ``"unknown"`` (``reason`` is then ``"time"`` or ``"states"``).
    - ``order``: a full linearization when valid (crashed operations that were placed included).
    - ``prefix``: the longest linearizable prefix found, ``stuck``: the operation whose return
      was reached right after it and that no order could place, ``state``: the model state after
      the prefix (for a violation).
    - ``explored``: (linearized set, state) pairs visited.
    """

    valid: bool | Literal["unknown"]
    order: list[int] = field(default_factory=list)
    prefix: list[int] = field(default_factory=list)
    stuck: int | None = None
    state: Any = None
    explored: int = 0
    reason: str = ""


def search(
    model: Model,
    ops: Sequence[LinOp],
    *,
    deadline: float | None = None,
    max_states: int = DEFAULT_MAX_STATES,
    prune: bool = True,
) -> SearchResult:
    """Decides whether ``ops`` (one partition) is linearizable with respect to ``model``.

    ``deadline`` is a :func:`time.monotonic` reading after which the search gives up. With
    ``prune`` False the model's dead ends are not consulted (same answer, more pairs; the
    longest prefix found for a violation is then the plain search's, often longer).
    """
    n = len(ops)
    entries: list[tuple[int, int, int]] = []
    for i, op in enumerate(ops):
        entries.append((op.call, 0, i))
        if op.ret is not None:
            entries.append((op.ret, 1, i))
    # Sorting by (time, kind, op) puts calls (0) before returns (1) on equal times.
    entries.sort()
    m = len(entries)
    tail = m + 1
    # The list lives in int arrays (node 0 = head, m + 1 = tail): no objects on the hot path.
    nxt = [*range(1, m + 2), -1]
    prv = [-1, *range(m + 1)]
    node_op = [-1] * (m + 2)
    is_call = [False] * (m + 2)
    match = [-1] * (m + 2)  # call node -> its return node (-1: crashed, none)
    call_node = [0] * n
    for k, (_, kind, i) in enumerate(entries, start=1):
        node_op[k] = i
        if kind == 0:
            is_call[k] = True
            call_node[i] = k
        else:
            match[call_node[i]] = k

    inputs = [op.input for op in ops]
    outputs = [op.output for op in ops]
    bits = [1 << i for i in range(n)]
    read_only = [model.is_read_only(op.input) for op in ops]
    expects = [
        model.read_expects(op.input, op.output) if ro else UNKNOWN
        for op, ro in zip(ops, read_only, strict=True)
    ]
    # Symmetry between crashed operations with equal inputs: each may only be linearized once
    # its predecessor (the previous one called with the same input) is.
    pred_mask = [0] * n
    last_crashed: dict[Any, int] = {}
    for _, kind, i in entries:
        if kind == 0 and ops[i].ret is None:
            prev = last_crashed.get(inputs[i])
            if prev is not None:
                pred_mask[i] = bits[prev]
            last_crashed[inputs[i]] = i

    step = model.step
    dead_ends = model.dead_ends(ops) if prune else None
    # Per operation: state -> (fits, new state[, dead-end masks of the new state]).
    step_memo: list[dict[Any, tuple[Any, ...]]] = [{} for _ in range(n)]
    cache: set[tuple[int, Any]] = set()
    cache_add = cache.add
    stack: list[Any] = []  # alternating call node, state before it
    push = stack.append
    pop = stack.pop
    state: Any = model.init()
    lin = 0
    explored = 0
    # The longest linearizable prefix found, kept cheaply (it improves often in a search that
    # succeeds): its call nodes, an operation placed after them (-1: none), the operation
    # stuck after it (-1: the first of ``best_doomed`` to return), and the state after it.
    best_len = -1
    best_nodes: list[int] = []
    best_extra = -1
    best_stuck = -1
    best_doomed = 0
    best_state: Any = None
    clock = time.monotonic

    node = nxt[0]
    while True:
        if is_call[node]:
            o = node_op[node]
            expected = expects[o]
            if expected is not UNKNOWN:
                # A read: fits iff the state is what it read (no call into the model).
                if expected != state:
                    node = nxt[node]
                    continue
                new_state = state
            else:
                pm = pred_mask[o]
                if pm and not lin & pm:
                    node = nxt[node]
                    continue
                # step is pure: remember its answers per operation and state (states repeat a
                # lot across the branches of the search, calls are the costly part).
                memo = step_memo[o]
                res = memo.get(state)
                if res is None:
                    res = step(state, inputs[o], outputs[o])
                    if dead_ends is not None and res[0]:
                        res = (True, res[1], dead_ends(res[1]))
                    if len(memo) < _STEP_MEMO:  # bounded: memory stays O(operations)
                        memo[state] = res
                if not res[0]:
                    node = nxt[node]
                    continue
                new_state = res[1]
                if dead_ends is not None:
                    # The model's dead ends (Model.dead_ends): a returned operation still
                    # pending that fits no state reachable from here unless a pending
                    # operation of its ``rescue`` runs, and none is pending.
                    new_lin = lin | bits[o]
                    doomed = 0
                    for need, rescue in res[2]:
                        if need & new_lin != need and rescue & new_lin == rescue:
                            doomed = need & ~new_lin
                            break
                    if doomed:
                        # For the explanation: this prefix is linearizable, and the doomed
                        # operation can never be placed after it.
                        depth = (len(stack) >> 1) + 1
                        if depth > best_len:
                            best_len = depth
                            best_nodes = stack[0::2]
                            best_extra = o
                            best_stuck = -1
                            best_doomed = doomed
                            best_state = new_state
                        node = nxt[node]
                        continue
            new_lin = lin | bits[o]
            key = (new_lin, new_state)
            if key not in cache:
                cache_add(key)
                push(node)
                push(state)
                state = new_state
                lin = new_lin
                # Lift the call entry and its return entry out of the list.
                p = prv[node]
                q = nxt[node]
                nxt[p] = q
                prv[q] = p
                r = match[node]
                if r >= 0:
                    p = prv[r]
                    q = nxt[r]
                    nxt[p] = q
                    prv[q] = p
                node = nxt[0]
                explored += 1
                if not explored & _CHECK_EVERY:
                    if deadline is not None and clock() > deadline:
                        best = _best(ops, node_op, best_nodes, best_extra, best_stuck, best_doomed)
                        return _unknown("time", explored, best, best_state)
                    if explored >= max_states:
                        best = _best(ops, node_op, best_nodes, best_extra, best_stuck, best_doomed)
                        return _unknown("states", explored, best, best_state)
                continue
            if not read_only[o]:
                node = nxt[node]
                continue
            # A fitting read whose successor pair was already explored (and failed) decides
            # this node: it fails too; fall through to backtrack.
        elif node == tail:
            # No return entry left: every operation that returned is linearized.
            order = [node_op[c] for c in stack[0::2]]
            return SearchResult(True, order=order, prefix=order, explored=explored)
        else:
            # A return entry: that operation cannot be linearized before its return here.
            depth = len(stack) >> 1
            if depth > best_len:
                best_len = depth
                best_nodes = stack[0::2]
                best_extra = -1
                best_stuck = node_op[node]
                best_state = state
        # Backtrack: undo linearizations up to the last real choice (greedy reads are none).
        while True:
            if not stack:
                best = _best(ops, node_op, best_nodes, best_extra, best_stuck, best_doomed)
                best.state = best_state
                best.explored = explored
                return best
            state = pop()
            node = pop()
            o = node_op[node]
            lin ^= bits[o]
            r = match[node]
            if r >= 0:
                nxt[prv[r]] = r
                prv[nxt[r]] = r
            nxt[prv[node]] = node
            prv[nxt[node]] = node
            if not read_only[o]:
                break
        node = nxt[node]


def _first_to_return(ops: Sequence[LinOp], mask: int) -> int:
    """The operation of ``mask`` (bit i = ``ops[i]``) that returns first."""
    best = -1
    for i, op in enumerate(ops):
        if mask >> i & 1 and (best < 0 or _ret(op) < _ret(ops[best])):
            best = i
    return best


def _ret(op: LinOp) -> float:
    return float("inf") if op.ret is None else op.ret


def _best(
    ops: Sequence[LinOp],
    node_op: list[int],
    nodes: list[int],
    extra: int,
    stuck: int,
    doomed: int,
) -> SearchResult:
    """The failure to report from the longest prefix kept by the search: the operations of
    call ``nodes``, then ``extra`` (unless -1); stuck after it, ``stuck``, or (-1) the first of
    the ``doomed`` operations to return (None when no prefix was recorded)."""
    prefix = [node_op[c] for c in nodes]
    if extra >= 0:
        prefix.append(extra)
    if stuck < 0:
        stuck = _first_to_return(ops, doomed)
    return SearchResult(False, prefix=prefix, stuck=None if stuck < 0 else stuck)


def _unknown(reason: str, explored: int, best: SearchResult, state: Any) -> SearchResult:
    return SearchResult(
        "unknown",
        prefix=best.prefix,
        stuck=best.stuck,
        state=state,
        explored=explored,
        reason=reason,
    )
