"""The book's own runs, for a learner with no GPU or no time to train them.

The book's build trains every run of chapters 1 to 7 (the ``laptop`` budget, on a CPU)
and publishes them beside its pages: ``runs/chapter-N.pt`` holds the chapter's runs in
the order the chapter asks for them, and ``runs/index.json`` says what each file holds
and how long the chapter took to build. A learner sets ``BOOK_RUNS = True`` in a
chapter's first cell; :func:`use` then copies the book's runs into the learner's own run
cache, under the keys the learner's machine gives them, and the chapter loads them
instead of training. The runs of the learner's own exercise code still train.

Why by order and not by key: a run's cache key holds everything that decides its last
bits, the torch version, the device and the CPU's kernels among them, so the learner's
keys are not the book's. The chapter's runs, in the order it asks for them, are the same
runs on any machine; :func:`chapter_keys` lists this machine's keys in that order,
without training anything. The library's source must be the book's (its hash is in the
file): the learner notebooks install the library at the book's commit.
"""
import json
import os
import shutil
import tempfile
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from . import training
from .budget import BOOK_BUDGET
from .experiments import chapter_runs
from .training import _library_hash, cache_dir

SOURCE_ENV = "DEEPRES_BOOK_RUNS"   # the book's runs: a folder or a URL ending in runs/
INDEX = "index.json"


class BookRunsUnavailable(RuntimeError):
    pass


def file_name(chapter):
    return f"chapter-{chapter}.pt"


@contextmanager
def _empty_cache():
    """A run cache of nothing, for as long as the block runs."""
    saved = os.environ.get(training.CACHE_ENV)
    with tempfile.TemporaryDirectory() as folder:
        os.environ[training.CACHE_ENV] = folder
        try:
            yield
        finally:
            if saved is None:
                del os.environ[training.CACHE_ENV]
            else:
                os.environ[training.CACHE_ENV] = saved


def chapter_keys(chapter, budget, device):
    """This machine's cache keys of the chapter's runs, in the order the chapter asks for
    them. Nothing is trained: every run is asked for in an empty cache, and ``train``'s
    ``claim`` hook notes its key and declines it."""
    keys = []

    def note(key, estimate):
        keys.append(key)
        return False

    training.claim = note
    try:
        with _empty_cache():
            chapter_runs(chapter, budget, device)
    finally:
        training.claim = None
    return keys


def export(chapter, budget, device, folder):
    """Write the chapter's runs, from this machine's run cache, to
    ``folder/chapter-N.pt``; returns what ``index.json`` says of them."""
    import torch
    keys = chapter_keys(chapter, budget, device)
    missing = [k for k in keys if not (cache_dir() / f"{k}.pt").is_file()]
    if missing:
        raise BookRunsUnavailable(f"chapter {chapter}: {len(missing)} of its {len(keys)} runs "
                                  f"are not in {cache_dir()}; build the book first")
    runs = [torch.load(cache_dir() / f"{k}.pt", weights_only=True) for k in keys]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name(chapter)
    training._save({"library": _library_hash(), "budget": budget.name, "chapter": chapter,
                    "runs": runs}, path)
    return {"runs": len(runs), "bytes": path.stat().st_size, "budget": budget.name,
            "library": _library_hash(),
            "train_seconds": sum(r["seconds"] for r in runs)}


def _fetch(source, name, into):
    """Copy ``source``/``name`` (a folder or a URL) to the file ``into``."""
    where = f"{source.rstrip('/')}/{name}"
    try:
        if "://" in source:
            with urllib.request.urlopen(where, timeout=60) as response, \
                    open(into, "wb") as out:
                shutil.copyfileobj(response, out)
        else:
            shutil.copyfile(where, into)
    except OSError as error:
        raise BookRunsUnavailable(
            f"could not get the book's runs from {where} ({error}). Check the connection "
            f"(or ${SOURCE_ENV}), or set BOOK_RUNS = False to train the runs here.") from None


def use(chapter, budget, device, source=None):
    """Put the book's runs of ``chapter`` into this machine's run cache, under this
    machine's keys, so that the chapter loads them instead of training; returns how many
    runs were added. ``source``: the book's ``runs/`` folder or URL (default:
    ``$DEEPRES_BOOK_RUNS``, which a learner notebook sets to the published book's)."""
    import torch
    if budget.name != BOOK_BUDGET:
        raise BookRunsUnavailable(
            f"the book's runs are those of the {BOOK_BUDGET!r} budget, and this chapter runs "
            f"the {budget.name!r} one: set BUDGET = {BOOK_BUDGET!r} in the first cell, or "
            f"BOOK_RUNS = False to train the {budget.name!r} runs here.")
    source = source or os.environ.get(SOURCE_ENV)
    if not source:
        raise BookRunsUnavailable(
            f"where are the book's runs? Set ${SOURCE_ENV} to the book's runs/ folder or URL "
            f"(in a clone, after `make book`: _build/html/runs).")
    keys = chapter_keys(chapter, budget, device)
    wanted = [k for k in keys if not (cache_dir() / f"{k}.pt").is_file()]
    if not wanted:
        return 0
    cache_dir().mkdir(parents=True, exist_ok=True)
    download = cache_dir() / f"book-{file_name(chapter)}"
    if not download.is_file():
        _fetch(str(source), file_name(chapter), download.with_suffix(".part"))
        download.with_suffix(".part").replace(download)
    try:
        book = torch.load(download, weights_only=True)
    except Exception as error:
        download.unlink()
        raise BookRunsUnavailable(f"the book's runs in {download} could not be read "
                                  f"({type(error).__name__}); run the cell again to fetch "
                                  f"them anew.") from None
    if book["library"] != _library_hash() or len(book["runs"]) != len(keys):
        raise BookRunsUnavailable(
            "the book's runs were made by another version of the course library than the "
            "one installed here (the learner notebook installs the book's own: restart "
            "the runtime and run the notebook from the top), or set BOOK_RUNS = False.")
    for key, run in zip(keys, book["runs"]):
        if key in wanted:
            training._save(run, cache_dir() / f"{key}.pt")
    return len(wanted)


def write_index(folder, chapters):
    """``folder/index.json``: ``chapters`` is {chapter: what :func:`export` returned, with
    ``rest_seconds``: the chapter's execution in the build, its runs loaded}."""
    Path(folder, INDEX).write_text(json.dumps({str(c): v for c, v in chapters.items()},
                                              indent=1, sort_keys=True))


def read_index(folder):
    path = Path(folder, INDEX)
    return {int(c): v for c, v in json.loads(path.read_text()).items()} if path.is_file() \
        else {}
