"""Measure what the Performance page shows, once per build, before the chapters run.

``python -m devtools.bench --book _build/reports/performance.json`` times the training
loop against a plain one, a busy machine and the GPU estimate, alone on the machine (after
the runs were trained); the page renders that file. Nothing is measured when the build
does not execute the notebooks, or with ``DEEPRES_PERFORMANCE=0``.
"""
import os
import subprocess
import sys
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)


def measure(app):
    report = Path(app.outdir).parent / "reports" / "performance.json"
    report.unlink(missing_ok=True)   # this build's figures, or none
    if app.config.nb_execution_mode == "off" or os.environ.get("DEEPRES_PERFORMANCE") == "0":
        return
    command = [sys.executable, "-m", "devtools.bench", "--book", str(report)]
    print("measuring for the Performance page: " + " ".join(command[1:]), flush=True)
    result = subprocess.run(command, cwd=app.srcdir, stdin=subprocess.DEVNULL)
    if result.returncode:
        logger.warning(f"`{' '.join(command[1:])}` failed (exit code {result.returncode}); "
                       "the Performance page says it has no figures")


def setup(app):
    app.connect("builder-inited", measure, priority=600)   # after prefill's training
    return {"parallel_read_safe": True, "parallel_write_safe": True}
