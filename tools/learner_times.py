"""How long a CPU learner waits for each chapter with the book's runs: every learner
notebook, its solutions pasted in (as a learner who solved every exercise has it), with
``BOOK_RUNS = True``, in a fresh run cache, on PyTorch's own thread count (so its run
keys are not the book's), timed from the first cell to the last. The exercises' own
runs train; the chapter's runs come from the book's build (``_build/html/runs``, made by
``make book``). Without the book's runs, a learner waits that long and the training of
the chapter's runs besides, which the build measured (``_build/html/runs/index.json``,
one thread a run): printed beside.

    python tools/learner_times.py [CHAPTER ...]
"""
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tools")]
from helpers import with_solutions  # noqa: E402
from learner import chapters  # noqa: E402

from deepres.book_runs import SOURCE_ENV, read_index  # noqa: E402
from deepres.training import THREADS_ENV, duration  # noqa: E402


def main(wanted):
    runs = ROOT / "_build" / "html" / "runs"
    index = read_index(runs)
    if not index:
        sys.exit("no book's runs in _build/html/runs: run `make book` first")
    print("chapter | with the book's runs (measured here) | without (plus the training the "
          "build measured)")
    for md in chapters():
        chapter = int(md.stem[:2])
        if chapter not in index or (wanted and chapter not in wanted):
            continue
        notebook = with_solutions(nbformat.read(md.with_suffix(".ipynb"), as_version=4), md)
        first = next(c for c in notebook.cells[3:] if c.cell_type == "code")
        first.source = first.source.replace("BOOK_RUNS = False", "BOOK_RUNS = True")
        with tempfile.TemporaryDirectory() as cache:
            os.environ.update({"DEEPRES_CACHE": cache, SOURCE_ENV: str(runs)})
            for name in (THREADS_ENV, "DEEPRES_BUDGET"):
                os.environ.pop(name, None)
            start = time.perf_counter()
            NotebookClient(notebook, timeout=1800, kernel_name="python3",
                           resources={"metadata": {"path": str(md.parent)}}).execute()
            seconds = time.perf_counter() - start
        entry = index[chapter]
        print(f"{md.stem} | {duration(seconds)} | "
              f"{duration(seconds + entry['train_seconds'])}", flush=True)
    print(json.dumps({"cpu_threads": os.cpu_count()}))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]])
