"""Exercise checkers: ``from deepres.course.checks import vgg as check`` then ``check.stack_params(fn)``."""
from .compare import compare_modules, copy_weights
from .core import CheckFailed, Checker, run_checks

__all__ = ["CheckFailed", "Checker", "compare_modules", "copy_weights", "run_checks"]
