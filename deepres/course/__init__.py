"""The course layer: what the chapters need beyond the core library.

Budgets (``budget``), each chapter's runs as data (``experiments``), what a chapter will
train (``planning``), the book's committed runs (``book_runs``), verdicts, quizzes and
figures for the pages (``book``, ``figures``, ``quizzes/``) and the exercise checkers
(``checks``). It builds on the core (``deepres.models``, ``data``, ``training``, ...),
which knows nothing of it.
"""
