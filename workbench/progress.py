"""Progress while a campaign runs: elapsed of total, ops/s, ok/fail/info counts, active faults.

On a terminal a live line (rich) refreshes a few times a second; elsewhere (CI logs) a plain
line is printed every few seconds so logs stay short.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from workbench.workers import Tally


class Progress:
    def __init__(
        self,
        tally: Tally,
        total_seconds: float,
        active_faults: Callable[[], list[str]],
        *,
        stream: TextIO | None = None,
        phase: str = "main",
    ) -> None:
        self.tally = tally
        self.total = total_seconds
        self.active_faults = active_faults
        self.stream = stream or sys.stderr
        self.phase = phase
        self._started = time.monotonic()
        self._last_total = 0
        self._last_time = self._started
        self._rate = 0.0

    def line(self) -> str:
        now = time.monotonic()
        total = self.tally.total()
        if now - self._last_time >= 0.5:
            self._rate = (total - self._last_total) / (now - self._last_time)
            self._last_total, self._last_time = total, now
        c = self.tally.by_type
        faults = ", ".join(self.active_faults()) or "none"
        # The final phase has no fixed length: it lasts until unresolved work resolves.
        of = f" of {self.total:.0f}s" if self.phase == "main" else ""
        return (
            f"[{self.phase}] {now - self._started:5.1f}s{of}  "
            f"{self._rate:6.0f} ops/s  ok {c['ok']}  fail {c['fail']}  info {c['info']}  "
            f"faults: {faults}"
        )

    async def run(self) -> None:
        """Shows progress until cancelled."""
        if self.stream.isatty():
            console = Console(file=self.stream)
            with Live(
                Text(self.line()), console=console, refresh_per_second=4, transient=True
            ) as lv:
                while True:
                    await asyncio.sleep(0.25)
                    lv.update(Text(self.line()))
        else:
            while True:
                await asyncio.sleep(5)
                print(self.line(), file=self.stream, flush=True)
