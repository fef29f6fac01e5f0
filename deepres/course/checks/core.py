"""The exercise-checker framework.

A checker calls the learner's code on inputs it chooses, compares with the reference,
collects every problem it finds, and then either prints a short success line or raises
:class:`CheckFailed` listing each problem. It never lets an exception escape, the
learner's or its own: a crash in their code becomes one line saying where and what, a
check that runs longer than its time limit stops with a message (``timelimit``), and anything
the comparison cannot digest is reported as such.

Hints come in tiers: a failure says what is wrong; ``check.hint()``, or a second failure
of the same exercise, adds a nudge (never the answer).
"""
import functools
import inspect
import json
import math
import numbers
import random
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .timelimit import TIME_LIMIT, TimeLimit, learners_code, slowness, stop_after

# seconds each check takes with a right answer, on that machine (devtools/check_seconds.py)
REFERENCE_SECONDS = Path(__file__).with_name("reference_seconds.json")
passed_seconds = {}   # exercise -> seconds of each check that passed in this session


class CheckFailed(AssertionError):
    """Raised by a check cell whose exercise is not solved yet (nbval sees a failure).

    It is feedback, not a crash: IPython (Jupyter, Colab) shows only its message, with no
    traceback through this library. It still stops "Run all" and fails nbval.
    """

    def _render_traceback_(self):  # IPython calls this instead of printing a traceback
        return [f"{type(self).__name__}: {line}" if i == 0 else line
                for i, line in enumerate(str(self).splitlines())]


class NotDoneYet(Exception):
    """Internal: the learner's code still raises NotImplementedError."""


class RuleBroken(Exception):
    """The learner's code did what the exercise rules out (reported like a crash)."""


CRASHED = object()  # what Checker.call returns when the learner's code raised
EXITED = ("{label}: your code called sys.exit() (or exit(), quit()), which would end the "
          "notebook's kernel; return the value instead")

_hints = {"exercise": None, "hint": "", "failures": {}}  # the last check, for hint()


def hint():
    """A nudge for the exercise checked last (the check cell that ran last)."""
    if _hints["exercise"] is None:
        print("Run a check cell first; then hint() gives a nudge for that exercise.")
    else:
        print(f"{_hints['exercise']} - a nudge: {_hints['hint'] or 'no hint for this one.'}")


