"""A check's time limit: ``stop_after(seconds)`` stops the learner's code, whatever it does.

Why not only an alarm: ``SIGALRM`` raises in whichever line runs when it fires, and a
learner's bare ``except:`` (common in exercise code) catches it and goes on. So from the
first alarm on, a tracer (``sys.settrace``) also raises at every line of the learner's
code, and the alarm repeats every 50 ms: a handler that swallowed it is left at its next
line. Why only the learner's code: interrupting PyTorch or this library half-way (inside
a ``with`` block's exit, a ``finally``) would leave global state behind, so library code
is interrupted only after GRACE seconds without a line of the learner's.

Why the limit grows with ``slowness()``: correct code on a slow Colab CPU must pass.
"""
import contextlib
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

import torch
from torch import nn

TIME_LIMIT = 20  # seconds a whole check may take, on the machine the course was written on
CALIBRATION = 0.006   # seconds that machine takes for _calibration() (one thread, median)
_slowness = []

def _calibration():
    """A fixed piece of work like a check's (small convolutions, forward and backward)."""
    torch.manual_seed(0)
    conv, x = nn.Conv2d(8, 8, 3, padding=1), torch.randn(4, 8, 16, 16)
    start = time.perf_counter()
    for _ in range(10):
        conv(x).sum().backward()
    return time.perf_counter() - start


def slowness():
    """How many times slower this machine is than the one the course was written on (at
    least 1), measured once: a slow Colab CPU gets a longer time limit, not a refusal."""
    if not _slowness:
        from ...cpu import num_threads
        with torch.random.fork_rng(), num_threads(1):
            seconds = sorted(_calibration() for _ in range(5))[2]
        _slowness.append(max(1.0, seconds / CALIBRATION))
    return _slowness[0]


class TimeLimit(BaseException):
    """Internal: the check ran out of time (a BaseException, so that the learner's own
    ``except Exception`` cannot swallow it)."""


# the limit's own code, and the checks' machinery it runs under: never interrupted
_NEVER = (__file__, os.path.join(os.path.dirname(__file__), "core.py"), contextlib.__file__)
# Library code (this course's, PyTorch's, contextlib's) is left to finish what it does
# (a mode's exit, a finally): the limit interrupts the learner's code only, unless it
# keeps not coming back to it for GRACE seconds.
_LIBRARIES = (os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
              os.path.dirname(torch.__file__), contextlib.__file__)
GRACE = 2.0


def learners_code(frame):
    """Whether ``frame`` runs the learner's code (not this library's, PyTorch's)."""
    return not frame.f_code.co_filename.startswith(_LIBRARIES)


@contextmanager
def stop_after(seconds):
    """Raise TimeLimit in the main thread after ``seconds`` (no limit for None, nor where
    signals cannot be used: other threads, Windows), and go on raising it until the block
    is left, whatever the code inside catches: the alarm repeats every 50 ms, and from
    the first one on, every line of the learner's code raises it again, so that a bare
    ``except:`` (which catches it once) is left by the next line it runs. Library code
    is interrupted only if the learner's code does not run again within GRACE seconds.

    What it promises, precisely: each alarm raises TimeLimit at most twice (from the
    alarm, and from the first line of the learner's code that the tracer sees; Python
    switches off a tracer that raised, until the next alarm sets it again). So the limit
    holds against one bare ``except:`` however it loops, but two nested bare handlers
    that both swallow it and loop again (a retry loop around a helper that catches
    everything) can absorb every alarm, and the check then runs until the code ends or
    the kernel is interrupted. A loop inside one call of compiled code
    (``sum(range(10**11))``) is not interrupted until that call returns."""
    if (seconds is None or threading.current_thread() is not threading.main_thread()
            or not hasattr(signal, "SIGALRM")):
        yield
        return
    traced, fired = {}, []   # frames whose tracer was replaced: their own, to put back
    done = False             # set first when the block is left: a late alarm does nothing

    def stop(frame, event, arg):
        if event in ("call", "line") and learners_code(frame) and not done:
            raise TimeLimit()
        return stop

    def alarm(signum, frame):
        if done:
            return
        if not fired:
            fired.append(time.monotonic())
        sys.settrace(stop)   # again each time: a tracer that raised is switched off
        f = frame
        while f is not None:
            traced.setdefault(id(f), (f, f.f_trace, f.f_trace_lines))
            f.f_trace, f.f_trace_lines = stop, True
            f = f.f_back
        if frame is not None and frame.f_code.co_filename not in _NEVER and (
                learners_code(frame) or time.monotonic() - fired[0] > GRACE):
            raise TimeLimit()

    previous, tracing = signal.signal(signal.SIGALRM, alarm), sys.gettrace()
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
    try:
        yield
    finally:
        # the tracer off first: signal.signal is Python code (Lib/signal.py), which the
        # tracer would take for the learner's and interrupt, leaving the rest undone
        done = True
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.settrace(tracing)
        for f, own, lines in traced.values():
            f.f_trace, f.f_trace_lines = own, lines
        signal.signal(signal.SIGALRM, previous)
