"""The learner's path, tested in a runtime built like Colab's, not like the book's.

The environment is Colab's own stack, from Colab's published list (``COLAB`` below, the one
place to change when Colab updates): its Python (3.13, pyenv's here), torch and
torchvision installed before the course library as Colab has them, ipywidgets,
ipykernel, IPython, numpy and matplotlib at Colab's versions, and nothing of the book's
toolchain: no Jupyter Book, no myst-nb, no deepres. Added only to run the notebooks:
nbclient and nbformat (Colab runs them its own way), tqdm (Colab's has its own version;
any recent one). The environment is made once per machine, under the machine's cache
folder (``~/.cache/deepres/colab-runtime``), and again when the list changes: measured
here, about 2.5 minutes cold (torch 2.11.0 and its CUDA libraries, 5 GB, from the package
registry), a second warm.

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
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from types import SimpleNamespace

import nbformat
import pytest

from devtools import learner
from devtools.testing import (DEBIAN_FASHION as DEBIAN, EXPECT, FileServer,
                              colab_runtime_available, unsolved_then_solved)

ROOT = Path(__file__).resolve().parents[1]

# Colab's runtime, from its published list (googlecolab/backend-info, pip-freeze.gpu.txt
# and os-info, 2026-08): Python 3.13; what it has before a learner's notebook runs.
COLAB = dict(python="3.13", packages=[
    "torch==2.11.0", "torchvision==0.26.0", "ipywidgets==7.7.1", "ipykernel==6.17.1",
    "ipython==7.34.0", "numpy==2.1.3", "matplotlib==3.10.0"])
HARNESS = ["nbclient==0.11.0", "nbformat", "tqdm"]   # to run the notebooks here
PREINSTALLED = COLAB["packages"] + HARNESS
VENV = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "deepres" / "colab-runtime"
PYTHON = VENV / "bin" / "python"
REPORT = ROOT / "_build" / "reports" / "colab.json"

# Imports torchvision's datasets lazily and tells them the MD5 sums of the files that the
# test's server sends: for FashionMNIST, Debian's recompressed copies of the originals;
# for CIFAR10, with $DEEPRES_TEST_CIFAR (a JSON file of sums), the test's fixture, asked
# for by http:// (the server stands in for the internet as an HTTP proxy; the real
# address is https://, which a proxy only tunnels).
SITECUSTOMIZE = '''
import importlib.abc, importlib.util, json, os, sys
MD5 = {md5!r}


def _fashion(module):
    module.FashionMNIST.resources = [(f, MD5[f]) for f, _ in module.FashionMNIST.resources]


def _cifar(module):
    if not os.environ.get("DEEPRES_TEST_CIFAR"):
        return
    sums = json.load(open(os.environ["DEEPRES_TEST_CIFAR"]))
    c = module.CIFAR10
    c.url = c.url.replace("https://", "http://")
    c.tgz_md5 = sums[c.filename]
    c.train_list = [[f, sums[f]] for f, _ in c.train_list]
    c.test_list = [[f, sums[f]] for f, _ in c.test_list]
    c.meta = dict(c.meta, md5=sums[c.meta["filename"]])


PATCHES = {{"torchvision.datasets.mnist": _fashion, "torchvision.datasets.cifar": _cifar}}


class _ExpectServedFiles(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in PATCHES or getattr(self, "busy", False):
            return None
        self.busy = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.busy = False
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            PATCHES[name](module)
        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _ExpectServedFiles())
'''

pytestmark = pytest.mark.skipif(
    not colab_runtime_available(),
    reason="needs Debian's dataset-fashion-mnist to serve, and root for a mount namespace")


def _run(*args, **kwargs):
    """Run a command; if it fails, fail with its last output lines (pip says why there:
    no network, no space left on the device ...), not only its exit status."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    if done.returncode:
        said = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        pytest.fail(f"{' '.join(map(str, args))} exited with {done.returncode}:\n{said}",
                    pytrace=False)
    return done


@pytest.fixture(scope="session")
def colab_python():
    """The Colab-like environment, made once (and again when its list changes)."""
    stamp = VENV / ".preinstalled"
    wanted = "\n".join([COLAB["python"]] + PREINSTALLED)
    if not (PYTHON.exists() and stamp.is_file() and stamp.read_text() == wanted):
        shutil.rmtree(VENV, ignore_errors=True)
        _run(_colab_base_python(), "-m", "venv", VENV)
        # torch first, alone, as Colab has it; then the rest, which must not replace it
        _run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *COLAB["packages"][:2])
        _run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *PREINSTALLED)
        stamp.write_text(wanted)
    _run(PYTHON, "-m", "pip", "uninstall", "--yes", "--quiet", "deepres")   # as Colab: none
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in DEBIAN.glob("*.gz")}
    site = Path(_run(PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                .stdout.strip())
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(md5=md5))
    return PYTHON


