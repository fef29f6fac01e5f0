import json
import re
from importlib import resources
from pathlib import Path

import pytest

from deepres.book import glue, separation
from deepres.plots import cost_shares, training_curves
from helpers import synthetic_data

ROOT = Path(__file__).resolve().parents[1]
QUIZZES = sorted(p.stem for p in resources.files("deepres").joinpath("quizzes").iterdir()
                 if p.name.endswith(".json"))


def test_glue_publishes_exactly_what_it_prints(monkeypatch, capsys):
    glued = {}
    import myst_nb
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: glued.update({name: value}))
    glue("gap", 21.2345, ".1f")
    glue("count", 269722, ",")
    glue("n", 2)
    assert capsys.readouterr().out.splitlines() == ["gap = 21.2", "count = 269,722", "n = 2"]
    assert glued == {"gap": "21.2", "count": "269,722", "n": "2"}


def test_every_quiz_a_chapter_shows_exists():
    for chapter in ROOT.glob("chapters/*.md"):
        for name in re.findall(r'quiz\("(\w+)"\)', chapter.read_text()):
            assert name in QUIZZES, f"{chapter.name} shows a quiz with no file: {name}"


@pytest.mark.parametrize("name", QUIZZES)
def test_quiz_is_well_formed(name):
    questions = json.loads(resources.files("deepres").joinpath("quizzes", f"{name}.json").read_text())
    assert len(questions) >= 5
    # at least two ask to predict or to interpret a result, not to recall a fact
    assert sum(q["question"].startswith(("Predict", "Interpret")) for q in questions) >= 2
    for q in questions:
        assert q["question"].strip()
        if q["type"] == "multiple_choice":
            assert sum(a["correct"] for a in q["answers"]) == 1
            assert all(a["feedback"].strip() for a in q["answers"])
        else:
            assert q["type"] == "numeric"
            assert any(a["type"] == "value" and a["correct"] for a in q["answers"])


def test_training_curves_are_labelled():
    from deepres.training import train
    import torch.nn as nn
    run = train(lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), synthetic_data(),
                steps=10, eval_every=5, use_cache=False, progress=False, name="tiny")
    ax = training_curves([run], title="t").axes[0]
    assert ax.get_xlabel() == "iteration" and ax.get_ylabel() == "error (%)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "tiny: training batches", "tiny: test", "x: training subset, eval mode"]


def test_cost_shares_are_labelled():
    rows = [dict(name="a", kind="Conv2d", params=10, flops=90),
            dict(name="b", kind="Linear", params=90, flops=10)]
    fig = cost_shares(rows)
    assert [ax.get_xlabel() for ax in fig.axes] == ["share of all parameters (%)",
                                                     "share of all FLOPs (%)"]


def test_no_question_is_asked_twice():
    asked = [q["question"] for name in QUIZZES for q in json.loads(
        resources.files("deepres").joinpath("quizzes", f"{name}.json").read_text())]
    assert len(asked) == len(set(asked))


@pytest.mark.parametrize("a, b, verdict", [
    ([0.10, 0.11], [0.12, 0.13], "A has the lower test error with every seed"),
    ([0.14, 0.15], [0.12, 0.13], "B has the lower test error with every seed"),
    ([0.10, 0.13], [0.12, 0.14], "do not separate A and B"),     # overlap
    ([0.10, 0.12], [0.12, 0.13], "do not separate A and B"),     # touching is not apart
    ([0.10, 0.14], [0.11, 0.12], "do not separate A and B"),     # lower mean, inside
])
def test_a_verdict_needs_the_seeds_ranges_apart(a, b, verdict):
    assert verdict in separation(a, b, "A", "B")
