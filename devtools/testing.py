"""What the tests (and the tools that run notebooks) share: synthetic data, the datasets' file
formats, notebooks executed with their solutions, a file server, the Colab runtime."""
import copy
import os
import shutil
from pathlib import Path

import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

from deepres.data import Data
from .fixtures import write_cifar_fixture, write_fashion_fixture, write_idx  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


def synthetic_data(n_train=256, n_test=64, seed=0):
    """A learnable 10-class problem of 1x8x8 images, for fast training tests."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(10, 1, 8, 8, generator=g)

    def make(n):
        y = torch.arange(n) % 10
        return prototypes[y] + 0.5 * torch.randn(n, 1, 8, 8, generator=g), y

    x_tr, y_tr = make(n_train)
    x_te, y_te = make(n_test)
    return Data("synthetic", x_tr, y_tr, x_te, y_te, tuple(map(str, range(10))), False,
                dict(name="synthetic", seed=seed, n_train=n_train, n_test=n_test))


def solution_cells(md_path):
    """The chapter's code cells that sit between solution-start and solution-end."""
    import jupytext
    inside, cells = False, []
    for cell in jupytext.read(md_path).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if "{solution-start}" in line:
                    inside = True
                elif "{solution-end}" in line:
                    inside = False
        elif inside:
            cells.append(cell.source)
    return cells


def with_solutions(notebook, md_path):
    """The learner notebook with the reference solutions pasted in, each in a new cell
    after its exercise's stub, as a learner who solved everything would have it."""
    import nbformat
    solutions = iter(solution_cells(md_path))
    cells = []
    for cell in notebook.cells:
        cells.append(cell)
        if cell.cell_type == "code" and "raise NotImplementedError" in cell.source:
            cells.append(nbformat.v4.new_code_cell(next(solutions)))
    notebook.cells = cells
    return notebook


EXPECT = "deepres_expect"   # cell metadata: the error a test expects from this cell


def unsolved_then_solved(notebook, md_path):
    """The learner notebook run both ways in one pass: at each exercise, its check first
    runs on the stub, as a learner who has not solved it meets it (the copy is marked
    ``EXPECT: "not done yet"``), then the reference solution, then the check again, which
    must pass. Everything after a check runs as in the solved notebook; that the rest of
    an unsolved notebook needs nothing from an exercise is checked statically
    (tests/test_learner.py)."""
    import copy
    import nbformat
    solutions = iter(solution_cells(md_path))
    cells, pending = [], False
    for cell in notebook.cells:
        if cell.cell_type == "code" and "check." in cell.source and pending:
            unsolved = copy.deepcopy(cell)
            if "id" in cell:   # cell ids are unique in a notebook
                unsolved["id"] = f"{cell['id']}-unsolved"
            unsolved.metadata[EXPECT] = "not done yet"
            cells += [unsolved, nbformat.v4.new_code_cell(next(solutions))]
            pending = False
        cells.append(cell)
        if cell.cell_type == "code" and "raise NotImplementedError" in cell.source:
            pending = True
    assert not pending, "an exercise without its check"
    notebook.cells = cells
    return notebook


class FileServer:
    """A local HTTP server, on 127.0.0.1 only, that stands in for the internet: used as
    ``http_proxy``, it answers a request for any URL with the file of the same name from
    ``files`` (name -> path), and 404 otherwise. ``served`` lists the names it sent."""

    def __init__(self, files):
        import http.server
        import threading
        self.files, self.served = dict(files), []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rstrip("/").rsplit("/", 1)[-1]
                if name not in server.files:
                    self.send_error(404)
                    return
                body = open(server.files[name], "rb").read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                server.served.append(name)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def colab_runtime_available():
    """Whether tests/test_colab.py can run the learner notebooks in its Colab-like
    runtime: it serves Debian's Fashion-MNIST and hides it in a mount namespace (root)."""
    return DEBIAN_FASHION.is_dir() and bool(shutil.which("unshare")) and os.geteuid() == 0


def execute(notebook, tmp_path, tries=2):
    """Run every cell (smoke budget: each takes seconds). A kernel that stops answering
    (seen once here: kernel idle, client waiting, a message lost between them) gets a
    cell timeout of 300 s, and the notebook runs once more in a fresh kernel."""
    original = copy.deepcopy(notebook)
    for attempt in range(tries):
        client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                                allow_errors=True,
                                resources={"metadata": {"path": str(ROOT / "chapters")}})
        try:
            client.execute()
            break
        except CellTimeoutError:
            if attempt == tries - 1:
                raise
            notebook.cells = copy.deepcopy(original.cells)
    return [(i, out) for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.output_type == "error"]


def lose_the_runtime_at_call(monkeypatch, module, n):
    """Make the ``n``-th call of ``module.evaluate`` (two per evaluation of a run) raise
    KeyboardInterrupt, as a lost runtime stops a run; returns a function that puts the
    real ``evaluate`` back."""
    real, calls = module.evaluate, []

    def lost(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt("the runtime was lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "evaluate", lost)
    return lambda: monkeypatch.setattr(module, "evaluate", real)


def no_bn_model():
    """A small conv net without BatchNorm (CPU processes cannot synchronise BN)."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(32, 10))
