"""``workbench serve``: the store, read-only, on 127.0.0.1.

Starlette's StaticFiles answers GET and HEAD only (anything else is 405), so the server cannot
change the store. It binds to the loopback interface: histories can hold customer-like data and
a report server has no business being reachable from the network. ``latest`` is a symlink inside
the store, so links are followed, but only to files whose real path is inside the store: a link
in a run directory that points out of it (a database's data directory kept under /tmp) is never
served.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from workbench.report.index import write_store_index

HOST = "127.0.0.1"
DEFAULT_PORT = 8000

# Raw run files open in the browser as text instead of downloading as octet-stream.
mimetypes.add_type("text/plain", ".jsonl")
mimetypes.add_type("text/plain", ".log")
mimetypes.add_type("text/markdown", ".md")


class StoreFiles(StaticFiles):
    """StaticFiles that follows links only to files inside the served directory.

    Starlette's ``follow_symlink`` checks the path before resolving links (``abspath``), so a
    link inside the directory that points out of it would be served."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, html=True, follow_symlink=True)
        self.root = os.path.realpath(directory)

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        full_path, stat = super().lookup_path(path)
        if stat is None:
            return full_path, stat
        real = os.path.realpath(full_path)
        if os.path.commonpath([real, self.root]) != self.root:
            return "", None
        return full_path, stat


def make_app(store_dir: str | Path) -> Starlette:
    """A Starlette app serving ``store_dir`` statically (``/`` → ``index.html``)."""
    store = Path(store_dir).resolve()
    files = StoreFiles(store)
    return Starlette(routes=[Mount("/", app=files, name="store")])


def serve(store_dir: str | Path, port: int = DEFAULT_PORT) -> None:
    """Regenerates ``index.html`` then serves the store until interrupted (blocks)."""
    import uvicorn

    write_store_index(store_dir)
    uvicorn.run(make_app(store_dir), host=HOST, port=port, log_level="warning")
