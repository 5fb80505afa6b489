"""The set checker (Jepsen's ``set``): elements added, then a final read of them all.

Operations: ``add`` with value = the element; ``read`` whose ok value is the list of every
element present. The last ok ``read`` is the final read. An element is:

- *lost* when its add was acknowledged (``ok``) but the final read lacks it (an anomaly);
- *unexpected* when the final read has it but no add of it was ever invoked (an anomaly);
- *recovered* when its add was indeterminate (``info``) or failed and it is present; a present
  element whose add ended ``fail`` is an anomaly too: ``fail`` promised no effect.

Result ``stats``: {"attempted", "acknowledged", "lost", "unexpected", "recovered",
"failed_but_present"} counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workbench.checker import Anomaly, CheckContext, CheckResult, Kind, Witness
from workbench.history import Event, Operation, pair_operations


class SetChecker:
    name = "set"
    kind: Kind = "safety"

    def __init__(self, add_f: str = "add", read_f: str = "read") -> None:
        self.add_f = add_f
        self.read_f = read_f

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        ops = pair_operations(history)
        reads = [op for op in ops if op.f == self.read_f and op.type == "ok"]
        if not reads:
            return CheckResult(
                self.name, "unknown", self.kind, summary="no successful final read: cannot judge"
            )
        final = reads[-1]
        present: set[Any] = set(final.value or [])
        adds: dict[Any, list[Operation]] = {}
        for op in ops:
            if op.f == self.add_f:
                adds.setdefault(op.invoke.value, []).append(op)
        anomalies: list[Anomaly] = []
        lost = failed_present = recovered = acked = 0
        for element, attempts in adds.items():
            types = {a.type for a in attempts}
            if "ok" in types:
                acked += 1
                if element not in present:
                    lost += 1
                    ok_ops = [a for a in attempts if a.type == "ok"]
                    anomalies.append(
                        Anomaly(
                            "lost",
                            f"element {element!r} was acknowledged but the final read lacks it",
                            data={"element": element},
                            witnesses=(
                                *(Witness.of(a, "acknowledged add") for a in ok_ops),
                                self._absent(final, element, len(present)),
                            ),
                            at=final.invoke.index,  # lost once a read that must see it began
                        )
                    )
            elif element in present:
                if types == {"fail"}:
                    failed_present += 1
                    anomalies.append(
                        Anomaly(
                            "failed-but-present",
                            f"element {element!r} is present though every add of it failed",
                            data={"element": element},
                            witnesses=(
                                *(
                                    Witness.of(
                                        a,
                                        "failed add",
                                        str(a.completion.error if a.completion else ""),
                                    )
                                    for a in attempts
                                ),
                                self._present(final, element),
                            ),
                            at=max(Witness.of(final, "").indices()),
                        )
                    )
                else:
                    recovered += 1
        unexpected = sorted(present - set(adds), key=repr)
        for element in unexpected:
            anomalies.append(
                Anomaly(
                    "unexpected",
                    f"element {element!r} is present but was never added",
                    data={"element": element},
                    witnesses=(self._present(final, element),),
                    at=max(Witness.of(final, "").indices()),
                )
            )
        parts: list[str] = []
        if lost:
            parts.append(f"{lost} acknowledged elements lost")
        if unexpected:
            parts.append(f"{len(unexpected)} elements never added appeared")
        if failed_present:
            parts.append(f"{failed_present} failed adds took effect")
        summary = ", ".join(parts) or f"all {acked} acknowledged elements present"
        return CheckResult(
            self.name,
            not anomalies,
            self.kind,
            summary=summary,
            anomalies=tuple(anomalies),
            impact={"lost": lost, "unexpected": len(unexpected), "failed_present": failed_present},
            stats={
                "attempted": len(adds),
                "acknowledged": acked,
                "lost": lost,
                "unexpected": len(unexpected),
                "recovered": recovered,
                "failed_but_present": failed_present,
            },
        )

    @staticmethod
    def _absent(final: Operation, element: Any, size: int) -> Witness:
        return Witness.excerpt_of(
            final, "final read", {"element": element, "present": False, "elements_read": size}
        )

    @staticmethod
    def _present(final: Operation, element: Any) -> Witness:
        return Witness.excerpt_of(final, "final read", {"element": element, "present": True})
