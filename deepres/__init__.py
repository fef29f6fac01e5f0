"""Deep Residual Networks, Hands-On: the course's small library."""
from .budget import Budget, get_budget, pick_device, setup
from .data import DataNotFound, load
from .training import Run, clear_cache, evaluate, train

__all__ = ["Budget", "DataNotFound", "Run", "clear_cache", "evaluate", "get_budget",
           "load", "pick_device", "setup", "train"]
