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
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import jupytext
import pytest

ROOT = Path(__file__).resolve().parent
_STARTED = time.time()
_BUILD_LOG = []        # the log of the book build of this session, if there was one
BUILD_TIMEOUT = 5400   # seconds: CI's own limit, so that only CI's limit stops a slow machine
collect_ignore_glob = ["chapters/*.ipynb", "_build", ".venv"]

# The book build's budget is the user's choice (DEEPRES_BUDGET), else the machine's default.
# Remembered before the line below sets "smoke", for pytest-xdist's workers too: they
# start with the environment of the process that imported this file first.
os.environ.setdefault("DEEPRES_TEST_BOOK_BUDGET", os.environ.get("DEEPRES_BUDGET", ""))
BOOK_BUDGET = os.environ["DEEPRES_TEST_BOOK_BUDGET"] or None
os.environ.setdefault("DEEPRES_BUDGET", "smoke")  # for kernels started by the tests
# Two workers and the book build share the cores: whatever the tests start (kernels,
# subprocesses) computes on one thread unless a test asks for more, and OpenMP's waiting
# threads sleep instead of spinning (a spinning thread that shares a busy core slows a
# run of two threads down 4 to 20 times). Not for the book build, which measures.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


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


_BUILD = {}   # the book build started beside the tests: process, folder, log file


def _needs_book(item):
    return "book" in getattr(item, "fixturenames", ())


def _in_worker(config):
    return hasattr(config, "workerinput")   # a pytest-xdist worker (make test runs two)


def pytest_configure(config):
    if _in_worker(config):
        for name, value in WORKER_ENV.items():
            os.environ.setdefault(name, value)


def _group(item):
    """The tests that must run in one process: those that need the book (one build), the
    Colab-like runtime's (one environment), the cells of one chapter (one kernel), and
    those that share a module- or session-wide fixture of ours (computed once)."""
    if _needs_book(item):
        return "book"
    if item.path.name == "test_colab.py":
        return "colab"
    if isinstance(item.parent, MystNotebook):
        return f"nbval-{item.path.stem}"
    defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    shared = sorted(name for name, fixturedefs in defs.items()
                    if fixturedefs[-1].scope in ("module", "session")
                    and not fixturedefs[-1].func.__module__.startswith(("_pytest", "xdist")))
    return f"{item.path.stem}-{shared[0]}" if shared else None


def _grouping(config):
    return _in_worker(config) and getattr(config.option, "loadgroup", False)


def _join(item, group):
    """What ``pytest.mark.xdist_group(group)`` does, which pytest-xdist 3.8 cannot do with
    pytest 9 (it renames ``item._nodeid``; pytest 9 reads ``item._id``): the group's name
    after an ``@`` in the test's id, which is what --dist loadgroup schedules by."""
    from _pytest.nodeid import coerce_node_id
    item._id = coerce_node_id(f"{item.nodeid}@{group}")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """In one process the tests that need the built book go last, the build running
    beside the others (pytest_collection_finish). With pytest-xdist (``make test``:
    ``-n 2 --dist loadgroup``) they go first, as one group: the worker that takes it
    builds the book while the other runs the rest, the Colab-like runtime first."""
    if _grouping(config):
        items.sort(key=lambda item: {"book": 0, "colab": 1}.get(_group(item), 2))
        for item in items:
            if _group(item):
                _join(item, _group(item))
    else:
        items.sort(key=_needs_book)


def pytest_collection_finish(session):
    """In one process the book build starts now, beside the tests that do not need it: its
    kernels compute on one thread (the build sets DEEPRES_THREADS=1), so on two cores the
    rest of the suite runs meanwhile. (A pytest-xdist worker builds when asked.)"""
    if not os.environ.get("DEEPRES_BUILT_BOOK") and not session.config.option.collectonly \
            and not _in_worker(session.config) and any(map(_needs_book, session.items)):
        _BUILD.update(_start_build())


BUILD_REPORT = ROOT / "_build" / "reports" / "book-build.txt"   # for the summary


