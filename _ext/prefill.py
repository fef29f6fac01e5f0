"""Before the chapters run, train every run they will ask for, on every core.

A chapter's notebook trains its runs one after the other in one kernel. On a CPU,
the laptop-size networks use two cores poorly, so the build first runs
``python -m deepres.run --chapter 1 ... 7 --jobs auto``: one process of one thread per
core, each training whole runs into the run cache (see ``deepres/run.py``). The
chapters then load them. The numbers are those of one thread per run, on any number of
cores. The chapters' kernels train what they train themselves (chapter 8's transfer
runs, the exercises) on one thread too (``DEEPRES_THREADS=1``). On a GPU, the same
command trains the runs in one process, as the chapters would.

Nothing is done when the build does not execute the notebooks, or with
``DEEPRES_PREFILL=0``. If it fails, the build says so (a warning) and the chapters
train what is missing themselves.
"""
import os
import subprocess
import sys

from sphinx.util import logging

from deepres.run import CHAPTERS   # the chapters that train
from deepres.training import THREADS_ENV

logger = logging.getLogger(__name__)


def prefill(app):
    # Every CPU run of the book trains on one thread, here and in the chapters' kernels
    # (which inherit this): the book's numbers are then those of any machine.
    os.environ.setdefault(THREADS_ENV, "1")
    if app.config.nb_execution_mode == "off" or os.environ.get("DEEPRES_PREFILL") == "0":
        return
    command = [sys.executable, "-m", "deepres.run", "--chapter", *map(str, CHAPTERS),
               "--jobs", "auto"]
    print("training the chapters' runs first: " + " ".join(command[1:]), flush=True)
    result = subprocess.run(command, cwd=app.srcdir, stdin=subprocess.DEVNULL)
    if result.returncode:
        logger.warning(f"`{' '.join(command[1:])}` failed (exit code {result.returncode}); "
                       "the chapters train what is missing themselves")


def setup(app):
    app.connect("builder-inited", prefill)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
