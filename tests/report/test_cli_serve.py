"""`workbench report` / `workbench serve` glue and the read-only store server."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import httpx
import pytest

from workbench.report.cli import EX_USAGE, add_report_parser, add_serve_parser
from workbench.report.serve import make_app


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="workbench")
    sub = parser.add_subparsers(dest="command")
    add_report_parser(sub)
    add_serve_parser(sub)
    return parser.parse_args(argv)


def test_report_command_writes_reports_and_refreshes_the_store_index(
    bad_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = bad_run.parent.parent
    (store / "latest").symlink_to(bad_run.relative_to(store))
    args = _parse(["report", str(store / "latest")])
    assert args.func(args) == 0
    out = capsys.readouterr().out.split()
    assert {Path(p).name for p in out} == {
        "report.html", "junit.xml", "summary.md", "index.html",
    }  # fmt: skip
    assert (bad_run / "report.html").is_file() and (store / "index.html").is_file()


@pytest.mark.parametrize("breakage", ["missing", "no-campaign", "bad-json", "not-object"])
def test_report_command_rejects_bad_run_dirs_with_one_line_and_64(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], breakage: str
) -> None:
    run = tmp_path / "run"
    if breakage != "missing":
        run.mkdir()
        (run / "history.jsonl").write_text("")
    if breakage == "bad-json":
        (run / "campaign.json").write_text("{oops")
    if breakage == "not-object":
        (run / "campaign.json").write_text(json.dumps([1, 2]))
    args = _parse(["report", str(run)])
    assert args.func(args) == EX_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("workbench report: ")
    assert "Traceback" not in err


def test_serve_command_rejects_a_missing_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parse(["serve", "--store", str(tmp_path / "nope"), "--port", "0"])
    assert args.func(args) == EX_USAGE
    assert "no such store" in capsys.readouterr().err


def test_store_is_served_read_only_with_the_latest_symlink(bad_run: Path) -> None:
    from workbench.report import write_reports, write_store_index

    store = bad_run.parent.parent
    write_reports(bad_run)
    (store / "latest").symlink_to(bad_run.relative_to(store))
    write_store_index(store)
    # A link out of the store, as a run's database directory kept under /tmp once was.
    outside = bad_run.parent.parent.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not for the report server")
    (bad_run / "pg").symlink_to(outside)

    async def fetch() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=make_app(store))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return {
                "index": await c.get("/"),
                "report": await c.get("/latest/report.html"),
                "history": await c.get("/payments/20250101T120000/history.jsonl"),
                "post": await c.post("/index.html"),
                "delete": await c.delete("/latest/report.html"),
                "escape": await c.get("/%2e%2e/%2e%2e/etc/passwd"),
                "link-out": await c.get("/latest/pg/secret.txt"),
            }

    r = asyncio.run(fetch())
    assert r["index"].status_code == 200 and "Fault campaigns" in r["index"].text
    assert r["report"].status_code == 200 and "double-charged" in r["report"].text
    assert r["history"].status_code == 200
    assert r["history"].headers["content-type"].startswith("text/plain")
    assert r["post"].status_code == 405 and r["delete"].status_code == 405
    assert r["escape"].status_code == 404
    assert r["link-out"].status_code == 404 and "not for" not in r["link-out"].text
