"""What the book's build does before its chapters execute (``_ext/prefill.py``,
``_ext/performance.py``): a step is a Python command run from the book's folder; a step
that fails is a warning of the build, which then goes on."""
import os
import subprocess
import sys

from sphinx.util import logging

logger = logging.getLogger(__name__)


def executes(app, switch):
    """Whether the build executes the chapters and ``$switch`` is not "0"."""
    return app.config.nb_execution_mode != "off" and os.environ.get(switch) != "0"


def run_step(app, what, arguments, otherwise):
    """Run ``python ARGUMENTS`` in the book's folder, saying ``what`` it does; if it fails,
    warn, saying what happens ``otherwise``."""
    command = [sys.executable, *arguments]
    print(f"{what}: " + " ".join(arguments), flush=True)
    result = subprocess.run(command, cwd=app.srcdir, stdin=subprocess.DEVNULL)
    if result.returncode:
        logger.warning(f"`{' '.join(arguments)}` failed (exit code {result.returncode}); "
                       f"{otherwise}")
