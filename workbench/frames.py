"""Histories as pandas DataFrames, one row per operation, for analysis and plots.

Columns of :func:`operations_frame`:

=================  =====================================================================
``process``        the process that invoked it (int)
``f``              the operation's name
``value``          the invocation's value (object)
``type``           ``ok`` / ``fail`` / ``info`` (``info`` also when never completed)
``result``         the completion's value (object; ``None`` when never completed)
``error``          the completion's error, if any
``start``/``end``  seconds since the campaign started (``end`` is NaN when never completed)
``latency``        ``end - start`` in seconds (NaN when never completed)
``invoke_index``   history index of the invocation
``complete_index`` history index of the completion (-1 when never completed)
=================  =====================================================================

:func:`faults_frame` lists the nemesis events (time, f, fault, value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from workbench.history import Event, pair_operations

OPERATION_COLUMNS = [
    "process",
    "f",
    "value",
    "type",
    "result",
    "error",
    "start",
    "end",
    "latency",
    "invoke_index",
    "complete_index",
]


def operations_frame(events: Sequence[Event]) -> pd.DataFrame:
    rows = []
    for op in pair_operations(events):
        done = op.completion
        start = op.invoke.time / 1e9
        end = done.time / 1e9 if done is not None else math.nan
        rows.append(
            (
                op.process,
                op.f,
                op.invoke.value,
                op.type,
                None if done is None else done.value,
                None if done is None else done.error,
                start,
                end,
                end - start,
                op.invoke.index,
                -1 if done is None else done.index,
            )
        )
    return pd.DataFrame.from_records(rows, columns=OPERATION_COLUMNS)


def faults_frame(events: Sequence[Event]) -> pd.DataFrame:
    rows = []
    for e in events:
        if e.is_client:
            continue
        fault = e.value.get("fault") if isinstance(e.value, dict) else None
        rows.append((e.time / 1e9, e.f, fault, e.value, e.index))
    return pd.DataFrame.from_records(rows, columns=["time", "f", "fault", "value", "index"])
