"""Free TCP ports on 127.0.0.1.

The kernel hands out an ephemeral port for a socket bound to port 0; we close it and give the
number to the server we start. Another process could grab it in between, so callers check again
with :func:`ensure_free` right before starting and a collision surfaces as :class:`PortInUse`.
Ports handed out by this process are remembered so two servers of one cluster never get the same
one even if the kernel recycles it.
"""

from __future__ import annotations

import errno
import socket
import threading

from workbench.runtime.errors import PortInUse

HOST = "127.0.0.1"

_lock = threading.Lock()
_given: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now and this process has not handed out."""
    with _lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((HOST, 0))
                port: int = s.getsockname()[1]
            if port not in _given:
                _given.add(port)
                return port
    raise PortInUse("could not find a free port on 127.0.0.1 after 100 tries")


def ensure_free(port: int, what: str) -> None:
    """Raises :class:`PortInUse` naming ``what`` when 127.0.0.1:``port`` cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR as servers set it: a port in TIME_WAIT after a kill is usable, a port with
        # a live listener is not.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"port {HOST}:{port} for {what} is already in use by another process "
                    f"(find it with `ss -ltnp 'sport = :{port}'`)"
                ) from e
            raise PortInUse(f"cannot bind {HOST}:{port} for {what}: {e}") from e
