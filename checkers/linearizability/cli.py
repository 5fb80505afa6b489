"""``workbench lin FILE --model M [--format auto|jsonl|edn|jepsen-log] [--timeout S] [--json]``

Exit codes (Jepsen's): 0 linearizable, 1 not linearizable, 2 unknown (budget exhausted),
64 usage error (a bad option, a model that does not fit the history), 65 bad input data (an
unreadable or malformed history); one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from checkers.linearizability import Linearizable, ModelError, get_model, model_names
from checkers.linearizability.operations import prepare
from workbench.checker import CheckContext
from workbench.history import HistoryError
from workbench.jepsen_format import FORMATS, read_events

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNKNOWN = 2
EXIT_USAGE = 64
EXIT_DATA = 65


def add_lin_parser(subparsers: Any) -> None:
    """Adds the ``lin`` sub-command to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "lin",
        help="check a history for linearizability against a model",
        description="Check a history (our history.jsonl, Jepsen EDN, or Jepsen's console log) "
        "for linearizability. Exit 0 linearizable, 1 not, 2 unknown, 64 usage, 65 bad history.",
    )
    p.add_argument("file", help="history file")
    p.add_argument(
        "--model", "-m", required=True, help="model name, e.g. " + ", ".join(model_names())
    )
    p.add_argument(
        "--format", choices=FORMATS, default="auto", help="history format (default: auto)"
    )
    p.add_argument("--timeout", type=float, default=None, help="time budget in seconds")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=lin_command)


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"workbench lin: {message}", file=sys.stderr)
    return code


def lin_command(args: argparse.Namespace) -> int:
    """Runs ``workbench lin``; prints the verdict (and explanations) and returns the exit code."""
    if args.timeout is not None and args.timeout <= 0:
        return _fail("--timeout must be a positive number of seconds")
    try:
        model = get_model(args.model)
    except KeyError as e:
        return _fail(str(e.args[0]) if e.args else str(e))
    try:
        events = read_events(args.file, args.format)
        prepare(events, model)  # surfaces malformed histories as usage errors
    except HistoryError as e:
        return _fail(str(e), EXIT_DATA)
    except ModelError as e:
        return _fail(str(e))
    result = Linearizable(model, time_limit=args.timeout).check(events, CheckContext())
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        print(result.summary)
        for anomaly in result.anomalies:
            print()
            print(anomaly.explanation)
    if result.valid is True:
        return EXIT_VALID
    if result.valid is False:
        return EXIT_INVALID
    return EXIT_UNKNOWN