def _colab_base_python():
    """A Python of Colab's version: on PATH, or one of pyenv's."""
    version = COLAB["python"]
    found = shutil.which(f"python{version}")
    candidates = ([found] if found else []) + sorted(
        glob.glob(str(Path.home() / ".pyenv" / "versions" / f"{version}.*" / "bin" /
                      f"python{version}")), reverse=True)
    for candidate in candidates:
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    pytest.fail(f"the Colab-like runtime needs Python {version}, as Colab has: install it "
                f"(for example `pyenv install {version}`)")


@pytest.fixture(scope="session")
def published(tmp_path_factory):
    """The working tree as a git repository on disk: the stand-in for the published one
    (its URL). A second commit, ``later``, changes the library (``deepres.LATER``)."""
    repo = tmp_path_factory.mktemp("published")
    files = _run("git", "ls-files", "--cached", "--others", "--exclude-standard",
                 cwd=ROOT).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    _run("git", "init", "--quiet", "--initial-branch=main", repo)

    def commit(message):
        _run("git", "-C", repo, "add", "--all")
        _run("git", "-C", repo, "-c", "user.name=test", "-c", "user.email=test@localhost",
             "commit", "--quiet", "--message", message)
        return _run("git", "-C", repo, "rev-parse", "HEAD").stdout.strip()

    first = commit("published")
    with open(repo / "deepres" / "__init__.py", "a") as f:
        f.write("\nLATER = True\n")
    later = commit("a later version of the library")
    return SimpleNamespace(url=f"file://{repo}", commit=first, later=later)