class Checker:
    def __init__(self, exercise, hint="", seed=None, seeded=True):
        self.exercise, self.hint, self.seeded = exercise, hint, seeded
        self.problems, self.passed = [], 0
        # the cases are drawn at random on every check; the seed repeats them
        self.seed = seed if seed is not None else random.SystemRandom().randrange(10 ** 6)
        self.random = random.Random(self.seed)

    def call(self, fn, *args, label=None, **kwargs):
        """``fn(*args, **kwargs)``, turning a crash into a recorded problem (and CRASHED)."""
        label = label or _describe_call(fn, args, kwargs)
        if not callable(fn):
            self.fail(f"expected a function or class, but got {type(fn).__name__} {_short(fn)}")
            return CRASHED
        try:
            return fn(*args, **kwargs)
        except NotImplementedError as error:
            if 'missing the required "forward" function' in str(error):
                self.fail(f"{label}: {str(error).split(' is missing')[0]} has no method "
                          f"named forward. Check its spelling and indentation; an "
                          f"nn.ModuleList cannot be called either: loop over it instead")
                return CRASHED
            if _raised_inside_torch(error):   # not the stub: something torch cannot do
                self.fail(f"{label}: PyTorch raised NotImplementedError: {error}"
                          f"{_where(error)}")
                return CRASHED
            raise NotDoneYet() from None
        except Exception as error:  # the learner's bug, reported, never re-raised
            self.fail(f"{label} raised {type(error).__name__}: {error}{_where(error)}")
            return CRASHED
        except SystemExit:
            self.fail(EXITED.format(label=label))
            return CRASHED

    def expect(self, ok, message):
        """Record ``message`` as a problem unless ``ok``."""
        if ok:
            self.passed += 1
        else:
            self.fail(message)
        return bool(ok)

    def fail(self, message, first=False):
        """Record ``message`` as a problem (once); ``first``: before the others (a named
        mistake, which says more than the differences it causes)."""
        if message not in self.problems:
            self.problems.insert(0 if first else len(self.problems), message)

    def number(self, value, label, integer=True):
        """``value`` as a Python number if it is one (numpy numbers and one-element
        tensors count), else None with the problem recorded."""
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        elif isinstance(value, np.generic):
            value = value.item()
        kind = type(value).__name__
        # any number type (sympy's, fractions'): its Python value
        if isinstance(value, numbers.Integral) and not isinstance(value, (bool, int)):
            value = int(value)
        elif isinstance(value, numbers.Real) and not isinstance(value, (int, float)):
            value = float(value)
        if value is None:
            self.fail(f"{label} returned None: is the `return` missing?")
        elif isinstance(value, bool):
            self.fail(f"{label} returned {value}, a bool; expected a number")
        elif isinstance(value, str):
            self.fail(f"{label} returned the string {_short(value)}: return the number "
                      f"itself, not text")
        elif isinstance(value, (tuple, list)):
            self.fail(f"{label} returned a {kind} of {len(value)} items; expected one number")
        elif isinstance(value, torch.Tensor):
            self.fail(f"{label} returned a tensor of shape {tuple(value.shape)}; expected "
                      f"one number")
        elif not isinstance(value, (int, float)):
            self.fail(f"{label} returned a {kind}; expected a number")
        elif isinstance(value, float) and not math.isfinite(value):
            self.fail(f"{label} returned {value}")
        elif integer and isinstance(value, float) and not value.is_integer():
            self.fail(f"{label} returned {value}, which is not a whole number")
        else:
            return int(value) if integer else value
        return None

    def arithmetic(self, fn, *args, label):
        """``fn(*args)`` as a whole number (see :meth:`number`), run with building any
        nn.Module refused (an arithmetic exercise); None, with the problem recorded, if it
        crashed or returned something else."""
        with no_modules(self.exercise):
            got = self.call(fn, *args, label=label)
        return None if got is CRASHED else self.number(got, label)

    def tensor(self, value, label, like):
        """``value`` if it is a tensor with the shape and dtype of ``like``, else None
        with the problem recorded."""
        if isinstance(value, (tuple, list)):
            self.fail(f"{label} returned a {type(value).__name__} of {len(value)} items; "
                      f"expected one tensor")
        elif isinstance(value, np.ndarray):
            self.fail(f"{label} returned a numpy array; return a torch tensor (numpy breaks "
                      f"the autograd graph)")
        elif not isinstance(value, torch.Tensor):
            self.fail(f"{label} returned {'None' if value is None else 'a ' + type(value).__name__}"
                      f"; expected a tensor")
        elif tuple(value.shape) != tuple(like.shape):
            self.fail(f"{label} returned shape {tuple(value.shape)}; expected "
                      f"{tuple(like.shape)}")
        elif value.dtype != like.dtype:
            self.fail(f"{label} returned {value.dtype}; expected {like.dtype}, like the "
                      f"input (was a tensor created with another dtype?)")
        elif not torch.isfinite(value).all():
            self.fail(f"{label} contains NaN or infinite values")
        else:
            return value
        return None

    def report(self):
        failures = _hints["failures"]
        if not self.problems:
            failures.pop(self.exercise, None)
            print(f"{self.exercise}: correct - all {self.passed} checks passed.")
            return
        failures[self.exercise] = failures.get(self.exercise, 0) + 1
        lines = "\n".join(f"  - {p}" for p in self.problems[:6])
        more = f"\n  (and {len(self.problems) - 6} more)" if len(self.problems) > 6 else ""
        if self.seeded:
            more += (f"\n  (the cases were drawn with seed {self.seed}: pass seed={self.seed} "
                     f"to the check to draw the same ones again)")
        if failures[self.exercise] >= 2 and self.hint:
            nudge = f"\nA nudge: {self.hint}"
        else:
            nudge = "\nFor a nudge, run check.hint()." if self.hint else ""
        raise CheckFailed(f"{self.exercise}: not yet.\n{lines}{more}{nudge}")


@contextmanager
def no_modules(exercise):
    """While the learner's code runs, building any nn.Module raises RuleBroken: an
    arithmetic exercise must not be answered by building the network and counting."""
    original = nn.Module.__init__

    def refuse(self, *args, **kwargs):
        raise RuleBroken(f"{exercise} asks for arithmetic, but your code built a "
                         f"{type(self).__name__}: compute the number from the sizes")

    nn.Module.__init__ = refuse
    try:
        yield
    finally:
        nn.Module.__init__ = original


