"""Let nbval run the MyST chapters (chapters/*.md) as notebooks.

nbval only collects .ipynb files. Rather than converting the chapters on disk, we read
each chapter with jupytext and hand nbval the notebook: the kernel still runs in
chapters/, as in the book build. The learner notebooks (chapters/*.ipynb) are not run
by nbval: they stop at unsolved exercises by design, and tests/test_learner.py runs them.

The notebooks that the tests execute (nbval, learner notebooks) run with the ``smoke``
budget unless DEEPRES_BUDGET says otherwise: they check that every cell runs and every
check passes, in seconds. The book build (tests/test_book.py) executes every chapter
again with the budget the machine would choose, the numbers the book shows.
"""
import os
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import jupytext
import pytest

ROOT = Path(__file__).resolve().parent
_STARTED = time.time()
collect_ignore_glob = ["chapters/*.ipynb", "_build", ".venv"]

BOOK_BUDGET = os.environ.get("DEEPRES_BUDGET")  # for the book build: the user's choice
os.environ.setdefault("DEEPRES_BUDGET", "smoke")  # for kernels started by the tests


def _is_chapter(path):
    return (path.suffix == ".md" and path.parent.name == "chapters"
            and path.read_text().startswith("---\njupytext:"))


def pytest_collect_file(file_path, parent):
    opt = parent.config.option
    if (getattr(opt, "nbval", False) or getattr(opt, "nbval_lax", False)) and _is_chapter(file_path):
        return MystNotebook.from_parent(parent, path=file_path)
    return None


def _make_class():
    from nbval.plugin import IPyNbFile, nbformat

    class MystNotebook(IPyNbFile):
        def collect(self):
            # nbval reads the file with nbformat.read; read the MyST text instead.
            with mock.patch.object(nbformat, "read", lambda path, as_version: jupytext.read(path)):
                yield from super().collect()

    return MystNotebook


MystNotebook = _make_class()


@pytest.fixture(scope="session")
def book(tmp_path_factory):
    """Build the book from scratch, executing every chapter with the budget the machine
    (or the user) chooses: (exit code, log, html folder). The executed notebooks, with
    their glued values, are in the html folder's ../jupyter_execute."""
    built = os.environ.get("DEEPRES_BUILT_BOOK")   # for iterating on tests: reuse a build
    if built:                                       # made with --path-output DEEPRES_BUILT_BOOK
        log = (Path(built) / "build.log").read_text() if (Path(built) / "build.log").exists() else ""
        return 0, log, Path(built) / "_build" / "html"
    out = tmp_path_factory.mktemp("book")
    env = {k: v for k, v in os.environ.items() if k != "DEEPRES_BUDGET"}
    if BOOK_BUDGET:  # the budget the user chose; else the machine's default
        env["DEEPRES_BUDGET"] = BOOK_BUDGET
    result = subprocess.run(
        [str(Path(sys.executable).with_name("jupyter-book")), "build", str(ROOT),
         "--path-output", str(out), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=3600, env=env)
    log = result.stdout + result.stderr
    (out / "build.log").write_text(log)
    return result.returncode, log, out / "_build" / "html"


def pytest_terminal_summary(terminalreporter):
    """Print the browser test's page report (size and load time of every page)."""
    report = ROOT / "_build" / "reports" / "pages.md"
    if report.exists() and report.stat().st_mtime > _STARTED:
        terminalreporter.write_sep("-", "pages of the book in Chromium (tests/test_browser.py)")
        terminalreporter.write_line(report.read_text())
