"""The book's own runs (deepres.course.book_runs): committed in runs/ by `make runs`, found by
the build, loaded by a learner on another machine (other keys) instead of being trained,
and refused with a clear message when they cannot be used."""
import json
from pathlib import Path

import nbformat
import pytest
import torch

from deepres import runcache
from deepres.course import book_runs
from deepres.course.budget import PROFILES
from deepres.course.experiments import CHAPTERS, chapter_runs
from deepres.course.planning import plan
from devtools.testing import colab_runtime_available, execute

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
SMOKE = PROFILES["smoke"]
MAX_BYTES = 40e6   # the committed runs of one numerics version


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    """Chapter 2's smoke runs trained on one thread into one cache and committed (once for
    the tests below: each leaves the folder as it found it)."""
    tmp_path = tmp_path_factory.mktemp("committed")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DEEPRES_THREADS", "1")
        monkeypatch.setenv(runcache.CACHE_ENV, str(tmp_path / "book-cache"))
        monkeypatch.setenv(runcache.STORE_ENV, "")
        runs = chapter_runs(2, SMOKE, CPU)
        index = book_runs.commit(tmp_path / "book-cache", tmp_path / "runs", SMOKE, CPU,
                                 chapters=[2])
    return runs, index, tmp_path / "runs"


def test_make_runs_commits_what_the_build_trained(committed):
    runs, index, folder = committed
    assert index["numerics"] == runcache.NUMERICS_VERSION and index["budget"] == "smoke"
    assert len(index["chapters"]["2"]["keys"]) == len(runs) == index["runs"]
    assert sorted(p.stem for p in folder.glob("*.pt")) == sorted(index["chapters"]["2"]["keys"])
    assert json.loads((folder / "index.json").read_text()) == index
    # the final weights are kept for the budget's first seed only: the pages read no others
    kept = {p.stem for p in folder.glob("*.pt")
            if torch.load(p, weights_only=True)["state_dict"] is not None}
    assert kept == {run.key for (kind, depth, seed), run in runs.items() if seed == SMOKE.seeds[0]}
    assert len(kept) < len(runs)


def test_the_build_finds_the_committed_runs(committed, tmp_path, monkeypatch):
    runs, index, folder = committed
    monkeypatch.setenv("DEEPRES_THREADS", "1")   # this machine's keys are the book's
    monkeypatch.setenv(runcache.CACHE_ENV, str(tmp_path / "empty-cache"))
    monkeypatch.setenv(runcache.STORE_ENV, str(folder))
    assert plan([2], SMOKE, CPU)[0] == {}               # nothing to train
    for key, run in chapter_runs(2, SMOKE, CPU).items():
        assert run.cached and run.history == runs[key].history
        assert (run.model is None) == (key[-1] != SMOKE.seeds[0])   # (kind, depth, seed)
    assert not (tmp_path / "empty-cache").exists()      # and nothing copied


def test_another_machine_loads_the_books_runs_instead_of_training(committed, tmp_path,
                                                                   monkeypatch):
    runs, index, folder = committed
    # another machine: two threads, so other cache keys than the book's
    monkeypatch.setenv("DEEPRES_THREADS", "2")
    monkeypatch.setenv(runcache.CACHE_ENV, str(tmp_path / "learner-cache"))
    monkeypatch.setattr(book_runs, "BOOK_BUDGET", "smoke")
    assert len(plan([2], SMOKE, CPU)[0]) == len(runs)  # nothing of the book's is here
    assert book_runs.use(2, SMOKE, CPU, source=str(folder)) == len(runs)
    assert plan([2], SMOKE, CPU)[0] == {}               # nothing left to train
    loaded = chapter_runs(2, SMOKE, CPU)
    for key, run in runs.items():
        assert loaded[key].cached and loaded[key].history == run.history
    assert book_runs.use(2, SMOKE, CPU, source=str(folder)) == 0   # already there


