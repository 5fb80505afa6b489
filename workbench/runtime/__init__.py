"""Runtimes that turn a topology into running processes (see :mod:`workbench.runtime.cluster`).

Entry points: :func:`workbench.runtime.local.start_local_cluster` and
:func:`workbench.runtime.process.reap_orphans`.
"""
