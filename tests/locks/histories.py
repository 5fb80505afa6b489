"""Builds locks-target histories by hand: operations, the resource's record, the final read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.history import Event


@dataclass
class Res:
    value: int = 0
    elements: list[int] = field(default_factory=list)
    version: int = 0


class Sim:
    """A history under construction. Time advances by one per event."""

    def __init__(self, resources: tuple[str, ...] = ("r0",)) -> None:
        self.events: list[Event] = []
        self.res = {r: Res() for r in resources}
        self.writes: list[dict[str, Any]] = []
        self.t = 0

    def _add(self, process: Any, type: str, f: str, value: Any = None, error: Any = None) -> Event:
        self.t += 10
        e = Event(len(self.events), self.t, process, type, f, value, error)
        self.events.append(e)
        return e

    def invoke(self, process: Any, f: str, value: Any = None) -> Event:
        return self._add(process, "invoke", f, value)

    def complete(self, process: Any, type: str, f: str, value: Any = None) -> Event:
        return self._add(process, type, f, value, None if type == "ok" else "boom")

    def read(self, resource: str) -> tuple[int, int, list[int]]:
        r = self.res[resource]
        return r.version, r.value, list(r.elements)

    def write(
        self,
        op_id: str,
        kind: str,
        *,
        resource: str = "r0",
        arg: int | None = None,
        writer: str = "worker-1",
        token: int | None = None,
        snapshot: tuple[int, int, list[int]] | None = None,
    ) -> dict[str, Any]:
        """Applies a read-modify-write based on ``snapshot`` (default: the current state)."""
        based_on, value, elements = snapshot if snapshot is not None else self.read(resource)
        r = self.res[resource]
        new_value = value + 1 if kind == "incr" else value
        new_elements = [*elements, arg] if kind == "append" and arg is not None else elements
        r.version += 1
        r.value = new_value
        r.elements = new_elements
        w = {
            "resource": resource,
            "seq": r.version,
            "based_on": based_on,
            "writer": writer,
            "op_id": op_id,
            "kind": kind,
            "arg": arg,
            "token": token,
            "prev_value": value,
            "value": new_value,
            "read_at": float(self.t),
            "written_at": float(self.t + 1),
        }
        self.writes.append(w)
        return w

    def op(
        self,
        process: Any,
        op_id: str,
        kind: str = "incr",
        *,
        result: str = "ok",
        applied: bool = True,
        final: bool = False,
        **write_kw: Any,
    ) -> None:
        """A whole operation, serially: invoke, maybe the write, completion."""
        value: dict[str, Any] = {"op_id": op_id, "resource": write_kw.get("resource", "r0")}
        if kind == "append":
            value["element"] = write_kw["arg"]
        if final:
            value["final"] = True
        self.invoke(process, kind, value)
        if applied:
            self.write(op_id, kind, **write_kw)
        self.complete(process, result, kind, None)

    def final_read(self, process: Any = "final") -> list[Event]:
        self.invoke(process, "read-resource")
        record = {
            "resources": {
                name: {
                    "value": r.value,
                    "elements": list(r.elements),
                    "version": r.version,
                    "initial": 0,
                }
                for name, r in self.res.items()
            },
            "writes": sorted(self.writes, key=lambda w: (w["resource"], w["seq"])),
        }
        self.complete(process, "ok", "read-resource", record)
        return self.events
