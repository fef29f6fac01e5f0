"""Before the chapters run, train every run they will ask for, on every core.

The build first runs ``python -m deepres.run --chapter 1 ... 8 --jobs auto`` (one process
of one thread per core, each training whole runs into the run cache; see
``deepres/run.py``); the chapters then load them. Every CPU run of the book trains on one
thread (``DEEPRES_THREADS=1``, which the chapters' kernels inherit), so the book's numbers
are those of any machine. What was trained goes to ``_build/reports/jobs.json`` (the
Performance page shows it), the processes' logs beside it.

Nothing is trained when the build does not execute the notebooks, or with
``DEEPRES_PREFILL=0``. If it fails, the build says so (a warning) and the chapters train
what is missing themselves.
"""
import os
from pathlib import Path

from deepres.course.experiments import CHAPTERS
from deepres.cpu import THREADS_ENV
from devtools.build import executes, run_step

REPORTS_ENV = "DEEPRES_REPORTS"   # where the build's measurements go; the pages read them


def prefill(app):
    os.environ.setdefault(THREADS_ENV, "1")
    reports = Path(app.outdir).parent / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    os.environ[REPORTS_ENV] = str(reports)
    (reports / "jobs.json").unlink(missing_ok=True)   # this build's, or none
    if executes(app, "DEEPRES_PREFILL"):
        run_step(app, "training the chapters' runs first",
                 ["-m", "deepres.run", "--chapter", *map(str, CHAPTERS), "--jobs", "auto",
                  "--reports", str(reports)],
                 "the chapters train what is missing themselves")


def setup(app):
    app.connect("builder-inited", prefill)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