def pytest_sessionfinish(session):
    if _BUILD_LOG:   # (the summary is printed by pytest-xdist's controller, not its worker)
        BUILD_REPORT.parent.mkdir(parents=True, exist_ok=True)
        BUILD_REPORT.write_text("".join(
            (e if isinstance(e, str) else _build_times(e)) + "\n" for e in _BUILD_LOG))
    process = _BUILD.get("process")
    if process is not None and process.poll() is None:   # interrupted: stop the kernels too
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def pytest_unconfigure(config):   # after the summary, which reads the build's log
    for folder in _BUILD.get("folders", []):
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def book():
    """The book built from scratch, executing every chapter with the budget the machine
    (or the user) chooses: (exit code, log, html folder). The executed notebooks, with
    their glued values, are in the html folder's ../jupyter_execute."""
    built = os.environ.get("DEEPRES_BUILT_BOOK")   # for iterating on tests: reuse a build
    if built:                                       # made with --path-output DEEPRES_BUILT_BOOK
        log = (Path(built) / "build.log").read_text() if (Path(built) / "build.log").exists() else ""
        return 0, log, Path(built) / "_build" / "html"
    if not _BUILD:
        _BUILD.update(_start_build())
    code, log = _finish_build()
    if code and _timed_out(log):
        # A kernel that stops answering (seen here once in ipykernel 6.29, and once in a
        # chapter that had run in minutes before and after) is not the book's fault: build
        # once more and say so in the summary.
        _BUILD_LOG.append(f"the first build stopped at a cell that timed out "
                          f"({_build_times(_BUILD['out'] / 'build.log')}); built again")
        _BUILD.update(_start_build())
        code, log = _finish_build()
    return code, log, _BUILD["out"] / "_build" / "html"


def _timed_out(log):
    """Whether the build stopped at a cell that outlived ``execute.timeout`` (nbclient's
    CellTimeoutError, in the log or in the traceback file Sphinx saved)."""
    saved = re.findall(r"(/\S*sphinx-err-\w+\.log)", log)
    return "CellTimeoutError" in log + "".join(
        Path(f).read_text(errors="replace") for f in saved if Path(f).is_file())


def _start_build():
    """Start ``jupyter-book build`` into a new folder, in the background."""
    env = {k: v for k, v in os.environ.items()
           if k != "DEEPRES_BUDGET" and not (k in WORKER_ENV and v == WORKER_ENV[k])}
    if BOOK_BUDGET:  # the budget the user chose; else the machine's default
        env["DEEPRES_BUDGET"] = BOOK_BUDGET
    out = Path(tempfile.mkdtemp(prefix="deepres-book-"))
    _BUILD_LOG.append(out / "build.log")
    log_file = open(out / "build.log", "w")   # written as it goes: see _build_times
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("jupyter-book")), "build", str(ROOT),
         "--path-output", str(out), "-W", "-n", "--keep-going"],
        stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        env=env, start_new_session=True)
    return dict(process=process, out=out, log_file=log_file, started=time.time(),
                folders=_BUILD.get("folders", []) + [out])


def _finish_build():
    """Wait for the started build: (exit code, log)."""
    process, out = _BUILD["process"], _BUILD["out"]
    try:
        process.wait(timeout=max(1, BUILD_TIMEOUT - (time.time() - _BUILD["started"])))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)   # the kernels too
        process.wait()
        pytest.fail(f"the book build did not finish in {BUILD_TIMEOUT // 60} minutes; "
                    f"{_build_times(out / 'build.log')}", pytrace=False)
    finally:
        _BUILD["log_file"].close()
    return process.returncode, (out / "build.log").read_text()


def _build_times(path):
    """One line: how long the build's first step and each chapter took, from its log."""
    log = path.read_text() if path.exists() else ""
    said = re.findall(r"runs trained in (.+?) by|every run is in", log)
    times = re.findall(r"chapters/(\w+)\.md: Executed notebook in ([\d.]+) seconds", log)
    running = re.findall(r"chapters/(\w+)\.md: Executing notebook", log)
    line = "runs trained first: " + (said[-1] or "none (all cached)" if said else "not done")
    line += "; chapters: " + ", ".join(f"{name} {float(t):.0f} s" for name, t in times)
    if len(running) > len(times):
        line += f"; still running: {running[-1]}"
    return line


def pytest_terminal_summary(terminalreporter):
    """Print how long the book build took, and the browser test's page report (size and
    load time of every page)."""
    if BUILD_REPORT.exists() and BUILD_REPORT.stat().st_mtime > _STARTED:
        terminalreporter.write_sep("-", "book build")
        terminalreporter.write_line(BUILD_REPORT.read_text().rstrip())
    report = ROOT / "_build" / "reports" / "pages.md"
    if report.exists() and report.stat().st_mtime > _STARTED:
        terminalreporter.write_sep("-", "pages of the book in Chromium (tests/test_browser.py)")
        terminalreporter.write_line(report.read_text())
