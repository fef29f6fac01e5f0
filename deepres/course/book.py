"""Helpers for the book pages: publish a computed number to the text, show a quiz,
state a verdict on two networks by the book's one decision rule."""
import json
import math
import os
import statistics
from importlib import resources


def glue(name, value, fmt=None):
    """Hand ``value``, formatted with ``fmt``, to the book's text (myst-nb ``glue``), so
    the prose quotes exactly what the page computed. In a notebook (Colab, Jupyter) it
    prints ``name = value`` instead, where the learner compares it with the book's value
    in the text; the book's own pages show it in the prose only."""
    from .figures import BOOK_ENV
    shown = format(value, fmt) if fmt else str(value)
    if os.environ.get(BOOK_ENV) != "1":
        print(f"{name} = {shown}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, shown, display=False)


def quiz(chapter):
    """Show the self-check quiz of a chapter (interactive also in the static HTML)."""
    from jupyterquiz import display_quiz
    text = resources.files("deepres.course").joinpath("quizzes", f"{chapter}.json").read_text()
    display_quiz(json.loads(text), shuffle_answers=False)


ODDS = 20   # a verdict needs a chance of at most 1 in 20 between equally good networks


def chance_of_separation(n, m):
    """The chance that every one of ``n`` runs of one network and ``m`` runs of another
    fall on one side of each other (all of one below all of the other, either way round)
    when the two networks are equally good: then every order of the ``n + m`` results is
    equally likely, and 2 of the C(n + m, n) ways to place them separate them."""
    return 2 / math.comb(n + m, n)


def seeds_needed():
    """The fewest runs a network (the same number for both) for which a complete
    separation happens at most 1 time in ``ODDS`` between equally good networks."""
    n = 1
    while chance_of_separation(n, n) > 1 / ODDS:
        n += 1
    return n


def verdict(a, b, name_a, name_b, what="test error", over="seed", percent=True):
    """The book's one decision rule, on two networks' results (one value a run, lower is
    better; ``over`` names what varies between the runs: "seed", "direction").

    One network is ahead only if every run of it is below every run of the other *and*
    that would happen at most 1 time in ``ODDS`` between two equally good networks
    (``chance_of_separation``: with two runs each it happens 1 time in 3). Prints the
    runs, the gap between the means and the spread of each network's runs (the evidence);
    returns the verdict as one short sentence for the text."""
    scale, unit = (100, " points") if percent else (1, "")
    rows = [(name_a, [scale * v for v in a]), (name_b, [scale * v for v in b])]
    width = max(len(name) for name, _ in rows)
    print(f"{what}{' (%)' if percent else ''}, one value a {over}, and their mean:")
    for name, values in rows:
        print(f"  {name:<{width}}  " + "  ".join(f"{v:7.3f}" for v in values)
              + f"   mean {statistics.mean(values):.3f}")
    gap = abs(statistics.mean(rows[0][1]) - statistics.mean(rows[1][1]))
    spread = max(max(values) - min(values) for _, values in rows)
    measured = (f"a gap of {gap:.2f}{unit} between the means, against a spread of up to "
                f"{spread:.2f}{unit} between one network's {over}s")
    print(measured)
    odds = round(1 / chance_of_separation(len(a), len(b)))
    for (low, name_low), (high, name_high) in (((a, name_a), (b, name_b)),
                                               ((b, name_b), (a, name_a))):
        if max(low) < min(high):
            if odds >= ODDS:
                return (f"{name_low} is ahead: each of its {over}s has a lower {what} than "
                        f"every {over} of {name_high}, which happens 1 time in {odds} "
                        f"between equally good networks")
            return (f"each {over} of {name_low} has a lower {what} than every {over} of "
                    f"{name_high}, but with {len(a)} and {len(b)} {over}s that happens 1 time "
                    f"in {odds} between equally good networks: they are not distinguished "
                    f"by these runs")
    return f"their {over}s overlap: {name_a} and {name_b} are not distinguished by these runs"