def run_checks(exercise, body, hint="", answer=None, kind=None, seed=None, limit=None,
               seeded=True, library=()):
    """Run ``body(checker)`` and report. The function every check cell calls. It returns
    None (a check cell shows the report and nothing else) and raises :class:`CheckFailed`
    when something is wrong.

    ``answer`` is what the learner passed in: something callable, a class (``kind=
    "class"``, though a function that builds the module is fine too) or a function.
    ``seed`` repeats the random cases of an earlier check (``seeded=False``: the check
    draws none). A check stops after ``limit`` seconds (default ``TIME_LIMIT`` times how
    much slower this machine is than the one the course was written on; ``False``: no
    limit, for a check that trains). Whatever
    the learner's code changes of torch's global settings (default dtype, autograd on or
    off) is put back, and said. ``library``: the course's own functions or classes that
    do what the exercise asks (the page used them); an answer that is, or calls, one of
    them is turned away."""
    _hints.update(exercise=exercise, hint=hint)
    if answer is not None:
        problem = _answer_problem(answer, kind) or _library_answer(answer, library)
        if problem:
            raise CheckFailed(f"{exercise}: {problem}")
    checker = Checker(exercise, hint, seed, seeded)
    limit = round(TIME_LIMIT * slowness()) if limit is None else limit
    settings = (torch.get_default_dtype(), torch.is_grad_enabled(),
                torch.is_inference_mode_enabled(), torch.get_default_device())
    threads = set(threading.enumerate())
    used, started = [], time.perf_counter()
    try:
        with stop_after(limit or None), _settings_put_back(settings, checker), \
                _watching(_watched(library), used):
            body(checker)
    except NotDoneYet:
        raise CheckFailed(
            f"{exercise}: not done yet - the code still raises NotImplementedError. "
            f"Replace that line with your solution and run the cell again, then this one."
        ) from None
    except TimeLimit:
        running = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        raise CheckFailed(
            f"{exercise}: the check stopped after {limit} s - your code did not finish "
            f"(the limit is {TIME_LIMIT} s on the machine this course was written on, "
            f"times this machine's measured slowness, {slowness():.1f}). "
            f"Is there a loop that never ends, or a far too large tensor? (A loop inside "
            f"one call of compiled code, such as sum(range(10**11)), cannot be stopped "
            f"until it returns.)" + _reference_time(exercise)
            + (f" {len(running)} thread(s) your code started still run: Python cannot "
               f"stop them; restart the kernel to end them." if running else "")) from None
    except SystemExit:   # from the learner's code that the check called directly
        checker.fail(EXITED.format(label="your answer"))
    except Exception as error:  # what the learner's code returned broke the comparison
        checker.fail(f"the check could not use what your code returned "
                     f"({type(error).__name__}: {error})")
    if used:
        checker.fail(_uses(used[0]), first=True)
    checker.report()
    if limit:   # a check that trains has no limit, and no reference time to quote
        passed_seconds.setdefault(exercise, []).append(time.perf_counter() - started)


def _reference_time(exercise):
    """How long the course's solution takes for this check here: its time on the machine
    the course was written on, times this machine's slowness ("" if not measured)."""
    try:
        seconds = json.loads(REFERENCE_SECONDS.read_text())[exercise] * slowness()
    except (OSError, ValueError, KeyError):
        return ""
    return (f" The course's solution passes this check in "
            f"{'under 0.1' if seconds < 0.1 else f'about {seconds:.1f}'} s here.")


_RUN_CHECKS = run_checks.__code__   # where a check's own frames begin, below the learner's cell


