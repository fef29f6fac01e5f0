"""Helpers for the book pages: publish a computed number to the text, show a quiz."""
import json
from importlib import resources


def glue(name, value, fmt=None):
    """Print ``name = value`` and hand it to the book's text (myst-nb ``glue``), formatted
    with ``fmt``, so the prose quotes exactly what the page printed. Without myst-nb
    (e.g. in Colab) it only prints."""
    shown = format(value, fmt) if fmt else str(value)
    print(f"{name} = {shown}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, shown, display=False)


def quiz(chapter):
    """Show the self-check quiz of a chapter (interactive also in the static HTML)."""
    from jupyterquiz import display_quiz
    text = resources.files("deepres").joinpath("quizzes", f"{chapter}.json").read_text()
    display_quiz(json.loads(text), shuffle_answers=False)


def separation(a, b, name_a, name_b, what="test error", over="seed"):
    """A verdict on two networks, against the spread of the seeds: ``a`` and ``b`` are the
    values of each seed's run (lower is better; ``over`` names what varies, e.g.
    "direction"). One is ahead only if the ranges do not overlap (every run of one below
    every run of the other); otherwise the runs do not separate them. Used wherever a
    page states which network came out ahead, so that no sentence rests on a gap smaller
    than the seeds' own spread."""
    for (low, name_low), (high, name_high) in (((a, name_a), (b, name_b)),
                                               ((b, name_b), (a, name_a))):
        if max(low) < min(high):
            return (f"{name_low} has the lower {what} with every {over}; even its worst "
                    f"{over} is below the best {over} of {name_high}: the runs separate "
                    f"them")
    return (f"the {over}s' ranges of {what} overlap: these runs do not separate {name_a} "
            f"and {name_b}")
