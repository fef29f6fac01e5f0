"""Deep Residual Networks, Hands-On: the course's small library."""
from . import cpu

cpu.pin()   # before anything computes: the same numbers on every x86-64 CPU (deepres/cpu.py)

from .course.budget import Budget, get_budget, pick_device, setup  # noqa: E402
from .data import DataNotFound, load  # noqa: E402
from .training import Run, clear_cache, evaluate, train  # noqa: E402

__all__ = ["Budget", "DataNotFound", "Run", "clear_cache", "evaluate", "get_budget",
           "load", "pick_device", "setup", "train"]