@contextmanager
def _settings_put_back(settings, checker):
    """Put torch's default dtype, default device and autograd switch back as they were,
    and say so if the learner's code changed them (inference mode, which cannot be left
    from outside, is named)."""
    dtype, grad, inference, device = settings
    try:
        yield
    finally:
        if torch.is_inference_mode_enabled() != inference:
            checker.fail("your code left torch.inference_mode() switched on (entered without "
                         "`with`): tensors made from now on cannot be used by autograd. "
                         "Restart the kernel, and use `with torch.inference_mode():`")
        if torch.get_default_device() != device:
            checker.fail(f"your code changed torch's default device to "
                         f"{torch.get_default_device()} (torch.set_default_device); the "
                         f"check set it back to {device}")
            torch.set_default_device(device)
        if torch.get_default_dtype() != dtype:
            checker.fail(f"your code changed torch's default dtype to "
                         f"{torch.get_default_dtype()} (torch.set_default_dtype); it changes "
                         f"every tensor made after it. The check set it back to {dtype}")
            torch.set_default_dtype(dtype)
        if torch.is_grad_enabled() != grad and not torch.is_inference_mode_enabled():
            checker.fail(f"your code turned autograd {'on' if torch.is_grad_enabled() else 'off'}"
                         f" for everything after it (torch.set_grad_enabled); use "
                         f"`with torch.no_grad():` around the lines that need it. The check "
                         f"turned it back {'on' if grad else 'off'}")
            torch.set_grad_enabled(grad)


def _raised_inside_torch(error):
    """Whether the innermost frame of ``error`` is PyTorch's own code (not the learner's
    ``raise NotImplementedError``)."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and "torch" in frames[-1].filename.replace("\\", "/").split("/")


def _answer_problem(answer, kind):
    name = type(answer).__name__
    if isinstance(answer, nn.Module) and kind == "function":
        return (f"pass the function you wrote (its name, without parentheses), not the "
                f"{name} it builds: the check calls your function itself")
    if isinstance(answer, nn.Module):
        return (f"pass the class itself ({name}), not an instance of it ({name}(...)): "
                f"the check builds its own instances")
    if not callable(answer):
        return (f"pass the {kind or 'function'} you wrote (its name, without parentheses), "
                f"not {name} {_short(answer)}.")
    return None


def _library_answer(answer, library):
    """What is wrong with an answer that hands in the library's own code, or None: the
    object itself, a partial of it, a subclass of it, or a function that names it (the
    code that runs is watched too: ``_watching``)."""
    while isinstance(answer, functools.partial):
        answer = answer.func
    for own in library:
        if (answer is own or _calls(answer, own)
                or isinstance(answer, type) and isinstance(own, type) and issubclass(answer, own)):
            return _uses(own)
    return None


def _uses(own):
    return (f"your answer uses the course's own `{own.__name__}` ({own.__module__}), which "
            f"the page used; the exercise is to write it yourself, without it (to compare "
            f"yours with it, do so in a cell of your own, outside the answer the check "
            f"calls)")


def _watched(library):
    """{code object: library object} of the functions of ``library`` (for a class, the
    functions it defines)."""
    codes = {}
    for own in library:
        functions = vars(own).values() if isinstance(own, type) else [own]
        for function in functions:
            code = getattr(inspect.unwrap(function), "__code__", None) \
                if callable(function) else None
            if code is not None:
                codes[code] = own
    return codes


@contextmanager
def _watching(codes, seen):
    """While the check runs, note in ``seen`` each library object in ``codes`` whose code
    runs with the learner's code below it on the stack (before this check's own frame),
    however it was reached: another name, a helper, a default argument, getattr or eval."""
    if not codes:
        yield
        return
    previous = sys.getprofile()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            caller = frame.f_back
            while caller is not None and caller.f_code is not _RUN_CHECKS:
                if learners_code(caller):
                    seen.append(codes[frame.f_code])
                    break
                caller = caller.f_back

    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(previous)


def _calls(fn, own):
    """Whether the function ``fn`` looks up ``own``: as a global of its notebook or
    module, from an enclosing function, or as an attribute of that name (a learner's
    own function of that name is fine)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    scope = getattr(fn, "__globals__", {})
    names = _names_used(code)
    enclosing = [c.cell_contents for c in (getattr(fn, "__closure__", None) or ())
                 if c.cell_contents is own]
    return bool(enclosing) or (own.__name__ in names
                               and scope.get(own.__name__, own) is own)


def _names_used(code):
    """The global names a function's code (and the functions nested in it) looks up."""
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _names_used(const)
    return names


def _describe_call(fn, args, kwargs):
    name = getattr(fn, "__name__", "your code")
    shown = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(shown)})"


def _short(value):
    if isinstance(value, torch.Tensor):
        return f"<tensor {tuple(value.shape)}>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _where(error):
    """' (line N of your cell: `code`)' for the innermost frame outside this library."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if "deepres" not in f.filename and "torch" not in f.filename]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (line {frame.lineno}: `{(frame.line or '').strip()}`)"
