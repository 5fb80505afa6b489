"""The fault catalogue (see :mod:`workbench.fault` for the seam and :mod:`faults.registry`)."""

from faults.registry import builtin_faults, describe_faults, load_faults, make_fault
from workbench.fault import Fault, FaultError, FaultNotHealed

__all__ = [
    "Fault",
    "FaultError",
    "FaultNotHealed",
    "builtin_faults",
    "describe_faults",
    "load_faults",
    "make_fault",
]
