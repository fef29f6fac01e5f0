"""Runs learner notebooks inside the Colab-like environment of tests/test_colab.py.

Called with that environment's Python, in a mount namespace where Debian's copy of
Fashion-MNIST is hidden, with HOME pointing at an empty folder and ``http_proxy`` at the
test's file server. For each notebook it removes the course library (so the notebook's
own install cell must install it, as in a new Colab runtime), runs the cells in order
until one fails, as "Run all" does (or every cell, if the notebook's metadata says
``"deepres_test": {"allow_errors": true}``), and writes one JSON line: the notebook, the
seconds it took, its error outputs and what it printed.

    python colab_runner.py NOTEBOOK.ipynb [...]
"""
import json
import subprocess
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def run(path):
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "deepres"],
                   capture_output=True)
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    try:
        allow = notebook.metadata.get("deepres_test", {}).get("allow_errors", False)
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       allow_errors=allow).execute()
    except CellExecutionError:
        pass  # like "Run all", it stopped at the first error; the outputs say which
    errors = [dict(cell=i, ename=out.ename, evalue=out.evalue, traceback=out.traceback)
              for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.output_type == "error"]
    text = [out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.output_type == "stream"]
    return dict(notebook=path, seconds=time.perf_counter() - start, errors=errors,
                stdout="".join(text))


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(json.dumps(run(path)), flush=True)
