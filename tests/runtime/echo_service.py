"""A tiny HTTP service for runtime and fault tests (stdlib only, plus psycopg/redis for /deps).

    python echo_service.py PORT

GET /health -> 200 "ok"; GET /env -> the WORKBENCH_* and dependency variables as JSON;
GET /time -> {"time": time.time(), "pid": ...}; GET /deps -> {"pg": ..., "redis": ...}: a query
through each ``*_DSN`` / ``*_URL`` the runtime set (i.e. through the Toxiproxy links).
"""

from __future__ import annotations

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ENV_SUFFIXES = ("_HOST", "_PORT", "_DSN", "_URL")


def _deps() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in os.environ.items():
        if key.endswith("_DSN"):
            import psycopg

            try:
                with psycopg.connect(value, connect_timeout=3) as conn:
                    row = conn.execute("SELECT 1").fetchone()
                out[key] = row[0] if row else None
            except Exception as e:
                out[key] = f"error: {e}"
        elif key.endswith("_URL") and value.startswith("redis://"):
            import redis

            try:
                with redis.Redis.from_url(value, socket_timeout=3) as r:
                    out[key] = bool(r.ping())
            except Exception as e:
                out[key] = f"error: {e}"
    return out


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            body: Any = "ok"
        elif self.path == "/env":
            body = {
                k: v
                for k, v in os.environ.items()
                if k.startswith(("WORKBENCH_", "FAKETIME")) or k.endswith(_ENV_SUFFIXES)
            }
        elif self.path == "/time":
            body = {"time": time.time(), "pid": os.getpid()}
        elif self.path == "/deps":
            body = _deps()
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