def test_the_books_runs_are_refused_with_a_reason(committed, tmp_path, monkeypatch):
    runs, index, folder = committed
    monkeypatch.setenv("DEEPRES_THREADS", "2")
    monkeypatch.setenv(runcache.CACHE_ENV, str(tmp_path / "learner-cache"))
    monkeypatch.setenv(runcache.STORE_ENV, "")   # (a pip install: no runs/ beside it)
    monkeypatch.delenv(book_runs.SOURCE_ENV, raising=False)
    with pytest.raises(book_runs.BookRunsUnavailable, match="laptop.*BUDGET"):
        book_runs.use(2, SMOKE, CPU, source=str(folder))   # the book's budget is laptop
    monkeypatch.setattr(book_runs, "BOOK_BUDGET", "smoke")
    with pytest.raises(book_runs.BookRunsUnavailable, match=book_runs.SOURCE_ENV):
        book_runs.use(2, SMOKE, CPU)                        # where are they?
    with pytest.raises(book_runs.BookRunsUnavailable, match="could not get"):
        book_runs.use(2, SMOKE, CPU, source=str(tmp_path / "nowhere"))
    old = json.loads((folder / "index.json").read_text())
    (folder / "index.json").write_text(json.dumps({**old, "numerics": 0}))
    with pytest.raises(book_runs.BookRunsUnavailable, match="another version"):
        book_runs.use(2, SMOKE, CPU, source=str(folder))
    (folder / "index.json").write_text(json.dumps(old))
    first = folder / f"{old['chapters']['2']['keys'][0]}.pt"
    whole = first.read_bytes()
    first.write_bytes(b"cut short")
    with pytest.raises(book_runs.BookRunsUnavailable, match="could not be read"):
        book_runs.use(2, SMOKE, CPU, source=str(folder))
    first.write_bytes(whole)
    assert book_runs.use(2, SMOKE, CPU, source=str(folder)) == len(runs)   # fetched anew


def test_the_committed_runs_are_this_numerics_versions_and_small():
    """runs/ holds every run of chapters 1-8 that runs/index.json lists, of the current
    numerics version, and nothing else but the runs the chapters' own cells train
    (the exercises' solutions): under 40 MB."""
    index = book_runs.read_index(ROOT / "runs")
    assert index["numerics"] == runcache.NUMERICS_VERSION, (
        "the committed runs are of another numerics version: run `make runs`")
    assert index["budget"] == book_runs.BOOK_BUDGET and sorted(index["chapters"]) == list(CHAPTERS)
    files = {p.stem: p.stat().st_size for p in (ROOT / "runs").glob("*.pt")}
    for chapter, entry in index["chapters"].items():
        assert set(entry["keys"]) <= set(files), f"chapter {chapter}: runs missing"
    assert len(files) == index["runs"] and sum(files.values()) == index["bytes"] < MAX_BYTES


def test_runs_that_start_from_a_source_come_in_a_second_round(tmp_path, monkeypatch):
    """Chapter 8's transfer runs start from the source network's trained weights, so their
    keys exist only once the source is stored: the planner counts them as waiting, the
    book's runs copy the source first and then them, and a learner's chapter 8 then
    loads all of them."""
    from deepres.course.experiments import chapter_specs
    from deepres.specs import plan_specs
    monkeypatch.setenv("DEEPRES_THREADS", "1")
    monkeypatch.setenv(runcache.CACHE_ENV, str(tmp_path / "book-cache"))
    monkeypatch.setenv(runcache.STORE_ENV, "")
    specs = chapter_specs(8, SMOKE)
    planned = plan_specs(specs, CPU)
    assert planned["source"][0] is not None
    assert all(planned[label][0] is None for label in specs if label != "source")
    todo, waiting, total = plan([8], SMOKE, CPU)
    assert len(todo) == 1 and len(waiting) == total - 1 == 16
    runs = chapter_runs(8, SMOKE, CPU)
    assert plan([8], SMOKE, CPU)[:2] == ({}, [])
    assert [k for k, _ in plan_specs(specs, CPU).values()] == [r.key for r in runs.values()]
    book_runs.commit(tmp_path / "book-cache", tmp_path / "runs", SMOKE, CPU, chapters=[8])
    # another machine: two threads, other keys; the variants' keys follow the source's copy
    monkeypatch.setenv("DEEPRES_THREADS", "2")
    monkeypatch.setenv(runcache.CACHE_ENV, str(tmp_path / "learner-cache"))
    monkeypatch.setattr(book_runs, "BOOK_BUDGET", "smoke")
    assert book_runs.use(8, SMOKE, CPU, source=str(tmp_path / "runs")) == len(runs)
    assert plan([8], SMOKE, CPU)[:2] == ({}, [])
    loaded = chapter_runs(8, SMOKE, CPU)
    for label, run in runs.items():
        assert loaded[label].cached and loaded[label].history == run.history, label


