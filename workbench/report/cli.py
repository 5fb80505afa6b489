"""CLI glue for ``workbench report RUN_DIR`` and ``workbench serve [--port P] [--store DIR]``.

Wire into the main parser with::

    sub = parser.add_subparsers(dest="command")
    add_report_parser(sub)   # sets func=report_command
    add_serve_parser(sub)    # sets func=serve_command
    ...
    return args.func(args)

Exit codes: 0 written / served; 64 (EX_USAGE) for a missing or malformed run directory or
store; 65 (EX_DATAERR) for a run whose history.jsonl is bad data; one line on stderr and no
traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from workbench.report.model import BadHistoryError, RunDirError

EX_USAGE = 64
EX_DATAERR = 65


def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds ``report RUN_DIR`` to an ``add_subparsers()`` object; returns the subparser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="render report.html, junit.xml and summary.md for a run directory",
        description="Render report.html, junit.xml and summary.md into RUN_DIR, and refresh "
        "the store's index.html when RUN_DIR lies in a store (store/<target>/<ts>/).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="e.g. store/latest")
    p.set_defaults(func=report_command)
    return p


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds ``serve [--port P] [--store DIR]``; returns the subparser."""
    from workbench.report.serve import DEFAULT_PORT

    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="serve the run store read-only on 127.0.0.1",
        description="Regenerate store/index.html and serve the store read-only on 127.0.0.1.",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.add_argument("--store", type=Path, default=Path("store"), help="default ./store")
    p.set_defaults(func=serve_command)
    return p


def _store_of(run_dir: Path) -> Path | None:
    """The store holding ``run_dir`` when it is laid out as ``<store>/<target>/<ts>``."""
    real = run_dir.resolve()
    store = real.parent.parent
    if (store / "latest").exists() or (store / "index.html").exists():
        return store
    return None


def report_command(args: argparse.Namespace) -> int:
    """Renders the reports for ``args.run_dir``; prints their paths. 0, 64 on a bad dir, 65 on
    a bad history."""
    from workbench.report import write_reports, write_store_index

    run_dir: Path = args.run_dir
    try:
        paths = write_reports(run_dir)
    except BadHistoryError as e:
        print(f"workbench report: {e}", file=sys.stderr)
        return EX_DATAERR
    except RunDirError as e:
        print(f"workbench report: {e}", file=sys.stderr)
        return EX_USAGE
    for path in paths.values():
        print(path)
    store = _store_of(run_dir)
    if store is not None:
        print(write_store_index(store))
    return 0


def serve_command(args: argparse.Namespace) -> int:
    """Serves ``args.store`` on 127.0.0.1:``args.port`` until interrupted."""
    from workbench.report.serve import HOST, serve

    store: Path = args.store
    if not store.is_dir():
        print(f"workbench serve: {store}: no such store directory", file=sys.stderr)
        return EX_USAGE
    print(f"serving {store} at http://{HOST}:{args.port}/ (Ctrl-C to stop)", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the way to stop: not an error
        serve(store, args.port)
    return 0
