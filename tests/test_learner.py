"""The learner notebooks: generated from the chapters, in sync, free of solutions,
runnable up to the first unsolved exercise, and passing with the solutions put back."""
import copy
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

from devtools import learner, repository
from devtools.testing import colab_runtime_available, execute, solution_cells, with_solutions  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]

CHAPTERS = learner.chapters()
COMPUTATION_CELL = "# Your computation here\n"   # under a prose exercise that asks for one
IDS = [c.stem for c in CHAPTERS]


def test_there_are_chapters():
    assert CHAPTERS, "no numbered chapters found"


def book_values(md):
    """The book's numbers that the committed learner notebook carries."""
    return nbformat.read(md.with_suffix(".ipynb"), as_version=4).metadata["deepres"]["book_values"]


def markdown_of(md):
    notebook = nbformat.reads(md.with_suffix(".ipynb").read_text(), as_version=4)
    return "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")


def pinned(md):
    """The commit the committed learner notebook's install cell installs."""
    return learner.pinned_commit(nbformat.read(md.with_suffix(".ipynb"), as_version=4))


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_committed_notebook_is_in_sync(md):
    committed = md.with_suffix(".ipynb")
    assert committed.is_file(), f"run `make learner` to create {committed.name}"
    assert committed.read_text() == learner.render(
        learner.learner_notebook(md, book_values(md), pinned(md))), (
        f"{committed.name} is out of date: run `make learner`")


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_the_notebook_installs_the_library_it_was_made_with(md):
    """The install cell pins a commit, and the library at that commit (deepres/,
    pyproject.toml and the book's runs) is this working tree's: the notebook and the
    library cannot drift apart. After a change to the library: commit it, then `make
    learner`, and commit."""
    import subprocess
    commit = pinned(md)
    assert commit and len(commit) == 40, "the install cell pins no commit"
    known = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT)
    assert known.returncode == 0, f"{md.stem}: pins {commit[:10]}, not in this repository"
    diff = subprocess.run(["git", "diff", "--stat", commit, "--", *repository.LIBRARY],
                          cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert not diff, (f"the library changed since {commit[:10]}, which {md.stem}'s install "
                      f"cell installs: commit the library, then `make learner`\n{diff}")


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_prose_shows_the_books_numbers_not_glue_names(md):
    # the solutions' prose is not in the learner notebook (a learner writes their own)
    shown = re.sub(r"\{solution-start\}.*?\{solution-end\}", "", md.read_text(), flags=re.S)
    names = set(re.findall(r"\{glue(?::\w+)?\}`([^`:]+)", shown))
    assert names, "a chapter quotes numbers it computed"
    values, text = book_values(md), markdown_of(md)
    assert "{glue" not in text
    for name in names:
        assert f"`{name}`" not in text, f"the glue name {name} is left in the prose"
        marked = learner.NUMBER.match(values[name])
        assert (f"{values[name]}{learner.BOOK_MARK}" if marked else values[name]) in text, name


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_the_books_numbers_are_the_current_builds(md, book):
    """Every number a learner notebook quotes is the one this build computed, on any
    x86-64 machine (tests/test_reproducible.py); only the measurements of this machine
    (times, memory) may differ from build to build."""
    executed = book[2].parent / "jupyter_execute" / "chapters" / f"{md.stem}.ipynb"
    built, committed = learner.glued_values(executed), book_values(md)
    assert committed.keys() == built.keys(), "run `make learner` after `make book`"
    differ = {name: (committed[name], value) for name, value in built.items()
              if not name.startswith(learner.MEASURED_PREFIXES) and committed[name] != value}
    assert differ == {}, f"{md.stem}: the learner notebook has other numbers than the build " \
                         f"(committed, built): {differ}; run `make learner` after `make book`"


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_prose_exercises_get_an_answer_cell_and_a_link_to_the_solution(md, book):
    labels = re.findall(r"^````\{exercise\}[^\n]*\n:label: ([\w-]+)", md.read_text(), re.M)
    notebook = nbformat.reads(md.with_suffix(".ipynb").read_text(), as_version=4)
    sources = [c.source for c in notebook.cells]
    for label in labels:
        link = f"{learner.book_url()}chapters/{md.stem}.html#{label}"
        [where] = [i for i, s in enumerate(sources) if link in s]
        assert notebook.cells[where - 1].source.startswith("*Your answer:*")
        assert f'id="{label}"' in (book[2] / "chapters" / f"{md.stem}.html").read_text()


def test_there_are_prose_exercises():
    assert sum("````{exercise} " in md.read_text() for md in CHAPTERS) >= 4


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_no_solution_text_leaks(md):
    notebook = nbformat.reads(md.with_suffix(".ipynb").read_text(), as_version=4)
    text = "\n".join(cell.source for cell in notebook.cells)
    solutions = solution_cells(md)
    assert solutions, "a chapter has exercises with solutions"
    for source in solutions:
        for line in source.splitlines():
            line = line.strip()
            # signatures (def ..., class ...) are in the stubs on purpose
            if len(line) > 20 and not line.startswith(("def ", "class ", "#")):
                assert line not in text, f"solution code leaked: {line}"
    # the prose of the solutions is gone too
    chapter = md.read_text()
    for block in re.findall(r"\{solution-start\}.*?\n(.*?)\{solution-end\}", chapter, re.S):
        for sentence in re.findall(r"^[A-Z][^`\n]{30,}$", block, re.M):
            assert sentence not in text, f"solution prose leaked: {sentence}"


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_code_cells_are_the_chapters_minus_solutions(md):
    notebook = nbformat.reads(md.with_suffix(".ipynb").read_text(), as_version=4)
    code = [c.source for c in notebook.cells if c.cell_type == "code"
            and c.source != COMPUTATION_CELL]
    solutions = solution_cells(md)
    expected = [c.source for c in jupytext.read(md).cells
                if c.cell_type == "code" and c.source not in solutions
                and "book-only" not in c.metadata.get("tags", [])]
    assert code[0] == learner.install_cell(pinned(md)).source
    assert code[1:] == expected


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_the_books_own_figures_stay_out_and_the_widgets_stay_in(md):
    """The HTML book's figures (deepres.course.figures) need the book's plotly.js: the learner
    notebook leaves them out, and keeps the ipywidget that does the same with a kernel."""
    chapter = jupytext.read(md)
    book_only = [c for c in chapter.cells if "book-only" in c.metadata.get("tags", [])]
    assert book_only and all("deepres.course.figures" in c.source for c in book_only)
    text = md.with_suffix(".ipynb").read_text()
    assert "deepres.course.figures" not in text and "book-only" not in text
    assert "widgets.interact(" in text


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_notebook_runners_leave_the_ipywidgets_to_people_and_nbval(md):
    """A cell that calls ipywidgets.interact made nbclient wait for ever, now and then,
    after the kernel had finished it (seen here in two builds, in chapters 4 and 7; the
    same is reported for nbclient and nbconvert). The cell is tagged skip-execution:
    nbclient (the book build, the learner-notebook tests) leaves it out, nbval (which
    does not know the tag) still runs it, and a person runs it as any other cell. So
    it must define nothing that another cell needs."""
    chapter = jupytext.read(md)
    widget = [c for c in chapter.cells if "widgets.interact(" in c.source]
    assert len(widget) == 1
    assert "skip-execution" in widget[0].metadata.get("tags", [])
    later = "\n".join(c.source for c in chapter.cells[chapter.cells.index(widget[0]) + 1:])
    defined = re.findall(r"^def (\w+)|^(\w+) = ", widget[0].source, re.M)
    for name in {a or b for a, b in defined}:
        assert not re.search(rf"\b{name}\b", later), f"a later cell uses {name}"
    learner_cells = nbformat.read(md.with_suffix(".ipynb"), as_version=4).cells
    assert any("skip-execution" in c.metadata.get("tags", []) for c in learner_cells)


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_no_myst_markup_left_for_colab(md):
    notebook = nbformat.reads(md.with_suffix(".ipynb").read_text(), as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            assert not re.search(r"```\{|\{[\w:-]+\}`", cell.source), cell.source[:200]


def test_install_cell_uses_the_configured_repository():
    source = learner.install_cell("0" * 40).source
    assert f'REPOSITORY = "{learner.repository_url()}"' in source
    assert f'COMMIT = "{"0" * 40}"' in source and "git+{REPOSITORY}@{COMMIT}" in source


@pytest.mark.parametrize("markdown, problem", [
    ("```{mystery}\nbody\n```", "unknown directive"),
    ("text {unheard}`role`", "unknown role"),
    ("see {footcite}`nobody2099`", "not in references.bib"),
])
def test_unknown_markup_is_refused(markdown, problem):
    with pytest.raises(learner.UnknownMarkup, match=problem):
        learner.Converter(learner.Bibliography()).markdown(markdown)


def test_two_works_cited_alike_get_letters():
    bib = learner.Bibliography()
    assert bib.cite("he2016resnet") != bib.cite("he2016identity")
    assert (bib.year("he2016resnet"), bib.year("he2016identity")) == ("2016a", "2016b")
    assert bib.year("simonyan2015vgg") == "2015"
    assert "(2016a)" in bib.reference_list() and "(2016b)" in bib.reference_list()


def test_conversions():
    converter = learner.Converter(learner.Bibliography())
    out = converter.markdown(
        "As {footcite}`he2016resnet,simonyan2015vgg` show, {glue:text}`gap:.2f` points.\n"
        "```{note}\nA note.\n```\n"
        "````{exercise-start} Title\n:label: x\n````\nDo it.\n"
        "````{solution-start} x\n:class: dropdown\n````\nSecret.\n````{solution-end}\n````\n"
        "```{footbibliography}\n```")
    assert "(He et al., 2016a; Simonyan & Zisserman, 2015)" in out
    assert "`gap` points" in out
    assert "> **Note**" in out and "### Exercise 1: Title" in out and "Do it." in out
    assert "Secret" not in out and ":label:" not in out
    assert "Deep Residual Learning for Image Recognition" in out


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_the_rest_of_an_unsolved_notebook_needs_nothing_from_its_exercises(md):
    """A learner may leave an exercise unsolved and go on: no cell after a stub, other
    than the exercise's check, may use what the stub defines (it would raise
    NotImplementedError there: a dead end). The learner-notebook runs check the same by
    running; this holds the Colab runtime's one pass (unsolved, then solved) to it."""
    notebook = nbformat.reads(md.with_suffix(".ipynb").read_text(), as_version=4)
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    stubs = [i for i, source in enumerate(code) if "raise NotImplementedError" in source]
    assert stubs, "a chapter has exercises"
    for i in stubs:
        names = set(re.findall(r"^def (\w+)|^class (\w+)", code[i], re.M))
        names = {a or b for a, b in names}
        assert names, code[i][:200]
        for later in code[i + 1:]:
            if "check." in later or "raise NotImplementedError" in later:
                continue
            used = [n for n in names if re.search(rf"\b{n}\b", later)]
            assert not used, f"a cell after the exercise uses {used}: {later[:200]}"


@pytest.mark.skipif(colab_runtime_available(), reason="tests/test_colab.py runs every "
                    "learner notebook unsolved and solved, in Colab's own runtime")
@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_learner_notebook_stops_only_at_unsolved_exercises(md, tmp_path):
    notebook = nbformat.reads(md.with_suffix(".ipynb").read_text(), as_version=4)
    errors = execute(notebook, tmp_path)
    check_cells = [i for i, c in enumerate(notebook.cells)
                   if c.cell_type == "code" and "check." in c.source]
    assert check_cells, "a chapter has checked exercises"
    # the first failure is the first exercise's check, and every failure is a check
    # saying what to do - nothing else breaks (no dead end for the learner)
    assert [i for i, _ in errors] == check_cells
    for _, error in errors:
        assert error.ename == "CheckFailed" and "not done yet" in error.evalue
        shown = "\n".join(error.traceback)  # what the learner sees: the message only
        assert "Traceback" not in shown and "deepres" not in shown and ".py" not in shown


@pytest.mark.skipif(colab_runtime_available(), reason="tests/test_colab.py runs every "
                    "learner notebook unsolved and solved, in Colab's own runtime")
@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_learner_notebook_with_the_solutions_pasted_in_passes(md, tmp_path):
    notebook = nbformat.reads(md.with_suffix(".ipynb").read_text(), as_version=4)
    assert execute(with_solutions(notebook, md), tmp_path) == []


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_the_book_only_cells_define_nothing_the_learner_notebook_needs(md):
    """The learner notebook is the chapter less its solutions and its book-only cells
    (test_code_cells_are_the_chapters_minus_solutions). nbval runs the whole chapter; so
    that its run also stands for the learner notebook's with the solutions pasted in,
    no book-only cell may define a name that a later cell uses."""
    cells = jupytext.read(md).cells
    for i, cell in enumerate(cells):
        if "book-only" not in cell.metadata.get("tags", []):
            continue
        later = "\n".join(c.source for c in cells[i + 1:] if c.cell_type == "code"
                          and "book-only" not in c.metadata.get("tags", []))
        defined = re.findall(r"^def (\w+)|^class (\w+)|^(\w+)\s*=[^=]|^import (\w+)",
                             cell.source, re.M)
        for name in {next(n for n in names if n) for names in defined}:
            assert not re.search(rf"\b{name}\b", later), f"a later cell uses {name}"


# ---- issue 24: what a learner meets in the notebook ----

def exercises_in_book(html):
    """[(number, title)] of the exercises of a built page, in order."""
    found = re.findall(r'<p class="admonition-title"><span class="caption-number">'
                       r'Exercise (\d+) </span> \(([^<]*)\)</p>', html)
    import html as html_module
    plain = {"’": "'", "‘": "'", "“": '"', "”": '"', "–": "--", "—": "---"}   # smartquotes
    return [(int(n), "".join(plain.get(ch, ch) for ch in html_module.unescape(title)))
            for n, title in found]


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_exercises_have_the_books_numbers(md, book):
    """sphinx-exercise numbers exercises through the whole book; the notebook's headings
    carry the same number and title as the page's."""
    html = (book[2] / "chapters" / f"{md.stem}.html").read_text()
    in_book = exercises_in_book(html)
    assert in_book, f"no numbered exercise found in {md.stem}.html"
    in_notebook = [(int(n), t) for n, t in
                   re.findall(r"^### Exercise (\d+): (.*)$", markdown_of(md), re.M)]
    assert in_notebook == in_book


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_every_exercise_links_to_its_solution_in_the_book(md, book):
    """After each exercise, code or prose: a link to its solution, an anchor of the
    built page."""
    html = (book[2] / "chapters" / f"{md.stem}.html").read_text()
    labels = re.findall(r"^````\{exercise(?:-start)?\}[^\n]*\n:label: ([\w-]+)",
                        md.read_text(), re.M)
    text = markdown_of(md)
    assert labels
    for label in labels:
        link = f"]({learner.book_url()}chapters/{md.stem}.html#{label})"
        assert text.count(link) == 1, f"{md.stem}: no single link to {label}'s solution"
        assert f'id="{label}"' in html


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_prose_exercises_that_ask_for_a_computation_get_a_code_cell(md):
    """An exercise marked ``:class: with-code`` gets a code cell, then the answer cell; and
    every prose exercise that names a function to run is so marked."""
    source = md.read_text()
    marked = re.findall(r"^````\{exercise\}[^\n]*\n:label: ([\w-]+)\n:class: with-code",
                        source, re.M)
    for body in re.findall(r"^````\{exercise\}[^\n]*\n(.*?)^````$", source, re.M | re.S):
        asks = re.search(r"`\w+\(|\b(measure|count|check it with|use `)", body, re.I)
        label = re.search(r":label: ([\w-]+)", body).group(1)
        assert bool(asks) == (label in marked), (
            f"{md.stem}: {label} {'asks' if asks else 'does not ask'} for a computation; "
            f"mark it (or not) with :class: with-code")
    cells = nbformat.reads(md.with_suffix(".ipynb").read_text(), as_version=4).cells
    for label in marked:
        [i] = [i for i, c in enumerate(cells) if f"#{label})" in c.source]
        assert cells[i - 1].source.startswith("*Your answer:*")
        assert cells[i - 2].cell_type == "code" and cells[i - 2].source == COMPUTATION_CELL


def test_references_keep_the_bibliographys_names():
    """"van der Maaten" and "Łukasz Kaiser", as references.bib writes them (a prefix and a
    LaTeX letter), in the notebooks' reference lists and citations."""
    bib = learner.Bibliography()
    assert bib.cite("huang2017densenet") == "(Huang et al., 2017)"
    bib.cite("pleiss2017memory")
    bib.cite("vaswani2017attention")
    listed = bib.reference_list()
    assert "Laurens van der Maaten" in listed and "Łukasz Kaiser" in listed
    assert "\\" not in listed and "{" not in listed
    text = "".join(markdown_of(md) for md in CHAPTERS)
    assert "Laurens van der Maaten" in text and "Laurens Maaten" not in text


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_the_first_cell_says_run_all_stops_at_an_exercise_and_how_long_it_takes(md):
    intro = nbformat.reads(md.with_suffix(".ipynb").read_text(), as_version=4).cells[1].source
    assert '"Run all" stops at the first exercise you have not solved' in intro
    assert "Run cell and below" in intro
    assert "How long it takes" in intro
    if int(md.stem[:2]) in range(1, 9):   # the chapters whose runs the book publishes: all
        values = book_values(md)
        for name in ("time_book_train", "time_book_rest", "mem_book_runs"):
            assert f"{values[name]}{learner.BOOK_MARK}" in intro, name
        assert "BOOK_RUNS = True" in intro
        first_code = next(c.source for c in nbformat.reads(
            md.with_suffix(".ipynb").read_text(), as_version=4).cells[3:]
            if c.cell_type == "code")
        assert "BOOK_RUNS = False" in first_code and "book_runs=BOOK_RUNS" in first_code


def library_answers():
    """{check function: the names of the course's own code that does what its exercise
    asks}, from every ``run_checks(..., library=(...))`` in deepres/course/checks."""
    import ast
    found = {}
    for path in sorted((ROOT / "deepres" / "course" / "checks").glob("*.py")):
        for fn in ast.parse(path.read_text()).body:
            if not isinstance(fn, ast.FunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "run_checks":
                    found[fn.name] = [e.id for kw in node.keywords if kw.arg == "library"
                                      for e in kw.value.elts]
    return found


# Helpers a page defined that did an exercise's work before it (issue 24): kept here so
# that the test finds them should they come back.
PAGE_HELPERS = {"width_for_cardinality": ["fixed_d"]}


def shows(name, source):
    """Whether a cell prints ``name``'s source or defines it."""
    return bool(re.search(rf"getsource\([^)]*\b{name}\b|^(def|class) {name}\b", source, re.M))


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_no_answer_is_shown_before_its_exercise(md):
    """No cell before an exercise prints the source of the library's code that does what
    the exercise asks (the ``library=`` of its checker, which also turns that code away
    as an answer) or defines a helper that does it: in the book and in the notebook."""
    answers = library_answers()
    assert {"option_a", "remove_blocks", "random_direction"} <= set(answers)
    notebook = nbformat.reads(md.with_suffix(".ipynb").read_text(), as_version=4)
    for cells in ([c.source for c in jupytext.read(md).cells if c.cell_type == "code"],
                  [c.source for c in notebook.cells if c.cell_type == "code"]):
        for i, source in enumerate(cells):
            for fn in re.findall(r"^check\.(\w+)\(", source, re.M):
                stub = max(j for j in range(i) if "raise NotImplementedError" in cells[j])
                for name in answers.get(fn, []) + PAGE_HELPERS.get(fn, []):
                    shown = [j for j in range(stub) if shows(name, cells[j])]
                    assert not shown, (f"{md.stem}: {name} is shown before the exercise "
                                       f"that check.{fn} checks: {cells[shown[0]][:200]}")


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_a_passing_check_shows_its_report_and_nothing_else(md, book):
    """No bare `True` under a check cell: a check prints its report and returns None."""
    executed = book[2].parent / "jupyter_execute" / "chapters" / f"{md.stem}.ipynb"
    checks = [c for c in nbformat.read(executed, as_version=4).cells
              if c.cell_type == "code" and re.search(r"^check\.\w+\(", c.source, re.M)]
    assert checks
    for cell in checks:
        # printed text only (the kernel may send it in more than one piece on a busy machine)
        assert {o.output_type for o in cell.outputs} == {"stream"}, cell.source
        assert "correct" in "".join(o.text for o in cell.outputs)