@pytest.mark.skipif(colab_runtime_available(), reason="tests/test_colab.py loads the book's "
                    "runs in a learner notebook in Colab's own runtime")
def test_a_learner_notebook_with_book_runs_trains_nothing(tmp_path, monkeypatch):
    """Chapter 2's learner notebook, BOOK_RUNS = True, on a "machine" whose run keys are
    not the book's (two threads, an empty cache): it loads the committed runs, trains none
    of them, and runs to its first exercise's check as usual."""
    md = ROOT / "chapters" / "02_degradation.md"
    notebook = nbformat.reads(md.with_suffix(".ipynb").read_text(), as_version=4)
    first = next(c for c in notebook.cells[3:] if c.cell_type == "code")
    assert "BOOK_RUNS = False" in first.source
    first.source = first.source.replace("BOOK_RUNS = False", "BOOK_RUNS = True")
    monkeypatch.delenv("DEEPRES_BUDGET", raising=False)
    monkeypatch.setenv("DEEPRES_THREADS", "2")
    monkeypatch.setenv(runcache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(book_runs.SOURCE_ENV, str(ROOT / "runs"))
    errors = execute(notebook, tmp_path)
    said = "\n".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    assert "were copied from the book's runs" in said
    assert "not in the run cache; training" not in said
    assert errors and errors[0][1].ename == "CheckFailed"   # the first unsolved exercise


# (network of chapter 7's race, seed): a ResNet, a DenseNet and a grouped convolution,
# on the book's data, 200 steps each (about a minute in all on one thread)
# the first seed keeps its final weights (compared too); another seed, its history only
SAMPLE = (("ResNet-14", 2), ("DenseNet-BC-40", 0), ("ResNeXt-20 (4x32d)", 0))


@pytest.fixture(scope="module")
def books_data():
    from deepres.course.experiments import cifar_data
    return cifar_data(PROFILES[book_runs.BOOK_BUDGET])


@pytest.mark.parametrize("name, seed", SAMPLE, ids=[n for n, _ in SAMPLE])
def test_a_sample_of_the_committed_runs_retrains_bit_for_bit(name, seed, books_data, tmp_path,
                                                             monkeypatch):
    """The committed runs are what this machine trains: the same history and weights, to
    the last bit, on any x86-64 CPU (tests/test_reproducible.py)."""
    from deepres.course.experiments import race_budget, race_networks
    from deepres.training import train
    monkeypatch.setenv(runcache.CACHE_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv(runcache.STORE_ENV, "")
    laptop = PROFILES[book_runs.BOOK_BUDGET]
    data, race = books_data, race_budget(laptop)
    run = train(race_networks(laptop, data)[name], data, steps=race.steps,
                batch_size=race.batch_size, lr=0.1, weight_decay=1e-4,
                eval_every=race.eval_every, seed=seed, use_cache=False, progress=False,
                threads=1)
    path = ROOT / "runs" / f"{run.key}.pt"
    assert path.is_file(), f"{name}, seed {seed}: not among the committed runs (make runs)"
    stored = torch.load(path, weights_only=True)
    assert stored["history"] == run.history   # every step's loss and error, to the bit
    # the final weights are kept for the budget's first seed only (book_runs.commit)
    assert (stored["state_dict"] is None) == (seed != laptop.seeds[0])
    if stored["state_dict"] is not None:
        mine = run.model.state_dict()
        assert stored["state_dict"].keys() == mine.keys()
        for key, tensor in stored["state_dict"].items():
            assert torch.equal(tensor, mine[key]), key
