"""Every payment resolves once the faults are healed.

Reads the ``pay`` operations described in :mod:`checkers.payments_history`. A key is resolved
when one of its original requests (not a reuse with another body) got a 2xx, or a terminal
answer (422, 400). After the final phase, which heals every fault, waits out the leases and
retries every unresolved key, an unresolved key is a payment the system can no longer finish:
the client is stuck with 409s or 5xx forever.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from checkers.payments_history import by_key, key_name, pay_requests, plural, request_witnesses
from workbench.checker import Anomaly, CheckContext, CheckResult, Kind, event_indices
from workbench.history import Event, pair_operations


def _answer(status: int | None, error: object, type_: str) -> str:
    if status is not None:
        return f"{status}"
    return f"{type_} {error}" if error else type_


class Liveness:
    """Every key resolved after the final phase.

    Result: one ``unresolved`` anomaly per key (data ``{"account", "key", "attempts",
    "answers"}``: the count of each answer it got); ``impact = {"keys", "amount_cents"}``.
    ``"unknown"`` when keys are unresolved but the history shows no final phase (no request
    marked ``final`` and no ``read-provider``): the campaign ended before it could resolve them.
    """

    name = "liveness"
    kind: Kind = "liveness"

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        keys = by_key(pay_requests(history))
        anomalies: list[Anomaly] = []
        cents = 0
        final_ran = any(
            op.f == "read-provider"
            or (
                op.f == "pay" and isinstance(op.invoke.value, dict) and op.invoke.value.get("final")
            )
            for op in pair_operations(history)
        )
        for key_id, reqs in sorted(keys.items()):
            own = [r for r in reqs if not r.reuse]
            if not own or any(r.type == "ok" or r.terminal for r in own):
                continue
            answers = Counter(_answer(r.status, r.error, r.type) for r in own)
            cents += own[0].amount_cents
            listed = ", ".join(f"{a} x{n}" for a, n in answers.most_common())
            anomalies.append(
                Anomaly(
                    "unresolved",
                    f"{key_name(key_id)} never resolved after {plural(len(own), 'attempt')} "
                    f"({listed})",
                    event_indices(*(r.op for r in own)),
                    {
                        "account": key_id[0],
                        "key": key_id[1],
                        "attempts": len(own),
                        "answers": dict(answers),
                    },
                    witnesses=request_witnesses(own, "unresolved attempt"),
                )
            )
        total = sum(1 for reqs in keys.values() if any(not r.reuse for r in reqs))
        impact = {"keys": len(anomalies), "amount_cents": cents}
        if anomalies and not final_ran:
            return CheckResult(
                self.name, "unknown", self.kind,
                f"{plural(len(anomalies), 'payment')} of {total} unresolved, but the history has "
                "no final phase to resolve them",
                tuple(anomalies), impact,
            )  # fmt: skip
        if anomalies:
            overall = Counter()  # type: Counter[str]
            for a in anomalies:
                overall.update(a.data["answers"])
            top = ", ".join(f"{a} x{n}" for a, n in overall.most_common(3))
            summary = (
                f"{plural(len(anomalies), 'payment')} of {total} never resolved after the final "
                f"phase (answers: {top})"
            )
        else:
            summary = f"all {plural(total, 'payment')} resolved"
        return CheckResult(
            self.name, not anomalies, self.kind, summary, tuple(anomalies), impact,
            stats={"payments": total, "final_phase": final_ran},
        )  # fmt: skip
