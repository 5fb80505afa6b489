"""Free TCP ports on 127.0.0.1.

Ports are drawn at random *below* the kernel's ephemeral range: a port from that range, closed
and handed to a server, can meanwhile become the local port of any outgoing connection (the
workload opens thousands), and a server restarted after a kill fault must get its port back.
Another process could still grab a port between our check and the server's bind, so callers
check again with :func:`ensure_free` right before starting and a collision surfaces as
:class:`PortInUse`. Ports handed out by this process are remembered so two servers of one
cluster never get the same one.
"""

from __future__ import annotations

import errno
import random
import socket
import threading
from pathlib import Path

from workbench.runtime.errors import PortInUse

HOST = "127.0.0.1"

_lock = threading.Lock()
_given: set[int] = set()


_rng = random.SystemRandom()


def _candidate_range() -> tuple[int, int]:
    """Ports below the ephemeral range (``/proc/sys/net/ipv4/ip_local_port_range``)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    if low > 12000:
        return 10000, low - 1
    return 49152, 65535  # an unusual ephemeral range: fall back to the IANA dynamic ports


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nothing uses now, outside the ephemeral range, and that this
    process has not handed out before."""
    lo, hi = _candidate_range()
    with _lock:
        for _ in range(200):
            port = _rng.randint(lo, hi)
            if port not in _given and _bindable(port):
                _given.add(port)
                return port
    raise PortInUse(f"could not find a free port on {HOST} in {lo}-{hi} after 200 tries")


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
