"""Benchmark: our linearizability checker against Porcupine v1.3.0 on the Porcupine corpus.

Usage (from the repository root)::

    .venv/bin/python bench/linearizability/run.py [--repeat 3] [--corpus DIR] [--json FILE]

Each corpus file is parsed once by our readers; the parsed operations (after Jepsen's semantics:
fail dropped, info at +infinity) are exported to ``bench/out/linearizability/*.json`` and
checked by both checkers, so both see the same histories. The Go program
(``bench/linearizability/main.go``, Porcupine's own test models) is built with
``GOFLAGS=-mod=mod`` and run once over all files. Times are the best of ``--repeat`` runs of the
check alone (partitioning and search; file parsing excluded on both sides). Prints a table
(file, ops, ours ms, porcupine ms, ratio, verdicts) and totals; a verdict difference is flagged
with ``!!`` and makes the exit code 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from checkers.linearizability import UNKNOWN, get_model, prepare  # noqa: E402
from checkers.linearizability.operations import LinOp  # noqa: E402
from checkers.linearizability.partition import check_parts  # noqa: E402
from workbench.jepsen_format import read_events  # noqa: E402

OUT = REPO / "bench" / "out" / "linearizability"


def _export_op(model: str, op: LinOp) -> dict[str, Any]:
    """One operation in the Go program's encoding (Porcupine's etcd/kv test models)."""
    inp: Any = op.input
    out = op.output
    client = op.process if isinstance(op.process, int) else 0
    if model == "cas-register":
        kind = {"read": 0, "write": 1, "cas": 2}[inp[0]]
        gi = {"op": kind, "arg1": inp[1] if kind else 0, "arg2": inp[2] if kind == 2 else 0}
        if out is UNKNOWN:
            go: dict[str, Any] = {"unknown": True}
        elif kind == 0:
            go = {"exists": out is not None, "value": 0 if out is None else out}
        else:
            go = {"ok": True}
    else:
        kind = {"get": 0, "put": 1, "append": 2}[inp[0]]
        gi = {"op": kind, "key": str(inp[1]), "value": inp[2] if kind else ""}
        go = {"unknown": True} if out is UNKNOWN else {"value": out if kind == 0 else ""}
    ret = -1 if op.ret is None else op.ret
    return {"client": client, "call": op.call, "return": ret, "input": gi, "output": go}


def _build_go() -> Path:
    binary = OUT / "porcupine-bench"
    env = dict(os.environ, GOFLAGS="-mod=mod")
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=HERE, env=env, check=True)
    return binary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus" / "porcupine")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args(argv)

    OUT.mkdir(parents=True, exist_ok=True)
    rows = [
        line.split("\t")
        for line in (args.corpus / "VERDICTS.tsv").read_text().splitlines()[1:]
        if line.strip()
    ]
    ours: dict[str, dict[str, Any]] = {}
    exported: list[str] = []
    for rel, model_name, expected in rows:
        model = get_model(model_name)
        ops = prepare(read_events(args.corpus / rel), model).ops
        dest = OUT / (rel.replace("/", "__") + ".json")
        doc = {"model": model_name, "ops": [_export_op(model_name, op) for op in ops]}
        dest.write_text(json.dumps(doc))
        exported.append(str(dest))
        best = float("inf")
        valid: Any = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            valid = check_parts(model, ops, time_limit=120).valid
            best = min(best, time.perf_counter() - t0)
        ours[str(dest)] = {
            "file": rel,
            "ops": len(ops),
            "ours_ms": best * 1000,
            "ours": valid,
            "expected": expected == "linearizable",
        }

    binary = _build_go()
    proc = subprocess.run(
        [str(binary), f"-repeat={args.repeat}", *exported],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in proc.stdout.splitlines():
        d = json.loads(line)
        ours[d["file"]]["porcupine_ms"] = d["ms"]
        ours[d["file"]]["porcupine"] = d["ok"]

    table = list(ours.values())
    flagged = 0
    print(f"{'file':<22} {'ops':>5} {'ours ms':>9} {'porc ms':>9} {'ratio':>7}  verdicts")
    for r in table:
        ratio = r["ours_ms"] / r["porcupine_ms"] if r["porcupine_ms"] > 0 else float("inf")
        r["ratio"] = ratio
        same = r["ours"] == r["porcupine"] == r["expected"]
        flagged += not same
        verdict = "ok" if r["ours"] is True else ("bad" if r["ours"] is False else "unknown")
        mark = "" if same else f"  !! porcupine={r['porcupine']} expected={r['expected']}"
        print(
            f"{r['file']:<22} {r['ops']:>5} {r['ours_ms']:>9.2f} {r['porcupine_ms']:>9.2f} "
            f"{ratio:>7.2f}  {verdict}{mark}"
        )
    t_ours = sum(r["ours_ms"] for r in table)
    t_porc = sum(r["porcupine_ms"] for r in table)
    for label, sel in (
        ("etcd", [r for r in table if r["file"].startswith("jepsen/")]),
        ("kv", [r for r in table if r["file"].startswith("kv/")]),
    ):
        a = sum(r["ours_ms"] for r in sel)
        b = sum(r["porcupine_ms"] for r in sel)
        print(f"subtotal {label:<13} {'':>5} {a:>9.1f} {b:>9.1f} {a / b:>7.2f}")
    print(f"{'TOTAL':<22} {'':>5} {t_ours:>9.1f} {t_porc:>9.1f} {t_ours / t_porc:>7.2f}")
    print(f"verdict differences: {flagged}")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))
    return 1 if flagged else 0


if __name__ == "__main__":
    raise SystemExit(main())
