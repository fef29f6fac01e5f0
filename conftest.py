"""Let nbval run the MyST chapters (chapters/*.md) as notebooks.

nbval only collects .ipynb files. Rather than converting the chapters on disk, we read
each chapter with jupytext and hand nbval the notebook: the kernel still runs in
chapters/, as in the book build. The learner notebooks (chapters/*.ipynb) are not run
by nbval: they stop at unsolved exercises by design, and tests/test_learner.py runs them.
"""
from unittest import mock

import jupytext
import pytest

collect_ignore_glob = ["chapters/*.ipynb", "_build", ".venv"]


def _is_chapter(path):
    return (path.suffix == ".md" and path.parent.name == "chapters"
            and path.read_text().startswith("---\njupytext:"))


def pytest_collect_file(file_path, parent):
    opt = parent.config.option
    if (getattr(opt, "nbval", False) or getattr(opt, "nbval_lax", False)) and _is_chapter(file_path):
        return MystNotebook.from_parent(parent, path=file_path)
    return None


def _make_class():
    from nbval.plugin import IPyNbFile, nbformat

    class MystNotebook(IPyNbFile):
        def collect(self):
            # nbval reads the file with nbformat.read; read the MyST text instead.
            with mock.patch.object(nbformat, "read", lambda path, as_version: jupytext.read(path)):
                yield from super().collect()

    return MystNotebook


MystNotebook = _make_class()
