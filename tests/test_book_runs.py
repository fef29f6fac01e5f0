"""The book's own runs (deepres.book_runs): published by the build, loaded by a learner
on another machine (other keys) instead of being trained, and refused with a clear
message when they cannot be used."""
import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from deepres import book_runs
from deepres.budget import PROFILES
from deepres.experiments import chapter_runs
from deepres.run import CHAPTERS, plan

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
SMOKE = PROFILES["smoke"]


@pytest.fixture
def published(tmp_path, monkeypatch):
    """Chapter 2's smoke runs trained on one thread into one cache and exported."""
    monkeypatch.setenv("DEEPRES_THREADS", "1")
    monkeypatch.setenv("DEEPRES_CACHE", str(tmp_path / "book-cache"))
    runs = chapter_runs(2, SMOKE, CPU)
    info = book_runs.export(2, SMOKE, CPU, tmp_path / "runs")
    return runs, info, tmp_path / "runs"


def test_another_machine_loads_the_books_runs_instead_of_training(published, tmp_path,
                                                                   monkeypatch):
    runs, info, folder = published
    assert info["runs"] == len(runs) and info["bytes"] > 0
    # another machine: two threads, so other cache keys than the book's
    monkeypatch.setenv("DEEPRES_THREADS", "2")
    monkeypatch.setenv("DEEPRES_CACHE", str(tmp_path / "learner-cache"))
    monkeypatch.setattr(book_runs, "BOOK_BUDGET", "smoke")
    assert len(plan([2], SMOKE, CPU)) == len(runs)     # nothing of the book's is here
    assert book_runs.use(2, SMOKE, CPU, source=str(folder)) == len(runs)
    assert plan([2], SMOKE, CPU) == {}                  # nothing left to train
    loaded = chapter_runs(2, SMOKE, CPU)
    for key, run in runs.items():
        assert loaded[key].cached and loaded[key].history == run.history
    assert book_runs.use(2, SMOKE, CPU, source=str(folder)) == 0   # already there


def test_the_books_runs_are_refused_with_a_reason(published, tmp_path, monkeypatch):
    runs, info, folder = published
    monkeypatch.setenv("DEEPRES_CACHE", str(tmp_path / "learner-cache"))
    monkeypatch.delenv(book_runs.SOURCE_ENV, raising=False)
    with pytest.raises(book_runs.BookRunsUnavailable, match="laptop.*BUDGET"):
        book_runs.use(2, SMOKE, CPU, source=str(folder))   # the book's budget is laptop
    monkeypatch.setattr(book_runs, "BOOK_BUDGET", "smoke")
    with pytest.raises(book_runs.BookRunsUnavailable, match=book_runs.SOURCE_ENV):
        book_runs.use(2, SMOKE, CPU)                        # where are they?
    with pytest.raises(book_runs.BookRunsUnavailable, match="could not get"):
        book_runs.use(2, SMOKE, CPU, source=str(tmp_path / "nowhere"))
    bundle = torch.load(folder / "chapter-2.pt", weights_only=True)
    bundle["library"] = "another version"
    torch.save(bundle, tmp_path / "old.pt")
    (tmp_path / "old").mkdir()
    (tmp_path / "old.pt").rename(tmp_path / "old" / "chapter-2.pt")
    with pytest.raises(book_runs.BookRunsUnavailable, match="another version"):
        book_runs.use(2, SMOKE, CPU, source=str(tmp_path / "old"))
    (tmp_path / "learner-cache" / "book-chapter-2.pt").write_bytes(b"cut short")
    with pytest.raises(book_runs.BookRunsUnavailable, match="could not be read"):
        book_runs.use(2, SMOKE, CPU, source=str(folder))
    assert book_runs.use(2, SMOKE, CPU, source=str(folder)) == len(runs)   # fetched anew


def test_the_built_book_publishes_every_training_chapters_runs(book):
    folder = book[2] / "runs"
    index = book_runs.read_index(folder)
    assert sorted(index) == list(CHAPTERS)
    for chapter, entry in index.items():
        bundle = torch.load(folder / book_runs.file_name(chapter), weights_only=True)
        assert len(bundle["runs"]) == entry["runs"] > 0
        assert entry["budget"] == bundle["budget"] == book_runs.BOOK_BUDGET
        assert entry["rest_seconds"] > 0 and entry["train_seconds"] > 0


def test_a_learner_notebook_with_book_runs_trains_nothing(book, tmp_path, monkeypatch):
    """Chapter 2's learner notebook, BOOK_RUNS = True, on a "machine" whose run keys are
    not the book's (two threads, an empty cache): it loads the book's runs, trains none
    of them, and runs to its first exercise's check as usual."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_learner import execute
    md = ROOT / "chapters" / "02_degradation.md"
    notebook = nbformat.reads(md.with_suffix(".ipynb").read_text(), as_version=4)
    first = next(c for c in notebook.cells[3:] if c.cell_type == "code")
    assert "BOOK_RUNS = False" in first.source
    first.source = first.source.replace("BOOK_RUNS = False", "BOOK_RUNS = True")
    monkeypatch.delenv("DEEPRES_BUDGET", raising=False)
    monkeypatch.setenv("DEEPRES_THREADS", "2")
    monkeypatch.setenv("DEEPRES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(book_runs.SOURCE_ENV, str(book[2] / "runs"))
    errors = execute(notebook, tmp_path)
    said = "\n".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    assert "were copied from the book's build" in said
    assert "not in the run cache; training" not in said
    assert errors and errors[0][1].ename == "CheckFailed"   # the first unsolved exercise
