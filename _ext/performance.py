"""Measure what the Performance page shows, once per build, before the chapters run.

``python -m devtools.bench --book _build/reports/performance.json`` times the training
loop against a plain one, a busy machine and the GPU estimate, alone on the machine (after
the runs were trained); the page renders that file. Nothing is measured when the build
does not execute the notebooks, or with ``DEEPRES_PERFORMANCE=0``.
"""
from pathlib import Path

from devtools.build import executes, run_step


def measure(app):
    report = Path(app.outdir).parent / "reports" / "performance.json"
    report.unlink(missing_ok=True)   # this build's figures, or none
    if executes(app, "DEEPRES_PERFORMANCE"):
        run_step(app, "measuring for the Performance page",
                 ["-m", "devtools.bench", "--book", str(report)],
                 "the Performance page says it has no figures")


def setup(app):
    app.connect("builder-inited", measure, priority=600)   # after prefill's training
    return {"parallel_read_safe": True, "parallel_write_safe": True}
