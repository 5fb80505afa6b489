"""The fault catalogue (see :mod:`faults.base` for the seam and :mod:`faults.registry`)."""

from faults.base import Fault, FaultError, FaultNotHealed
from faults.registry import builtin_faults, describe_faults, load_faults, make_fault

__all__ = [
    "Fault",
    "FaultError",
    "FaultNotHealed",
    "builtin_faults",
    "describe_faults",
    "load_faults",
    "make_fault",
]
