"""The learner's path, tested in a runtime built like Colab's, not like the book's.

The environment (``_build/colab-venv``) has torch and torchvision installed before the
course library, as Colab does (the pinned pair from this machine's disk), ipywidgets
7.x as Colab ships, Jupyter's kernel and notebook runner, and nothing of the book's
toolchain: no Jupyter Book, no myst-nb, no deepres.

Each learner notebook then runs top to bottom with the smoke budget, both as a learner
who has not solved the exercises meets it and as one who has, in one pass
(``helpers.unsolved_then_solved``): at each exercise, the check runs on the stub and must
say "not done yet" (and nothing else may fail), then the reference solution runs and
the check must pass. This is the only run of the learner notebooks in the test suite
where this runtime can be made (tests/test_learner.py runs them with the book's own
Python elsewhere); nbval runs the chapters themselves.

* its own install cell installs the library from a local git repository standing in for
  the published one (the working tree, committed into a temporary repository);
* Debian's copy of Fashion-MNIST is hidden (a private mount namespace) and HOME is
  empty, so the data comes through torchvision's download, from a file server on
  127.0.0.1 that answers as ``http_proxy``. The files it serves are Debian's, which were
  compressed again and so have other MD5 sums than the originals: the environment tells
  torchvision to expect those sums (``sitecustomize.py``), and checks them as usual.

The timings go to ``_build/reports/colab.json``.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import (DEBIAN_FASHION as DEBIAN, EXPECT, FileServer,  # noqa: E402
                     colab_runtime_available, unsolved_then_solved)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import learner  # noqa: E402

VENV = ROOT / "_build" / "colab-venv"
PYTHON = VENV / "bin" / "python"
# What a Colab runtime has before the learner's notebook runs (torch first, as in Colab).
PREINSTALLED = ["torch==2.14.1", "torchvision==0.29.1", "ipywidgets==7.7.1",
                "ipykernel==7.4.0", "nbclient==0.11.0", "nbformat", "matplotlib==3.11.2",
                "numpy==2.4.6", "tqdm==4.70.1"]
REPORT = ROOT / "_build" / "reports" / "colab.json"

# Imports torchvision's FashionMNIST lazily and tells it the MD5 sums of the files that
# the test's server sends (Debian's recompressed copies of the originals).
SITECUSTOMIZE = '''
import importlib.abc, importlib.util, sys
MD5 = {md5!r}

class _ExpectServedFiles(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "torchvision.datasets.mnist":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.FashionMNIST.resources = [(f, MD5[f]) for f, _ in module.FashionMNIST.resources]
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _ExpectServedFiles())
'''

pytestmark = pytest.mark.skipif(
    not colab_runtime_available(),
    reason="needs Debian's dataset-fashion-mnist to serve, and root for a mount namespace")


def _run(*args, **kwargs):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True,
                          text=True, **kwargs)


@pytest.fixture(scope="session")
def colab_python():
    """The Colab-like environment, made once (and again when its list changes)."""
    stamp = VENV / ".preinstalled"
    if not (PYTHON.exists() and stamp.is_file() and stamp.read_text() == "\n".join(PREINSTALLED)):
        shutil.rmtree(VENV, ignore_errors=True)
        _run(_base_python(), "-m", "venv", VENV)
        _run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *PREINSTALLED)
        stamp.write_text("\n".join(PREINSTALLED))
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in DEBIAN.glob("*.gz")}
    site = Path(_run(PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                .stdout.strip())
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(md5=md5))
    return PYTHON


def _base_python():
    """The Python the project's .venv was made from (not the .venv itself)."""
    return getattr(sys, "_base_executable", None) or shutil.which("python3")


@pytest.fixture(scope="session")
def published(tmp_path_factory):
    """The working tree as a git repository on disk: the stand-in for the published one."""
    repo = tmp_path_factory.mktemp("published")
    files = _run("git", "ls-files", "--cached", "--others", "--exclude-standard",
                 cwd=ROOT).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    _run("git", "init", "--quiet", "--initial-branch=main", repo)
    _run("git", "-C", repo, "add", "--all")
    _run("git", "-C", repo, "-c", "user.name=test", "-c", "user.email=test@localhost",
         "commit", "--quiet", "--message", "published")
    return f"file://{repo}"


