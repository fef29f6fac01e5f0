"""Publish the book's runs beside its pages, for learners with no time to train them.

When the HTML build has executed the chapters, every run of chapters 1 to 7 is in the run
cache. This writes them to ``_build/html/runs/chapter-N.pt`` (``deepres.book_runs``), and
``_build/html/runs/index.json``: for each chapter, how many runs, how many bytes, how
long their training took on the machine that built the book, and how long the chapter
itself then ran with its runs loaded (myst-nb's execution time). The learner notebooks
quote those times (``tools/learner.py``), and a learner who sets ``BOOK_RUNS = True``
loads these runs instead of training them.

Nothing is published when the build did not execute the chapters, or when the budget of
the build is not the book's (``DEEPRES_BUDGET``).
"""
from pathlib import Path

from myst_nb.sphinx_ import NbMetadataCollector
from sphinx.util import logging

from deepres.book_runs import BOOK_BUDGET, export, write_index
from deepres.budget import get_budget, pick_device
from deepres.run import CHAPTERS

logger = logging.getLogger(__name__)


def publish(app, exception):
    if exception or app.builder.format != "html" or app.config.nb_execution_mode == "off":
        return
    device = pick_device(verbose=False)
    budget = get_budget(device=device, verbose=False)
    if budget.name != BOOK_BUDGET:
        return
    folder = Path(app.outdir) / "runs"
    index = {}
    for chapter in CHAPTERS:
        [docname] = [d for d in app.env.found_docs if d.startswith(f"chapters/{chapter:02d}_")]
        data = NbMetadataCollector.get_exec_data(app.env, docname)
        index[chapter] = export(chapter, budget, device, folder)
        index[chapter]["rest_seconds"] = data["runtime"] if data else None
    write_index(folder, index)
    total = sum(v["bytes"] for v in index.values())
    print(f"the book's runs: {total / 1e6:.0f} MB in {folder}", flush=True)


def setup(app):
    app.connect("build-finished", publish)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
