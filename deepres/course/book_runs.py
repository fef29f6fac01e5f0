"""The book's own runs, committed with it: a build that trains nothing, and a learner
with no time to train.

``make runs`` commits every run a build with an empty cache trained into ``runs/`` (one
file a run, named by its key) with ``runs/index.json``, each chapter's runs in order.
With ``BOOK_RUNS = True`` a chapter's first cell calls :func:`use`, which copies them
into the learner's run cache under the learner's own keys (another torch, a GPU, another
thread count give other keys to the same runs).
"""
import json
import os
import shutil
import tempfile
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from .. import runcache, training
from ..specs import plan_specs
from .budget import BOOK_BUDGET
from .experiments import CHAPTERS, chapter_specs

SOURCE_ENV = "DEEPRES_BOOK_RUNS"   # the book's runs: a folder or a URL ending in runs/
INDEX = "index.json"


class BookRunsUnavailable(RuntimeError):
    pass


@contextmanager
def _only(cache):
    """Runs looked up in ``cache`` alone (no committed runs), for as long as the block runs."""
    saved = {k: os.environ.get(k) for k in (runcache.CACHE_ENV, runcache.STORE_ENV)}
    os.environ[runcache.CACHE_ENV], os.environ[runcache.STORE_ENV] = str(cache), ""
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def chapter_keys(chapter, budget, device):
    """This machine's cache keys of the chapter's runs, in the order the chapter asks for
    them; None for a run whose source is not stored yet (its key holds the source's
    trained weights). Nothing is trained."""
    return [key for key, _ in _noted(chapter, budget, device)]


def _noted(chapter, budget, device):
    """[(key, seed)] of the chapter's runs, in order (``chapter_keys``)."""
    specs = chapter_specs(chapter, budget)
    planned = plan_specs(specs, device)
    return [(planned[label][0], spec.options["seed"]) for label, spec in specs.items()]


def _without_weights(source, into):
    """Copy the run at ``source`` to ``into`` with its history but not its final weights
    (a file that has none already is copied as it is)."""
    import torch
    stored = torch.load(source, weights_only=True)
    if stored["state_dict"] is None:
        shutil.copyfile(source, into)
    else:
        runcache.save(dict(stored, state_dict=None), into)


def commit(cache, store, budget, device, chapters=CHAPTERS):
    """Replace the committed runs in ``store`` by every finished run in ``cache`` (what a
    build with an empty cache trained), and write ``store/index.json``, which lists the
    runs of ``chapters``. Returns the index.

    To keep the repository small, the runs of ``chapters`` keep their final weights only
    for the budget's first seed: the pages read the trained model of that seed alone (the
    comparisons over seeds read the histories). Every other run (chapter 8's, the
    exercises') is kept whole."""
    import torch
    cache, store = Path(cache), Path(store)
    trained = {p.stem: p for p in cache.glob("*.pt") if "." not in p.stem}
    listed, weightless = {}, set()
    for chapter in chapters:
        with _only(cache):   # a source's trained weights come from the cache
            noted = _noted(chapter, budget, device)
        keys = [key for key, _ in noted]
        weightless |= {key for key, seed in noted if seed != budget.seeds[0]}
        missing = [k for k in keys if k not in trained]
        if missing:
            raise BookRunsUnavailable(f"chapter {chapter}: {len(missing)} of its {len(keys)} "
                                      f"runs are not in {cache}: build the book into it first")
        listed[chapter] = dict(keys=keys, train_seconds=sum(
            torch.load(trained[k], weights_only=True)["seconds"] for k in keys))
    store.mkdir(parents=True, exist_ok=True)
    for old in store.glob("*.pt"):
        if old.stem not in trained:
            old.unlink()
    for key, path in trained.items():
        if key in weightless:
            _without_weights(path, store / f"{key}.pt")
        else:
            shutil.copyfile(path, store / f"{key}.pt")
    for entry in listed.values():   # what a learner downloads: the committed files
        entry["bytes"] = sum((store / f"{key}.pt").stat().st_size for key in entry["keys"])
    index = dict(numerics=runcache.NUMERICS_VERSION, torch=torch.__version__,
                 budget=budget.name, runs=len(trained),
                 bytes=sum((store / f"{key}.pt").stat().st_size for key in trained),
                 chapters={str(c): v for c, v in listed.items()})
    (store / INDEX).write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    return index


def read_index(source):
    """The index of the book's runs at ``source`` (a folder or a URL), chapters as ints."""
    with tempfile.TemporaryDirectory() as tmp:
        _fetch(str(source), INDEX, Path(tmp) / INDEX)
        index = json.loads((Path(tmp) / INDEX).read_text())
    index["chapters"] = {int(c): v for c, v in index["chapters"].items()}
    return index


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
    ``$DEEPRES_BOOK_RUNS``, which a learner notebook sets to the repository's)."""
    if budget.name != BOOK_BUDGET:
        raise BookRunsUnavailable(
            f"the book's runs are those of the {BOOK_BUDGET!r} budget, and this chapter runs "
            f"the {budget.name!r} one: set BUDGET = {BOOK_BUDGET!r} in the first cell, or "
            f"BOOK_RUNS = False to train the {budget.name!r} runs here.")
    source = source or os.environ.get(SOURCE_ENV) or runcache.store_dir()
    if not source:
        raise BookRunsUnavailable(
            f"where are the book's runs? Set ${SOURCE_ENV} to the repository's runs/ folder "
            f"or its URL.")
    index = None
    added = 0
    while True:   # twice where runs start from a source: its copy gives their keys
        keys = chapter_keys(chapter, budget, device)
        wanted = [i for i, k in enumerate(keys) if k is not None and not runcache.stored(k)]
        if not wanted:
            break
        if index is None:
            index = read_index(source)
            book = index["chapters"].get(chapter, {}).get("keys", [])
            if index["numerics"] != runcache.NUMERICS_VERSION or len(book) != len(keys):
                raise BookRunsUnavailable(
                    "the book's runs were made by another version of the course library "
                    "than the one installed here (the learner notebook installs the book's "
                    "own: restart the runtime and run the notebook from the top), or set "
                    "BOOK_RUNS = False.")
        runcache.cache_dir().mkdir(parents=True, exist_ok=True)
        for i in wanted:
            _copy(source, book[i], keys[i])
        added += len(wanted)
    return added


def _copy(source, book_key, key):
    """The book's run ``book_key`` from ``source`` into this machine's cache as ``key``."""
    import torch
    part = runcache.cache_dir() / f"book-{book_key}.part"
    _fetch(str(source), f"{book_key}.pt", part)
    try:
        run = torch.load(part, weights_only=True)
    except Exception as error:
        raise BookRunsUnavailable(f"the book's run {book_key} from {source} could not be "
                                  f"read ({type(error).__name__}); run the cell again to "
                                  f"fetch it anew.") from None
    finally:
        part.unlink(missing_ok=True)
    runcache.save(run, runcache.cache_dir() / f"{key}.pt")


if __name__ == "__main__":   # make runs: python -m deepres.course.book_runs CACHE STORE
    import sys
    import torch
    from .budget import get_budget
    os.environ[training.THREADS_ENV] = "1"   # the keys of the book's runs: one thread
    done = commit(sys.argv[1], sys.argv[2], get_budget(BOOK_BUDGET, verbose=False),
                  torch.device("cpu"))
    print(f"{done['runs']} runs ({done['bytes'] / 1e6:.1f} MB) committed in {sys.argv[2]} "
          f"for numerics version {done['numerics']}")