def run_in_colab(python, notebooks, tmp_path, proxy_url):
    """Run notebooks with ``tests/colab_runner.py`` in the Colab-like runtime; one result
    (a dict) per notebook."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    env = {"PATH": f"{python.parent}:/usr/bin:/bin", "HOME": str(home),
           "DEEPRES_BUDGET": "smoke", "http_proxy": proxy_url, "LANG": "C.UTF-8",
           "MPLBACKEND": "Agg"}
    runner = " ".join(f"'{a}'" for a in [python, ROOT / "tests" / "colab_runner.py", *notebooks])
    script = f"mount --bind '{empty}' {DEBIAN} && exec {runner}"
    result = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=3000)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def learner_notebooks_for(url, tmp_path, monkeypatch):
    """Each chapter's learner notebook, made for the repository ``url`` (with the book's
    numbers of the committed notebook), each check run unsolved, then solved."""
    monkeypatch.setenv("DEEPRES_REPOSITORY_URL", url)
    monkeypatch.setenv("DEEPRES_BOOK_URL", "https://book.example/")
    paths = []
    for md in learner.chapters():
        committed = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
        notebook = learner.learner_notebook(md, committed.metadata["deepres"]["book_values"])
        path = tmp_path / md.with_suffix(".ipynb").name
        notebook = unsolved_then_solved(notebook, md)
        notebook.metadata["deepres_test"] = {"allow_errors": True}
        nbformat.write(notebook, path)
        paths.append(path)
    return paths


def installed_torch(python):
    """Name, version and place of the installed torch and torchvision."""
    shown = _run(python, "-m", "pip", "show", "torch", "torchvision").stdout
    return [line for line in shown.splitlines()
            if line.startswith(("Name:", "Version:", "Location:"))]


def test_the_runtime_is_built_like_colab(colab_python):
    probe = ("import importlib.util as u, ipywidgets, torch; "
             "print(ipywidgets.__version__, torch.__version__, "
             "[m for m in ('jupyter_book', 'myst_nb', 'deepres') if u.find_spec(m)])")
    widgets, torch_version, book_toolchain = _run(colab_python, "-c", probe,
                                                  cwd="/").stdout.split(" ", 2)
    assert widgets.startswith("7.") and torch_version.startswith("2.14.1")
    assert book_toolchain.strip() == "[]"


def test_every_learner_notebook_runs_in_colab(colab_python, published, tmp_path, monkeypatch):
    torch_before = installed_torch(colab_python)
    notebooks = learner_notebooks_for(published, tmp_path, monkeypatch)
    files = {p.name: p for p in DEBIAN.glob("*.gz")}
    with FileServer(files) as server:
        results = run_in_colab(colab_python, notebooks, tmp_path, server.url)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(dict(
        preinstalled=PREINSTALLED, served=server.served,
        notebooks={Path(r["notebook"]).name: round(r["seconds"], 1) for r in results}),
        indent=1))
    assert [Path(r["notebook"]).name for r in results] == [p.name for p in notebooks]
    for path, result in zip(notebooks, results):
        cells = nbformat.read(path, as_version=4).cells
        unsolved = [i for i, c in enumerate(cells) if c.metadata.get(EXPECT)]
        assert unsolved, "a chapter has checked exercises"
        # each check fails on the stub, saying what to do, as a message, not a traceback;
        # nothing else fails, and every check passes after the solution
        assert [e["cell"] for e in result["errors"]] == unsolved, (path.name, result["errors"])
        for error in result["errors"]:
            assert error["ename"] == "CheckFailed" and "not done yet" in error["evalue"]
            shown = "\n".join(error["traceback"])
            assert "Traceback" not in shown and "deepres" not in shown and ".py" not in shown
        assert f"Installed the course library from {published}" in result["stdout"]
    # the data came through torchvision's download, from the stand-in for the internet
    assert sorted(set(server.served)) == sorted(files)
    # installing the library neither replaced nor added a torch
    assert installed_torch(colab_python) == torch_before


def test_install_cell_fails_with_a_message_not_a_traceback(colab_python, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPRES_REPOSITORY_URL", "file:///nonexistent/deep-residual-networks")
    notebook = nbformat.v4.new_notebook(cells=[learner.install_cell(),
                                               nbformat.v4.new_code_cell("print('next')")])
    path = tmp_path / "install.ipynb"
    nbformat.write(notebook, path)
    with FileServer({}) as server:
        [result] = run_in_colab(colab_python, [path], tmp_path, server.url)
    [error] = result["errors"]  # the install cell stops "Run all"; nothing after it runs
    assert error["cell"] == 0 and error["ename"] == "InstallFailed"
    shown = "\n".join(error["traceback"])
    assert "Could not install the course library from file:///nonexistent" in shown
    assert "What to do" in shown
    assert "pip said: fatal: '/nonexistent/deep-residual-networks' does not appear" in shown
    assert "Traceback" not in shown and 'File "' not in shown
    assert "next" not in result["stdout"]
