"""Synthetic run directories for report tests, benchmarks and demos of the report pages.

:func:`synthesize_run` writes a plausible payments campaign: ``workers`` processes charging and
reading accounts, a partition window (failures and timeouts inside it), a clock-skew window, an
instantaneous kill, a final heal, and a fault that never stopped; with ``anomalies=True`` the
results hold a duplicate-charge safety anomaly, a linearizability explanation and a liveness
(availability) anomaly, each pointing at real history indices.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.history import NEMESIS, Event, write_history


@dataclass
class _Op:
    process: int
    f: str
    start: int
    end: int | None
    type: str
    value: Any
    result: Any
    error: Any = None
    inv_index: int = -1
    done_index: int = -1


def _ns(s: float) -> int:
    return int(s * 1e9)


def synthesize_run(
    run_dir: str | Path,
    *,
    n_ops: int = 2000,
    workers: int = 8,
    duration_s: float = 30.0,
    seed: int = 1,
    anomalies: bool = True,
    hostile: str | None = None,
    status: str = "finished",
) -> Path:
    """Writes history.jsonl, campaign.json, results.json and logs/ into ``run_dir``; returns it.

    ``hostile`` (e.g. ``"<script>alert(1)</script>"``) is planted in an anomaly operation's
    value, an anomaly explanation, a fault's detail and a log file name's content, to test
    escaping.
    """
    rng = random.Random(seed)
    run = Path(run_dir)
    (run / "logs").mkdir(parents=True, exist_ok=True)
    d = duration_s
    part = (0.30 * d, 0.50 * d)
    skew = (0.60 * d, 0.70 * d)
    spacing = d * workers / max(1, n_ops)
    per_worker = [n_ops // workers + (1 if w < n_ops % workers else 0) for w in range(workers)]

    ops: list[_Op] = []
    for w in range(workers):
        process = w
        t = rng.uniform(0, spacing)
        for k in range(per_worker[w]):
            in_part = part[0] <= t < part[1]
            lat = rng.lognormvariate(1.2, 0.6) / 1000  # ~3 ms
            typ = "ok"
            error = None
            if in_part:
                r = rng.random()
                if r < 0.25:
                    typ, error, lat = "fail", "connection refused", lat * 2
                elif r < 0.33:
                    typ, error, lat = "info", "timeout after 1s", 1.0
            f = "read" if k % 4 == 3 else "charge"
            account = rng.randrange(50)
            if f == "charge":
                value: Any = {
                    "account": account,
                    "amount_cents": rng.choice((1000, 2500, 31000)),
                    "key": f"k-{w}-{k}",
                }
                result: Any = {"charge_id": w * 1_000_000 + k} if typ == "ok" else None
            else:
                value = {"account": account}
                result = {"balance_cents": rng.randrange(10**6)} if typ == "ok" else None
            end: int | None = _ns(t + lat)
            if w == 0 and k == per_worker[w] - 1:
                end, typ = None, "info"  # still running when the campaign ended
            ops.append(_Op(process, f, _ns(t), end, typ, value, result, error))
            if typ == "info":
                process += workers  # Jepsen: a process with an indeterminate op is retired
            t = t + max(lat, rng.expovariate(1 / spacing))

    # Events: invocations and completions plus nemesis events, ordered by time.
    raw: list[tuple[int, int, Any, str, str, Any, Any]] = []  # (time, tiebreak, ...)
    for n, op in enumerate(ops):
        raw.append((op.start, 2 * n, op.process, "invoke", op.f, op.value, None))
        if op.end is not None:
            raw.append((op.end, 2 * n + 1, op.process, op.type, op.f, op.result, op.error))
    nem: list[tuple[float, str, dict[str, Any]]] = [
        (part[0], "start", {"fault": "partition", "id": 1, "links": [["app", "pg1"]]}),
        (part[1], "stop", {"fault": "partition", "id": 1}),
        (skew[0], "start", {"fault": "clock-skew", "nodes": ["pg2"], "offset_s": 30}),
        (skew[1], "stop", {"fault": "clock-skew"}),
        (0.80 * d, "kill", {"fault": "kill-primary", "nodes": ["pg1"]}),
        (0.88 * d, "start", {"fault": "packet-loss", "loss": 0.2}),
        (0.95 * d, "heal", {"fault": "partition"}),
    ]
    if hostile:
        nem[2][2]["note"] = hostile
    for k, (t_s, f, v) in enumerate(nem):
        raw.append((_ns(t_s), -1 - k, NEMESIS, "info", f, v, None))
    raw.sort(key=lambda r: (r[0], r[1]))
    events: list[Event] = []
    for i, (t, tb, proc, typ, f, v, err) in enumerate(raw):
        events.append(Event(i, t, proc, typ, f, v, err))
        if tb >= 0:
            op = ops[tb // 2]
            if tb % 2 == 0:
                op.inv_index = i
            else:
                op.done_index = i
    if hostile:
        # Put the hostile text into a charge that an anomaly will point at.
        victim = next(o for o in ops if o.f == "charge" and o.type == "ok")
        ev = events[victim.inv_index]
        events[victim.inv_index] = Event(
            ev.index, ev.time, ev.process, ev.type, ev.f, {**ev.value, "memo": hostile}, ev.error
        )
    write_history(run / "history.jsonl", events)

    def idx(*chosen: _Op) -> list[int]:
        out: list[int] = []
        for o in chosen:
            out.append(o.inv_index)
            if o.done_index >= 0:
                out.append(o.done_index)
        return sorted(out)

    def witness(o: _Op, role: str, note: str = "") -> dict[str, Any]:
        # The shape of workbench.checker.Witness.to_json().
        done = o.done_index if o.done_index >= 0 else None
        return {"role": role, "invoke": o.inv_index, "completion": done, "note": note}

    def at(o: _Op) -> int:
        return o.done_index if o.done_index >= 0 else o.inv_index

    ok_charges = [o for o in ops if o.f == "charge" and o.type == "ok"]
    reads = [o for o in ops if o.f == "read" and o.type == "ok"]
    checkers: list[dict[str, Any]] = []
    if anomalies and len(ok_charges) >= 8 and len(reads) >= 6:
        dup: list[dict[str, Any]] = []
        victims = ok_charges[:1] if hostile else []
        pairs = [(ok_charges[i], ok_charges[i + 1]) for i in range(0, 8, 2)]
        for a, b in pairs:
            expl = (
                f"Charge {a.value['key']} for account {a.value['account']} was applied twice: "
                f"the retry (process {b.process}) was acknowledged as a new charge."
            )
            dup.append(
                {
                    "kind": "duplicate-charge",
                    "explanation": expl,
                    "events": idx(a, b),
                    "data": {"key": a.value["key"], "amount_cents": a.value["amount_cents"]},
                    "witnesses": [
                        witness(a, "first charge"),
                        witness(b, "duplicate charge", "the retry, acknowledged as new"),
                    ],
                    "at": at(b),
                }
            )
        if victims:
            dup[0]["events"] = sorted({*dup[0]["events"], *idx(victims[0])})
            dup[0]["witnesses"].append(witness(victims[0], "memo", hostile or ""))
            dup[0]["explanation"] += f" Memo was {hostile}"
        checkers.append(
            {
                "checker": "no-duplicate-charges",
                "valid": False,
                "kind": "safety",
                "summary": "3 accounts double-charged, 4 duplicate charges, $1,240.00",
                "anomalies": dup,
                "impact": {"accounts": 3, "duplicate_charges": 4, "amount_cents": 124000},
                "stats": {"charges": len(ok_charges)},
            }
        )
        culprit, conc, prefix = reads[5], reads[3:5], reads[:3]

        def describe(o: _Op) -> str:
            return f"read account {o.value['account']} -> {o.result}"

        checkers.append(
            {
                "checker": "balance-linearizable",
                "valid": False,
                "kind": "safety",
                "summary": "balance register not linearizable: a read saw a stale balance",
                "anomalies": [
                    {
                        "kind": "not-linearizable",
                        "explanation": (
                            f"Not linearizable: no order of the operations places process "
                            f"{culprit.process} reading account {culprit.value['account']}. "
                            "The longest linearizable prefix found has 41 of the 52 operations."
                        ),
                        "events": idx(culprit, *conc),
                        "data": {"prefix_length": 41, "part_size": 52, "parts_total": 1},
                        # The roles checkers.linearizability.explain gives.
                        "witnesses": [
                            witness(culprit, "culprit: cannot be linearized", describe(culprit)),
                            *(witness(o, "concurrent with the culprit", describe(o)) for o in conc),
                            *(
                                witness(
                                    o,
                                    "end of the linearizable prefix (38 earlier operations "
                                    "not shown)",
                                    describe(o),
                                )
                                for o in prefix
                            ),
                            {"role": "state after the prefix", "excerpt": "balance 1200"},
                        ],
                        "at": at(culprit),
                    }
                ],
                "impact": {"stale_reads": 1},
            }
        )
        checkers.append(
            {
                "checker": "availability",
                "valid": False,
                "kind": "liveness",
                "summary": "availability fell to 67% during the partition (threshold 90%)",
                "anomalies": [
                    {
                        "kind": "unavailable",
                        "explanation": "Fewer than 90% of operations succeeded for 6 s.",
                        "events": [],
                        "data": {"window_s": [round(part[0], 3), round(part[1], 3)]},
                    }
                ],
                "impact": {"seconds_below_threshold": 6},
            }
        )
    else:
        checkers += [
            {
                "checker": "no-duplicate-charges",
                "valid": True,
                "kind": "safety",
                "summary": f"{len(ok_charges)} charges, no duplicates",
            },
            {
                "checker": "availability",
                "valid": True,
                "kind": "liveness",
                "summary": "availability stayed above 90%",
            },
        ]
    valid = all(c["valid"] is True for c in checkers)
    counts = {"ok": 0, "fail": 0, "info": 0}
    for o in ops:
        counts[o.type] += 1
    faults = ["partition", "clock-skew", "kill-primary", "packet-loss"]
    campaign = {
        "target": "payments",
        "variant": "naive-retry" if anomalies else "idempotency-key",
        "faults": faults,
        "seed": seed,
        "workers": workers,
        "rate": round(n_ops / d, 1),
        "time_limit": d,
        "command": f"workbench run payments --variant naive-retry --seed {seed} "
        f"--workers {workers} --time-limit {d:g} --faults {','.join(faults)}",
        "versions": {
            "workbench": "0.1.0",
            "postgresql": "16.4",
            "redis": "7.2.5",
            "toxiproxy": "2.12.0",
            "python": "3.11.2",
        },
        "started": "2025-01-01T12:00:00Z",
        "finished": "2025-01-01T12:00:31Z" if status == "finished" else None,
        "status": status,
    }
    last_ns = max(e.time for e in events) if events else 0
    results = {
        "valid": valid,
        "exit_code": 0 if valid else 1,
        "checkers": checkers,
        "ops": counts,
        "duration_s": round(max(d, last_ns / 1e9), 3),
    }
    (run / "campaign.json").write_text(json.dumps(campaign, indent=2), encoding="utf-8")
    (run / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (run / "logs" / "postgres-pg1.log").write_text(
        "LOG:  database system is ready to accept connections\n", encoding="utf-8"
    )
    (run / "logs" / "runner.log").write_text(
        f"runner: started\n{hostile or ''}\nrunner: finished\n", encoding="utf-8"
    )
    return run
