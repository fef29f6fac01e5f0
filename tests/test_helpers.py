import json
import re
from importlib import resources
from pathlib import Path

import pytest

from deepres.course.book import ODDS, chance_of_separation, glue, seeds_needed, verdict
from deepres.plots import cost_shares, training_curves
from devtools.testing import synthetic_data

ROOT = Path(__file__).resolve().parents[1]
QUIZZES = sorted(p.stem for p in resources.files("deepres.course").joinpath("quizzes").iterdir()
                 if p.name.endswith(".json"))


def test_glue_publishes_exactly_what_it_prints(monkeypatch, capsys):
    from deepres.course.figures import BOOK_ENV
    monkeypatch.delenv(BOOK_ENV, raising=False)
    glued = {}
    import myst_nb
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: glued.update({name: value}))
    glue("gap", 21.2345, ".1f")
    glue("count", 269722, ",")
    glue("n", 2)
    assert capsys.readouterr().out.splitlines() == ["gap = 21.2", "count = 269,722", "n = 2"]
    assert glued == {"gap": "21.2", "count": "269,722", "n": "2"}


def test_the_books_pages_show_a_glued_value_in_the_prose_only(monkeypatch, capsys):
    import myst_nb
    from deepres.course.figures import BOOK_ENV
    glued = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: glued.update({name: value}))
    monkeypatch.setenv(BOOK_ENV, "1")
    glue("gap", 21.2345, ".1f")
    assert capsys.readouterr().out == ""
    assert glued == {"gap": "21.2"}


def test_every_quiz_a_chapter_shows_exists():
    for chapter in ROOT.glob("chapters/*.md"):
        for name in re.findall(r'quiz\("(\w+)"\)', chapter.read_text()):
            assert name in QUIZZES, f"{chapter.name} shows a quiz with no file: {name}"


@pytest.mark.parametrize("name", QUIZZES)
def test_quiz_is_well_formed(name):
    questions = json.loads(resources.files("deepres.course").joinpath("quizzes", f"{name}.json").read_text())
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
        resources.files("deepres.course").joinpath("quizzes", f"{name}.json").read_text())]
    assert len(asked) == len(set(asked))


FOUR = [0.100, 0.101, 0.102, 0.103]


@pytest.mark.parametrize("a, b, said", [
    (FOUR, [0.12, 0.13, 0.12, 0.13], "A is ahead"),
    ([0.14, 0.15, 0.14, 0.15], FOUR, "B is ahead"),
    ([0.10, 0.11], [0.12, 0.13], "1 time in 3 between equally good networks: they "
                                 "are not distinguished"),                         # 2 seeds
    ([0.10, 0.11, 0.10], [0.12, 0.13, 0.12], "1 time in 10"),                     # 3 seeds
    (FOUR, [0.09, 0.12, 0.13, 0.14], "A and B are not distinguished"),            # overlap
    (FOUR, [0.103, 0.12, 0.13, 0.14], "A and B are not distinguished"),           # touching
    ([0.10, 0.10, 0.10, 0.20], [0.11] * 4, "A and B are not distinguished"),     # lower mean, inside
])
def test_a_verdict_needs_every_seed_apart_and_enough_seeds(a, b, said, capsys):
    text = verdict(a, b, "A", "B")
    assert said in text
    assert "tie" not in text.split()
    shown = capsys.readouterr().out   # the runs are shown, one value a seed
    assert shown.count("\n") == 4 and "  A  " in shown and "mean" in shown


def test_the_chance_of_separation_is_the_count_of_orderings():
    import itertools
    import random
    assert chance_of_separation(2, 2) == 1 / 3 and chance_of_separation(3, 3) == 1 / 10
    assert seeds_needed() == 4 and chance_of_separation(4, 4) <= 1 / ODDS < chance_of_separation(3, 3)
    # every ordering of 2 + 3 equally good runs: the share in which one side is all below
    runs = list(itertools.permutations("aabbb"))
    apart = sum(order[:2] in (("a", "a"),) or order[:3] == ("b",) * 3 for order in runs)
    assert apart / len(runs) == pytest.approx(chance_of_separation(2, 3))
    # and by sampling: equally good networks, normal noise
    rng = random.Random(0)
    hits = sum(max(a) < min(b) or max(b) < min(a) for a, b in
               (([rng.gauss(0, 1) for _ in range(4)], [rng.gauss(0, 1) for _ in range(4)])
                for _ in range(20000)))
    assert hits / 20000 == pytest.approx(1 / 35, rel=0.15)
