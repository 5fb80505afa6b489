"""Errors raised while starting or driving the local runtime."""

from __future__ import annotations


class RuntimeStartError(RuntimeError):
    """A server or service could not be started; the message says which, why, and (when there is
    one) ends with the last lines of its log."""


class MissingBinary(RuntimeStartError):
    """A required executable or library is not installed where the workbench looks for it."""


class PortInUse(RuntimeStartError):
    """A port the runtime was told to use is already taken by another process."""
