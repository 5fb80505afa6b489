"""The ``workbench`` command.

Exit codes (also in the README):

====  =============================================================
0     valid: no checker found an anomaly
1     anomalies found
2     unknown: a checker could not decide
64    usage: unknown target / variant / fault, bad arguments
65    bad input data: malformed history or run directory
69    environment: a server that won't start, a missing binary, a port in use
130   interrupted (Ctrl-C, SIGTERM); everything started was torn down
255   the harness itself failed mid-campaign (see logs/harness-error.log)
====  =============================================================
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from workbench.check import EXIT_INTERRUPTED, EXIT_USAGE, check_run
from workbench.history import HistoryError, write_history
from workbench.plugins import UsageError
from workbench.registry import check_variant, load_target, target_names
from workbench.store import RunDirError, resolve_run_dir

EXIT_DATA = 65
EXIT_ENV = 69

Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Treat SIGTERM like Ctrl-C so the same teardown path runs.
    raise KeyboardInterrupt


def _verdict_line(results: dict[str, Any]) -> str:
    valid = results.get("valid")
    word = "VALID" if valid is True else "ANOMALIES FOUND" if valid is False else "UNKNOWN"
    lines = [f"verdict: {word}"]
    for r in results.get("checkers", []):
        mark = "ok" if r["valid"] is True else "FAIL" if r["valid"] is False else "unknown"
        summary = f": {r['summary']}" if r.get("summary") else ""
        lines.append(f"  [{mark:>7}] {r['checker']} ({r.get('kind', 'safety')}){summary}")
    if results.get("reason"):
        lines.append(f"  undecided: {results['reason']}")
    if results.get("harness_error"):
        lines.append(f"harness error: {results['harness_error']}")
    return "\n".join(lines)


def _stored_campaign(path: str) -> dict[str, Any]:
    """The campaign.json (or run directory holding one) that ``--schedule`` names."""
    p = Path(path)
    if p.is_dir():
        p = p / "campaign.json"
    try:
        stored = json.loads(p.read_text())
    except FileNotFoundError:
        raise CliError(
            f"--schedule {path}: no such file; give a stored campaign.json or its run directory",
            EXIT_USAGE,
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CliError(
            f"--schedule {path}: not a readable campaign.json ({e})", EXIT_DATA
        ) from None
    if not isinstance(stored, dict) or not isinstance(stored.get("schedule", []), list):
        raise CliError(f"--schedule {path}: no fault schedule in it", EXIT_DATA)
    return stored


def _externals(items: Sequence[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise CliError(
                f"--external {item!r} is not NAME=URL (e.g. --external api=http://127.0.0.1:8080)",
                EXIT_USAGE,
            )
        out[name.strip()] = url.strip()
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from workbench.runner import Campaign, run_campaign
    from workbench.runtime.errors import RuntimeStartError
    from workbench.schedule import FaultAction, parse_fault_specs

    target = load_target(args.target)
    variant = check_variant(target, args.variant)
    fault_texts: list[str] | None = None
    if args.faults is not None:
        try:
            fault_texts = [s.text for s in parse_fault_specs(args.faults)]
        except ValueError as e:
            raise CliError(str(e), EXIT_USAGE) from None
    schedule = None
    external = _externals(args.external)
    if args.schedule:
        stored = _stored_campaign(args.schedule)
        try:
            schedule = [FaultAction.from_json(a) for a in stored.get("schedule", [])]
        except (ValueError, KeyError, TypeError) as e:
            raise CliError(
                f"--schedule {args.schedule}: not a stored schedule ({type(e).__name__}: {e})",
                EXIT_DATA,
            ) from None
        if fault_texts is None:
            fault_texts = [str(f) for f in stored.get("faults", [])]
    campaign = Campaign(
        target=target,
        target_spec=args.target,
        variant=variant,
        faults=fault_texts,
        workers=args.workers,
        time_limit=args.time_limit,
        rate=args.rate,
        seed=args.seed,
        store=Path(args.store),
        schedule=schedule,
        command="workbench " + shlex.join(sys.argv[1:]),
        progress=not args.quiet,
        external=external,
    )
    try:
        outcome = run_campaign(campaign)
    except RuntimeStartError as e:
        raise CliError(f"could not start the target: {e}", EXIT_ENV) from None
    print(_verdict_line(outcome.results))
    print(f"run directory: {outcome.run_dir}")
    report = outcome.run_dir / "report.html"
    if report.exists():
        print(f"report: {report}")
    return outcome.exit_code


def cmd_check(args: argparse.Namespace) -> int:
    run_dir = resolve_run_dir(args.run_dir)
    results = check_run(run_dir)
    if results.get("torn_line"):
        _say(f"note: the last history line ({results['torn_line']}) was cut short and dropped")
    from workbench.report import write_reports

    write_reports(run_dir)
    print(_verdict_line(results))
    print(f"run directory: {run_dir}")
    return int(results["exit_code"])


def cmd_targets(args: argparse.Namespace) -> int:
    for name in target_names():
        target = load_target(name)
        print(f"{name}: {target.description}")
        for variant, line in target.variants.items():
            print(f"    {variant:<28} {line}")
    return 0


def cmd_faults(args: argparse.Namespace) -> int:
    from workbench.registry import describe_faults

    for name, description in describe_faults().items():
        print(f"{name:<16} {description}")
    return 0


def cmd_checkers(args: argparse.Namespace) -> int:
    from workbench.registry import load_checkers

    for name, cls in sorted(load_checkers().items()):
        doc = (cls.__doc__ or "").strip().splitlines()
        print(f"{name:<20} {doc[0] if doc else ''}")
    return 0


def cmd_import_jepsen(args: argparse.Namespace) -> int:
    from workbench.jepsen_format import read_edn

    events = read_edn(Path(args.file))
    out = Path(args.output) if args.output else Path(args.file).with_suffix(".jsonl")
    write_history(out, events)
    print(f"{len(events)} events written to {out}")
    return 0


def cmd_export_jepsen(args: argparse.Namespace) -> int:
    from workbench.history import read_history
    from workbench.jepsen_format import write_edn

    src = Path(args.history)
    if src.is_dir():
        src = resolve_run_dir(src) / "history.jsonl"
    loaded = read_history(src)
    out = Path(args.output) if args.output else src.with_suffix(".edn")
    write_edn(out, loaded.events)
    print(f"{len(loaded.events)} events written to {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench.demo import run_demo

    return run_demo(Path(args.store))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="workbench",
        description="Fault campaigns against app patterns on PostgreSQL and Redis, "
        "with Jepsen-style histories and checkers.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    r = sub.add_parser("run", help="run a fault campaign against a target and judge it")
    r.add_argument("target", help="registered target name, or module:attribute")
    r.add_argument("--variant", help="implementation variant (default: the target's first)")
    r.add_argument("--faults", help="comma-separated fault specs (default: the variant's mix)")
    r.add_argument("--workers", type=int, default=8, help="concurrent client processes")
    r.add_argument("--time-limit", type=float, default=20.0, help="main phase, seconds")
    r.add_argument("--rate", type=float, help="total operations per second (default: unbounded)")
    r.add_argument("--seed", type=int, default=0, help="seed for operations and fault schedule")
    r.add_argument("--store", default="store", help="store directory (default: ./store)")
    r.add_argument("--schedule", help="replay the fault schedule of a stored campaign.json")
    r.add_argument(
        "--external",
        action="append",
        metavar="NAME=URL",
        help="use a server you already run for part NAME of the topology (repeatable): "
        "http://, postgresql:// or redis://; network faults still apply, process faults do not",
    )
    r.add_argument("--quiet", action="store_true", help="no progress display")
    r.set_defaults(handler=cmd_run)

    c = sub.add_parser("check", help="re-run the checkers on a stored run (even a killed one)")
    c.add_argument("run_dir", help="run directory, or a store/target dir with a latest link")
    c.set_defaults(handler=cmd_check)

    sub.add_parser("targets", help="list targets and their variants").set_defaults(
        handler=cmd_targets
    )
    sub.add_parser("faults", help="list the fault catalogue").set_defaults(handler=cmd_faults)
    sub.add_parser("checkers", help="list the registered checkers").set_defaults(
        handler=cmd_checkers
    )

    j = sub.add_parser("import-jepsen", help="convert a Jepsen EDN history to history.jsonl")
    j.add_argument("file")
    j.add_argument("-o", "--output", help="output path (default: FILE with .jsonl)")
    j.set_defaults(handler=cmd_import_jepsen)

    x = sub.add_parser("export-jepsen", help="write a history as Jepsen EDN (one map per line)")
    x.add_argument("history", help="history.jsonl or a run directory")
    x.add_argument("-o", "--output", help="output path (default: the history with .edn)")
    x.set_defaults(handler=cmd_export_jepsen)

    from workbench.report.cli import add_report_parser, add_serve_parser
    from workbench.scaffold import add_new_target_parser

    add_report_parser(sub)
    add_serve_parser(sub)
    add_new_target_parser(sub)
    _add_plugin_commands(sub)

    d = sub.add_parser("demo", help="a short campaign against a bundled target, with its verdict")
    d.add_argument("--store", default="store")
    d.set_defaults(handler=cmd_demo)
    return p


def _add_plugin_commands(sub: Any) -> None:
    """Subcommands registered under ``workbench.commands`` (``workbench lin``): each entry point
    is a function that adds its parser to ``sub``. A broken one is named, never hidden."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="workbench.commands"):
        try:
            ep.load()(sub)
        except Exception as e:
            _say(f"workbench: command plugin {ep.name!r} ({ep.value}) failed to load: {e}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code not in (0, None) else 0
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        # Subcommands contributed by other modules (``workbench lin``) set ``func``.
        handler: Handler = getattr(args, "handler", None) or args.func
        return handler(args)
    except CliError as e:
        _say(f"workbench: {e}")
        return e.code
    except UsageError as e:
        _say(f"workbench: {e}")
        return EXIT_USAGE
    except (HistoryError, RunDirError) as e:
        _say(f"workbench: {e}")
        return EXIT_DATA
    except KeyboardInterrupt:
        _say("workbench: interrupted; every process of the campaign was stopped")
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
