"""A builder of outbox histories for checker tests.

It plays the orders database, the relay and the consumer at once: each write is an invocation
and a completion in the history, and, when it commits, a change row, an outbox row, a stream
entry and an effect (each can be withheld). Tests then edit ``changes`` / ``effects`` /
``streams`` / ``outbox`` to plant an anomaly before :meth:`final_reads` records the reads.
"""

from __future__ import annotations

from typing import Any

from workbench.history import Event

EPOCH = 1_764_880_000.0  # the PostgreSQL clock at the campaign's start
STEP_NS = 10_000_000  # 10 ms between consecutive events


class Builder:
    def __init__(self, *, lag: float = 0.05) -> None:
        self.events: list[Event] = []
        self.lag = lag
        self.changes: list[dict[str, Any]] = []
        self.effects: list[dict[str, Any]] = []
        self.streams: dict[str, list[dict[str, Any]]] = {}
        self.outbox: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self._events_made = 0
        self._seq = 0
        self._stream_ms = 0

    # -- the history --

    def emit(self, process: int, type_: str, f: str, value: Any, error: Any = None) -> Event:
        i = len(self.events)
        e = Event(i, (i + 1) * STEP_NS, process, type_, f, value, error)
        self.events.append(e)
        return e

    def now(self) -> float:
        """The PostgreSQL clock now (epoch seconds), the history's clock plus ``EPOCH``."""
        return EPOCH + len(self.events) * STEP_NS / 1e9

    def new_event(self) -> str:
        self._events_made += 1
        return f"ev-{self._events_made:04d}"

    def write(
        self,
        order: str,
        status: str = "created",
        *,
        outcome: str = "ok",
        committed: bool | None = None,
        error: str | None = None,
        applied: int | None = None,
        deliveries: int | None = None,
        published: int | None = None,
        lag: float | None = None,
        command: str | None = None,
        process: int = 0,
    ) -> str | None:
        """One write of ``order`` (``status`` "created" is a place). ``outcome`` is how the
        client saw it end (ok / fail / info); ``committed`` whether the database has it
        (default: outcome is ok). An uncommitted write can still be ``applied`` or
        ``published`` (a phantom). Returns the event id (None for an uncommitted fail)."""
        f = "place" if status == "created" else "set-status"
        command = command or f"{order}:{'place' if f == 'place' else status}"
        invoke: dict[str, Any] = {"order": order, "command": command, "replica": 0, "final": False}
        if f == "set-status":
            invoke["status"] = status
        self.emit(process, "invoke", f, invoke)
        committed = outcome == "ok" if committed is None else committed
        version = self.versions.get(order, 0) + 1
        event = self.new_event()
        if committed:
            self.versions[order] = version
            at = self.now()
            self.changes.append(
                {"event": event, "order": order, "version": version, "status": status,
                 "command": command, "committed_at": at}
            )  # fmt: skip
            self.outbox[event] = {"state": "sent", "claimed_by": "relay-1"}
        n_applied = (1 if committed else 0) if applied is None else applied
        n_published = (1 if committed else 0) if published is None else published
        for _ in range(n_published):
            self.publish(event, order, version)
        if n_applied:
            self._seq += 1
            self.effects.append(
                {"event": event, "order": order, "version": version, "status": status,
                 "command": command, "applied": n_applied,
                 "deliveries": n_applied if deliveries is None else deliveries,
                 "first_seq": self._seq,
                 "applied_at": self.now() + (self.lag if lag is None else lag)}
            )  # fmt: skip
        if outcome == "ok":
            answer = {"order": order, "version": version, "status": status, "event": event,
                      "replayed": False}  # fmt: skip
            self.emit(process, "ok", f, answer)
        else:
            self.emit(process, outcome, f, None, error or ("refused" if outcome == "fail" else
                                                           "http 500"))  # fmt: skip
        return event if committed or outcome != "fail" else None

    def replay(self, event: str, *, process: int = 0) -> None:
        """A retry of the command that committed ``event``, answered with the same event."""
        c = next(c for c in self.changes if c["event"] == event)
        f = "place" if c["status"] == "created" else "set-status"
        invoke: dict[str, Any] = {"order": c["order"], "command": c["command"], "replica": 1,
                                  "final": True}  # fmt: skip
        if f == "set-status":
            invoke["status"] = c["status"]
        self.emit(process, "invoke", f, invoke)
        answer = {"order": c["order"], "version": c["version"], "status": c["status"],
                  "event": event, "replayed": True}  # fmt: skip
        self.emit(process, "ok", f, answer)

    def publish(self, event: str, order: str, version: int) -> None:
        self._stream_ms += 1
        name = f"orders.events.{int(order.lstrip('o') or 0) % 2}"
        self.streams.setdefault(name, []).append(
            {"id": f"{int(EPOCH * 1000) + self._stream_ms}-0", "event": event, "order": order,
             "version": version}
        )  # fmt: skip

    def effect(self, event: str) -> dict[str, Any]:
        return next(e for e in self.effects if e["event"] == event)

    # -- final reads --

    def final_reads(
        self,
        *,
        orders: bool = True,
        effects: bool = True,
        stream: bool = True,
        outbox: bool = True,
        backlog: int = 0,
        process: int = 9,
    ) -> list[Event]:
        """Records the final reads (a false flag: that read fails) and returns the history;
        ``backlog``: what the last progress poll said the relays still had to publish."""
        self.emit(process, "invoke", "progress", None)
        progress = {"relay_backlog": backlog, "pending": 0, "lag": 0, "applied": len(self.effects)}
        self.emit(process, "ok", "progress", progress)
        state = {c["order"]: {"status": c["status"], "version": c["version"]} for c in self.changes}
        value: dict[str, Any] = {"orders": state, "changes": list(self.changes)}
        if outbox:
            value["outbox"] = dict(self.outbox)
        self._read(process, "read-orders", value if orders else None)
        self._read(process, "read-effects", {"effects": list(self.effects)} if effects else None)
        self._read(process, "read-stream", {"streams": dict(self.streams)} if stream else None)
        return self.events

    def _read(self, process: int, f: str, value: Any) -> None:
        self.emit(process, "invoke", f, None)
        if value is None:
            self.emit(process, "fail", f, None, "unavailable")
        else:
            self.emit(process, "ok", f, value)