def run_in_colab(python, notebooks, tmp_path, proxy_url, **more_env):
    """Run notebooks with ``tests/colab_runner.py`` in the Colab-like runtime; one result
    (a dict) per notebook."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    env = {"PATH": f"{python.parent}:/usr/bin:/bin", "HOME": str(home),
           "DEEPRES_BUDGET": "smoke", "http_proxy": proxy_url, "LANG": "C.UTF-8",
           "MPLBACKEND": "Agg", **more_env}
    env.update({k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")
                if k in os.environ})   # one thread on a machine the tests share (conftest)
    runner = " ".join(f"'{a}'" for a in [python, ROOT / "tests" / "colab_runner.py", *notebooks])
    script = f"mount --bind '{empty}' {DEBIAN} && exec {runner}"
    result = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=3000)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def learner_notebooks_for(published, tmp_path, monkeypatch):
    """Each chapter's learner notebook, made for the repository ``published`` (with the
    book's numbers of the committed notebook, installing its first commit), each check run
    unsolved, then solved."""
    monkeypatch.setenv("DEEPRES_REPOSITORY_URL", published.url)
    monkeypatch.setenv("DEEPRES_BOOK_URL", "https://book.example/")   # (not on GitHub)
    monkeypatch.setenv("DEEPRES_REPOSITORY_COMMIT", published.commit)
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
    versions = dict(p.split("==") for p in COLAB["packages"])
    assert widgets == versions["ipywidgets"]
    assert torch_version.split("+")[0] == versions["torch"]
    assert book_toolchain.strip() == "[]"
    python = _run(colab_python, "-c", "import sys; print(sys.version)").stdout
    assert python.startswith(COLAB["python"] + "."), python


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
        assert (f"Installed the course library from {published.url} at commit "
                f"{published.commit[:10]}") in result["stdout"]
    # the data came through torchvision's download, from the stand-in for the internet
    assert sorted(set(server.served)) == sorted(files)
    # installing the library neither replaced nor added a torch
    assert installed_torch(colab_python) == torch_before


def test_install_cell_fails_with_a_message_not_a_traceback(colab_python, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPRES_REPOSITORY_URL", "file:///nonexistent/deep-residual-networks")
    monkeypatch.setenv("DEEPRES_BOOK_URL", "https://book.example/")   # (not on GitHub)
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


def test_a_runtime_with_another_version_gets_the_notebooks_own(colab_python, published,
                                                                tmp_path, monkeypatch):
    """Colab keeps what a runtime installed: a learner who opens a notebook of another
    release gets the library that notebook was made with, not the one already there."""
    _run(colab_python, "-m", "pip", "install", "--quiet", f"git+{published.url}@{published.later}")
    monkeypatch.setenv("DEEPRES_REPOSITORY_URL", published.url)
    monkeypatch.setenv("DEEPRES_BOOK_URL", "https://book.example/")   # (not on GitHub)
    probe = ("import importlib.metadata as m, json, deepres; print(json.loads(m.distribution("
             "'deepres').read_text('direct_url.json'))['vcs_info']['commit_id'], "
             "hasattr(deepres, 'LATER'))")
    notebook = nbformat.v4.new_notebook(cells=[learner.install_cell(published.commit),
                                               nbformat.v4.new_code_cell(probe)])
    path = tmp_path / "install.ipynb"
    nbformat.write(notebook, path)
    env = dict(os.environ, PATH=f"{colab_python.parent}:/usr/bin:/bin", HOME=str(tmp_path))
    client_code = ("import nbformat, sys; from nbclient import NotebookClient; "
                   "nb = nbformat.read(sys.argv[1], as_version=4); "
                   "NotebookClient(nb, kernel_name='python3').execute(); "
                   "print(''.join(o.get('text', '') for c in nb.cells if c.cell_type == 'code' "
                   "for o in c.outputs), [o.output_type for o in nb.cells[0].outputs])")
    shown = _run(colab_python, "-c", client_code, path, env=env, cwd=tmp_path).stdout
    assert f"at commit {published.commit[:10]}" in shown
    assert shown.rstrip().endswith("['stream']")     # it prints its message; it echoes nothing
    assert f"{published.commit} False" in shown      # the notebook's version, imported
    _run(colab_python, "-m", "pip", "uninstall", "--yes", "--quiet", "deepres")


def cifar_archive(folder):
    """A CIFAR-10 archive as torchvision downloads it (cifar-10-python.tar.gz, holding
    cifar-10-batches-py/), made from the tests' fixture; and the MD5 sums of it and of
    each file in it."""
    import tarfile
    from devtools.testing import write_cifar_fixture
    inner = folder / "src" / "cifar-10-batches-py"
    write_cifar_fixture(inner, per_batch=20, n_test=10)
    archive = folder / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(inner, arcname="cifar-10-batches-py")
    sums = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in [archive, *inner.iterdir()]}
    (folder / "sums.json").write_text(json.dumps(sums))
    return archive, folder / "sums.json"


def test_the_gpu_learners_cifar10_comes_through_torchvisions_download(colab_python, tmp_path):
    """The `gpu` budget's first data cell on a fresh Colab runtime: the library's loader
    finds no CIFAR-10, torchvision downloads it (from the stand-in for the internet),
    and the loader reads the pickles; with the download failing, a clear message."""
    archive, sums = cifar_archive(tmp_path)
    code = ("from deepres.data import load\n"
            "try:\n"
            "    data = load('cifar10')\n"
            "    print('loaded', tuple(data.x_train.shape), tuple(data.x_test.shape), data.classes[0])\n"
            "except Exception as error:\n"
            "    print(type(error).__name__, error)\n")
    shown = {}
    for case, files in (("served", {archive.name: archive}), ("unreachable", {})):
        home = tmp_path / f"home-{case}"
        home.mkdir()
        with FileServer(files) as server:
            env = {"PATH": f"{colab_python.parent}:/usr/bin:/bin", "HOME": str(home),
                   "http_proxy": server.url, "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8",
                   "DEEPRES_TEST_CIFAR": str(sums)}
            shown[case] = _run(colab_python, "-c", code, env=env, cwd=tmp_path).stdout
            served = list(server.served)
        if case == "served":
            assert set(served) == {archive.name}   # (torchvision asks twice: redirects, then the file)
    assert "loaded (100, 3, 32, 32) (10, 3, 32, 32) airplane" in shown["served"], shown
    failed = shown["unreachable"]
    assert failed.startswith("DataNotFound CIFAR-10 is not on this machine and could not "
                             "be downloaded"), failed
    assert "cifar-10-batches-py" in failed and "DEEPRES_DATA" in failed
    assert "dataset-fashion-mnist" not in failed   # no Debian package has CIFAR-10


def test_the_books_runs_load_in_colabs_runtime(colab_python, published, tmp_path, monkeypatch):
    """A CPU learner with no time, in Colab's runtime: its torch is not the book's, so its
    run keys are not the book's. With BOOK_RUNS = True, chapter 2 loads the book's runs
    (committed in the repository's runs/) and trains none of them, up to its first
    exercise."""
    monkeypatch.setenv("DEEPRES_REPOSITORY_URL", published.url)
    monkeypatch.setenv("DEEPRES_BOOK_URL", "https://book.example/")   # (not on GitHub)
    monkeypatch.setenv("DEEPRES_REPOSITORY_COMMIT", published.commit)
    md = ROOT / "chapters" / "02_degradation.md"
    committed = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    notebook = learner.learner_notebook(md, committed.metadata["deepres"]["book_values"])
    first = next(c for c in notebook.cells[3:] if c.cell_type == "code")
    first.source = first.source.replace("BOOK_RUNS = False", "BOOK_RUNS = True")
    notebook.metadata["deepres_test"] = {"allow_errors": False}   # stop at the first error
    path = tmp_path / "02_degradation.ipynb"
    nbformat.write(notebook, path)
    files = {p.name: p for p in DEBIAN.glob("*.gz")}
    with FileServer(files) as server:
        [result] = run_in_colab(colab_python, [path], tmp_path, server.url,
                                DEEPRES_BOOK_RUNS=published.url[len("file://"):] + "/runs")
    assert "were copied from the book's runs" in result["stdout"], result["stdout"][-2000:]
    assert "not in the run cache; training" not in result["stdout"]
    [error] = result["errors"]   # the first exercise, unsolved: where "Run all" stops
    assert error["ename"] == "CheckFailed" and "not done yet" in error["evalue"]
