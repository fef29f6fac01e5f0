"""How long a CPU learner waits for each chapter with the book's runs: every learner
notebook, its solutions pasted in (as a learner who solved every exercise has it), with
``BOOK_RUNS = True``, in a fresh run cache, on PyTorch's own thread count (so its run
keys are not the book's), timed from the first cell to the last. The exercises' own
runs train; the chapter's runs come from the book's committed runs (``runs/``, made by
``make runs``). Without the book's runs, a learner waits that long and the training of
the chapter's runs besides: printed beside, as the chapter's first cell estimates it here
(``deepres.run.plan``, from timed steps, on PyTorch's own thread count), and as the
runs were trained (``runs/index.json``, one thread a run, two runs side by side).

    python -m devtools.learner_times [CHAPTER ...]
"""
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

import torch

from deepres.course.book_runs import SOURCE_ENV, read_index
from deepres.course.budget import get_budget
from deepres.cpu import THREADS_ENV
from deepres.course.planning import plan
from deepres.timing import duration
from devtools.learner import chapters
from devtools.testing import with_solutions

ROOT = Path(__file__).resolve().parents[1]


def main(wanted):
    runs = ROOT / "runs"
    index = read_index(runs)["chapters"]
    print("chapter | with the book's runs (measured here) | training the chapter's runs "
          "(estimated here) | without the book's runs (the two together) | training in "
          "the build (measured)")
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
        with tempfile.TemporaryDirectory() as cache:   # nothing cached: every run estimated
            os.environ["DEEPRES_CACHE"] = cache
            todo, waiting, _ = plan([chapter], get_budget("laptop", verbose=False),
                                    torch.device("cpu"))
            training = sum(todo.values()) + sum(waiting)
        print(f"{md.stem} | {duration(seconds)} | {duration(training)} | "
              f"{duration(seconds + training)} | "
              f"{duration(index[chapter]['train_seconds'])}", flush=True)
    print(json.dumps({"cpu_threads": os.cpu_count()}))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]])
