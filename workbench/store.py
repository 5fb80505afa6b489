"""The store: one directory per campaign, written as the campaign goes.

Layout::

    store/
      latest -> payments/20261123T181500        (the newest run of any target)
      payments/
        latest -> 20261123T181500
        20261123T181500/
          campaign.json   what was asked and with which versions; "status" says how it ended
          history.jsonl   every event, streamed and fsynced as the campaign runs
          results.json    the checkers' verdicts (absent until checked)
          logs/           one log per process
          report.html, junit.xml, summary.md   (written after checking)

A campaign killed with SIGKILL leaves ``campaign.json`` with ``"status": "running"`` and a
history that ``workbench check`` can still judge.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CAMPAIGN_FILE = "campaign.json"
HISTORY_FILE = "history.jsonl"
RESULTS_FILE = "results.json"


class RunDirError(ValueError):
    """A path that is not a run directory; the message says what is missing."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_dir(store: Path, target: str) -> Path:
    """Creates ``store/<target>/<YYYYMMDDTHHMMSS>`` (with a ``-N`` suffix if that second is taken)
    and points both ``latest`` links at it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    parent = store / target
    parent.mkdir(parents=True, exist_ok=True)
    run = parent / stamp
    n = 1
    while True:
        try:
            run.mkdir()
            break
        except FileExistsError:
            n += 1
            run = parent / f"{stamp}-{n}"
    (run / "logs").mkdir()
    _point(parent / "latest", Path(run.name))
    _point(store / "latest", Path(target) / run.name)
    return run


def _point(link: Path, dest: Path) -> None:
    # Replace atomically so a reader never sees a missing link.
    tmp = link.with_name(f".{link.name}.tmp{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(dest)
    os.replace(tmp, link)


def write_json(path: Path, data: Any) -> None:
    """Writes JSON atomically (temp file, fsync, rename), so a crash leaves the old or new file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing") from None
    except json.JSONDecodeError as e:
        raise RunDirError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None


def update_campaign(run_dir: Path, **fields: Any) -> dict[str, Any]:
    path = run_dir / CAMPAIGN_FILE
    data: dict[str, Any] = read_json(path) if path.exists() else {}
    data.update(fields)
    write_json(path, data)
    return data


def resolve_run_dir(arg: str | os.PathLike[str]) -> Path:
    """Accepts a run directory, or a store / target directory whose ``latest`` link leads to one.
    Raises :class:`RunDirError` saying what is missing."""
    p = Path(arg)
    if not p.exists():
        raise RunDirError(f"{p} does not exist")
    if (p / "latest").exists() and not (p / HISTORY_FILE).exists():
        p = (p / "latest").resolve()
    if not p.is_dir():
        raise RunDirError(f"{p} is not a directory")
    if not (p / HISTORY_FILE).exists():
        raise RunDirError(f"{p} has no {HISTORY_FILE}: is it a run directory of the store?")
    return p
