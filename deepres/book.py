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
