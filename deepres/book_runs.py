"""The book's own runs, committed with it, for a build that trains nothing and a learner
with no time to train.

``make runs`` builds the book with an empty run cache (the ``laptop`` budget, one thread a
run) and commits every run it trained into ``runs/``: one file a run, named by its key
(``deepres.runcache``), and ``runs/index.json``, which lists each chapter's runs in the
order the chapter asks for them. A clone's build then finds every run there
(:func:`deepres.runcache.find`) and trains nothing.

A learner sets ``BOOK_RUNS = True`` in a chapter's first cell; :func:`use` then copies the
chapter's runs from the repository (the learner notebook points ``$DEEPRES_BOOK_RUNS`` at
its ``runs/`` folder, at the commit it installs) into the learner's own run cache, under
the keys the learner's machine gives them: another torch version, a GPU or another thread
count gives other keys, but the chapter's runs, in the order it asks for them, are the
same runs. The runs of the learner's own exercise code still train.
"""
import json
import os
import shutil
import tempfile
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from . import runcache, training
from .budget import BOOK_BUDGET
from .experiments import CHAPTERS, chapter_runs

SOURCE_ENV = "DEEPRES_BOOK_RUNS"   # the book's runs: a folder or a URL ending in runs/
INDEX = "index.json"


class BookRunsUnavailable(RuntimeError):
    pass


@contextmanager
def _empty_cache():
    """A run cache of nothing and no committed runs, for as long as the block runs."""
    saved = {k: os.environ.get(k) for k in (runcache.CACHE_ENV, runcache.STORE_ENV)}
    with tempfile.TemporaryDirectory() as folder:
        os.environ[runcache.CACHE_ENV] = folder
        os.environ[runcache.STORE_ENV] = ""
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
    them. Nothing is trained: every run is asked for in an empty cache, and noted."""
    return [key for key, _ in _noted(chapter, budget, device)]


def _noted(chapter, budget, device):
    """[(key, configuration)] of the chapter's runs, in order (``chapter_keys``)."""
    with _empty_cache(), training.keys_only() as noted:
        chapter_runs(chapter, budget, device)
    return noted


def _without_weights(source, into):
    """Copy the run at ``source`` to ``into`` with its history but not its final weights."""
    import torch
    stored = torch.load(source, weights_only=True)
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
        noted = _noted(chapter, budget, device)
        keys = [key for key, _ in noted]
        weightless |= {key for key, config in noted if config["seed"] != budget.seeds[0]}
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
    import torch
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
    keys = chapter_keys(chapter, budget, device)
    wanted = [i for i, k in enumerate(keys) if runcache.find(k, "book run") is None]
    if not wanted:
        return 0
    index = read_index(source)
    book = index["chapters"].get(chapter, {}).get("keys", [])
    if index["numerics"] != runcache.NUMERICS_VERSION or len(book) != len(keys):
        raise BookRunsUnavailable(
            "the book's runs were made by another version of the course library than the "
            "one installed here (the learner notebook installs the book's own: restart "
            "the runtime and run the notebook from the top), or set BOOK_RUNS = False.")
    runcache.cache_dir().mkdir(parents=True, exist_ok=True)
    for i in wanted:
        part = runcache.cache_dir() / f"book-{book[i]}.part"
        _fetch(str(source), f"{book[i]}.pt", part)
        try:
            run = torch.load(part, weights_only=True)
        except Exception as error:
            raise BookRunsUnavailable(f"the book's run {book[i]} from {source} could not be "
                                      f"read ({type(error).__name__}); run the cell again to "
                                      f"fetch it anew.") from None
        finally:
            part.unlink(missing_ok=True)
        runcache.save(run, runcache.cache_dir() / f"{keys[i]}.pt")
    return len(wanted)


if __name__ == "__main__":   # make runs: python -m deepres.book_runs CACHE STORE
    import sys
    import torch
    from .budget import get_budget
    os.environ[training.THREADS_ENV] = "1"   # the keys of the book's runs: one thread
    done = commit(sys.argv[1], sys.argv[2], get_budget(BOOK_BUDGET, verbose=False),
                  torch.device("cpu"))
    print(f"{done['runs']} runs ({done['bytes'] / 1e6:.1f} MB) committed in {sys.argv[2]} "
          f"for numerics version {done['numerics']}")
