"""Make the learner's notebooks: chapters/NN_name.md -> chapters/NN_name.ipynb.

A learner notebook is the chapter without its solutions, with the MyST-only markup
turned into plain Markdown that Colab and Jupyter render, and with a first cell that
installs the course library where it is missing (Colab). Where the book's text shows a
number the page computed (myst-nb ``glue``), the notebook shows the number from the
executed book, marked as the book's; the values are also kept in the notebook's
metadata. Prose exercises get an answer cell and a link to their solution in the book.

Run ``make learner`` (after ``make book``) when a chapter or its numbers change;
``--check`` only reports notebooks that are out of date. The repository the install
cell and the links point at comes from ``_ext/repository.py``.
"""
import argparse
import ast
import functools
import json
import re
import sys
from pathlib import Path

import jupytext
import nbformat
from pybtex.database import parse_file
from pybtex.richtext import Text

from deepres.course.book_runs import SOURCE_ENV, read_index
from deepres.timing import duration
from devtools.repository import book_url, library_commit, raw_url, repository_url

ROOT = Path(__file__).resolve().parents[1]

EXECUTED = ROOT / "_build" / "jupyter_execute"  # where `make book` leaves the executed pages
BOOK_MARK = "<sup>†</sup>"
NUMBER = re.compile(r"^[-+]?[\d.,]+(e[-+]?\d+)?%?$")
ANSWER_CELL = "<!-- the learner's answer cell -->"
CODE_CELL = "<!-- the learner's code cell -->"   # a prose exercise that asks for a computation
COMPUTE = "with-code"   # the class that marks such an exercise (``:class: with-code``)
# Glued values that measure this machine (times, memory): they differ from run to run.
MEASURED_PREFIXES = ("time_", "mem_")
FENCE = re.compile(r"^(`{3,}|:{3,})\{([\w:-]+)\}\s*(.*)$")
ROLE = re.compile(r"\{([\w:-]+)\}`([^`]*)`")
ADMONITIONS = {"note", "tip", "warning", "important", "hint", "caution", "attention",
               "admonition", "seealso"}


class UnknownMarkup(ValueError):
    pass


class MissingBuild(RuntimeError):
    pass


def glued_values(executed_notebook):
    """{name: text} of every value an executed chapter glued (myst-nb keeps them in
    ``NAME.glue.json`` beside the executed ``NAME.ipynb``), and ``book_budget``: the budget
    its setup cell printed."""
    executed_notebook = Path(executed_notebook)
    glue_file = executed_notebook.with_suffix(".glue.json")
    if not executed_notebook.is_file():
        raise MissingBuild(f"{executed_notebook} does not exist: build the book first "
                           f"(`make book`), then run `make learner`.")
    values = {}
    for name, out in (json.loads(glue_file.read_text()) if glue_file.is_file() else {}).items():
        text = out["data"]["text/plain"]
        values[name] = ast.literal_eval(text) if text[:1] in "'\"" else text
    for cell in nbformat.read(str(executed_notebook), as_version=4).cells:
        for out in cell.get("outputs", []):
            budget = re.search(r"^budget: (\w+) \(", out.get("text", ""), re.M)
            if budget:
                values.setdefault("book_budget", budget.group(1))
    return values | book_runs_values(executed_notebook)


def book_runs_values(executed_notebook):
    """What the book's committed runs of the chapter are (``runs/index.json``): how many,
    their size, their training time, and the rest of the chapter's time in this build
    (``_ext/chapter_times.py``). Nothing for a chapter without runs of its own."""
    chapter = int(Path(executed_notebook).name[:2])
    entry = read_index(ROOT / "runs")["chapters"].get(chapter)
    if not entry:
        return {}
    times = Path(executed_notebook).parents[2] / "reports" / "chapter-times.json"
    rest = json.loads(times.read_text()).get(str(chapter)) if times.is_file() else None
    return {"book_runs": str(len(entry["keys"])),
            "mem_book_runs": f"{entry['bytes'] / 1e6:.0f} MB",
            "time_book_train": duration(entry["train_seconds"]),
            "time_book_rest": duration(rest or 0)}


def chapters():
    """The chapters that get a learner notebook: numbered MyST notebooks."""
    return sorted(ROOT.glob("chapters/[0-9][0-9]_*.md"))


class Bibliography:
    def __init__(self, path=ROOT / "references.bib"):
        self.entries = parse_file(str(path)).entries
        self.cited = []

    def _names(self, key):
        if key not in self.entries:
            raise UnknownMarkup(f"citation key {key!r} is not in references.bib")
        return self.entries[key].persons.get("author", [])

    def _who(self, key):
        names = [" ".join(p.prelast_names + p.last_names) for p in self._names(key)]
        return _plain(names[0] if len(names) == 1 else (
            f"{names[0]} & {names[1]}" if len(names) == 2 else f"{names[0]} et al."))

    def year(self, key):
        """The year, with a letter where the bibliography has two works that would be
        cited alike (He et al., 2016a and 2016b), in their order in references.bib."""
        year = self.entries[key].fields["year"]
        alike = [k for k in self.entries
                 if self._who(k) == self._who(key) and self.entries[k].fields["year"] == year]
        return year + ("abcdefghij"[alike.index(key)] if len(alike) > 1 else "")

    def cite(self, keys):
        parts = []
        for key in (k.strip() for k in keys.split(",")):
            parts.append(f"{self._who(key)}, {self.year(key)}")
            if key not in self.cited:
                self.cited.append(key)
        return "(" + "; ".join(parts) + ")"

    def reference_list(self):
        lines = []
        for key in self.cited:
            entry = self.entries[key]
            names = ", ".join(" ".join(p.first_names + p.middle_names + p.prelast_names
                                       + p.last_names) for p in self._names(key))
            venue = (entry.fields.get("booktitle") or entry.fields.get("journal")
                     or entry.fields.get("institution") or "")
            arxiv = f" arXiv:{entry.fields['eprint']}." if "eprint" in entry.fields else ""
            venue = f" *{_plain(venue)}*." if venue else ""
            lines.append(f"- {_plain(names)} ({self.year(key)}). "
                         f"{_plain(entry.fields['title'])}.{venue}{arxiv}")
        return "\n".join(lines)


@functools.lru_cache(maxsize=None)
def _plain(text):
    """BibTeX text to plain text: accents, special letters ({\\L}ukasz) and braces.
    (Remembered: pybtex looks its text backend up anew at every call, 7 ms each.)"""
    return Text.from_latex(text).render_as("text")


class Converter:
    """Turns the chapter's cells into the learner's cells, one markdown line at a time."""

    def __init__(self, bib, values=None, page_url="", first_exercise=1):
        self.bib = bib
        self.values = values  # the book's glued numbers; None: leave the names
        self.page_url = page_url  # the chapter's page in the published book
        self.in_solution = False  # inside {solution-start} ... {solution-end}, across cells
        self.exercises = first_exercise - 1  # the book numbers them through all chapters
        self.prose_label = None   # the label of the last prose exercise

    def roles(self, line):
        def replace(match):
            role, text = match.groups()
            if role == "footcite":
                return self.bib.cite(text)
            if role.startswith("glue"):
                name = text.split(":")[0]
                if self.values is None:
                    return f"`{name}`"
                if name not in self.values:
                    raise UnknownMarkup(f"the executed chapter glued no value {name!r}")
                value = self.values[name]  # numbers are marked; words read as text
                return f"{value}{BOOK_MARK}" if NUMBER.match(value) else value
            if role in ("doc", "ref", "numref", "eq"):
                return re.sub(r"\s*<.*>$", "", text)
            raise UnknownMarkup(f"unknown role {{{role}}}")
        return ROLE.sub(replace, line)

    def markdown(self, source):
        out, lines, i = [], source.splitlines(), 0
        while i < len(lines):
            match = FENCE.match(lines[i])
            if not match:
                if not self.in_solution:
                    out.append(self.roles(lines[i]))
                i += 1
                continue
            fence, name, argument = match.groups()
            (body, options), i = self._block(lines, i + 1, fence)
            out.extend(self.directive(name, argument, body, options))
        return "\n".join(out).strip()

    @staticmethod
    def _block(lines, i, fence):
        """The lines of a directive up to its closing fence, and its options."""
        body, options = [], {}
        while i < len(lines) and lines[i].strip() != fence:
            option = re.match(r"^:([\w-]+):\s*(.*)$", lines[i])
            if body == [] and option:
                options[option.group(1)] = option.group(2).strip()
            else:
                body.append(lines[i])
            i += 1
        return (body, options), i + 1

    def directive(self, name, argument, body, options=None):
        if name == "solution-start":   # a code exercise's solution: link to it instead
            self.in_solution = True
            if argument.strip() == self.prose_label:   # linked to already, with the answer
                return []
            return [f"*Stuck, or done? [The solution]({self.page_url}#{argument.strip()}) is "
                    f"in the book, under the exercise.*"]
        if name == "solution-end":
            self.in_solution = False
            return []
        if self.in_solution or name in ("solution", "colab-link", "exercise-end"):
            return []
        if name in ("exercise", "exercise-start"):
            self.exercises += 1
            title = f"### Exercise {self.exercises}" + (f": {argument}" if argument else "")
            lines = [title, ""] + [self.roles(line) for line in body]
            if name == "exercise":  # a prose exercise: room for the answer, then the link
                label = self.prose_label = (options or {}).get("label", "")
                link = f"{self.page_url}#{label}" if label else self.page_url
                code = [CODE_CELL] if COMPUTE in (options or {}).get("class", "") else []
                lines += ["", *code, ANSWER_CELL, f"When you have written your answer, "
                          f"compare it with [the solution in the book]({link}) (under the "
                          f"exercise)."]
            return lines
        if name == "footbibliography":
            return [self.bib.reference_list()]
        if name == "math":
            return ["$$"] + body + ["$$"]
        if name in ADMONITIONS:
            title = argument or name.capitalize()
            return [f"> **{self.roles(title)}**", ">"] + [f"> {self.roles(b)}" for b in body]
        if name == "dropdown":
            return ([f"<details><summary>{self.roles(argument)}</summary>", ""]
                    + [self.roles(b) for b in body] + ["", "</details>"])
        raise UnknownMarkup(f"unknown directive {{{name}}}")


INSTALL = '''# Installs this course's library, at the commit this notebook was made with, where it
# is missing or another version is there (as in Colab). It leaves the runtime's own torch
# alone. In a clone of the course, `make book` has installed it: that one stays.
import importlib.metadata, json, re, subprocess, sys
REPOSITORY = "{url}"
COMMIT = "{commit}"


def installed_commit():
    """The installed library's commit; "local" for a clone's own install; None if none."""
    try:
        text = importlib.metadata.distribution("deepres").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    return json.loads(text or "{{}}").get("vcs_info", {{}}).get("commit_id", "local")


found = installed_commit()
if found not in (COMMIT, "local"):
    def pip(*args):
        return subprocess.run([sys.executable, "-m", "pip", *args, "--quiet",
                               "--disable-pip-version-check"], capture_output=True, text=True)
    if found is not None:   # another version of the library: replace it
        pip("uninstall", "--yes", "deepres")
    result = pip("install", f"git+{{REPOSITORY}}@{{COMMIT}}")
    if result.returncode != 0:
        class InstallFailed(Exception):
            def _render_traceback_(self):  # the message only, no traceback
                return str(self).splitlines()
        lines = [line.strip() for line in re.sub(r"\\x1b\\[[0-9;]*m", "", result.stderr).splitlines()]
        said = ([line for line in lines if line.startswith("fatal:")]  # git's reason
                + [line for line in lines if line.startswith("ERROR:")] + lines[-1:] + ["?"])
        raise InstallFailed(
            f"Could not install the course library from {{REPOSITORY}} (commit {{COMMIT[:10]}}).\\n"
            f"pip said: {{said[0]}}\\n"
            "What to do: check that this runtime is connected to the internet and that "
            "the address above opens in a browser, then run this cell again. On your own "
            "machine, clone the repository and run `make book` instead.")
    print(f"Installed the course library from {{REPOSITORY}} at commit {{COMMIT[:10]}}.")
    if "deepres" in sys.modules:
        print("An older version was already imported: restart the session (Runtime > "
              "Restart session), then run the notebook from the top.")

# Where a chapter finds the book's own runs when its first cell says BOOK_RUNS = True.
import os
if "{source_env}" not in os.environ:
    os.environ["{source_env}"] = "{book_runs}"'''


def install_cell(commit=None):
    """The install cell, pinned to ``commit`` (default: the library's last commit), which
    also says where the book's runs of that commit are."""
    commit = commit or library_commit()
    return nbformat.v4.new_code_cell(INSTALL.format(
        url=repository_url(), commit=commit, source_env=SOURCE_ENV,
        book_runs=raw_url(commit, "runs/")))


def pinned_commit(notebook):
    """The commit a learner notebook's install cell installs."""
    for cell in notebook.cells:
        found = re.search(r'^COMMIT = "([0-9a-f]+)"', cell.source, re.M)
        if cell.cell_type == "code" and found:
            return found.group(1)
    return None


def intro_cell(md_path, values):
    values = values or {}
    budget = values.get("book_budget", "laptop")
    mark = BOOK_MARK
    if "book_runs" in values:
        timing = (
            f"**How long it takes.** In the book's build, on a CPU core, training this "
            f"chapter's {values['book_runs']} runs took {values['time_book_train']}{mark} "
            f"(one after the other, as the notebook trains them), and the rest of the "
            f"chapter {values['time_book_rest']}{mark}. The first code cell prints, before anything "
            f"trains, how long the training will take on your device (on a GPU, far less). "
            f"No GPU, or no time? Set `BOOK_RUNS = True` in that cell: the chapter then "
            f"loads the book's own runs ({values['mem_book_runs']}{mark} to download, the "
            f"`laptop` budget) instead of training them, and takes about as long as the "
            f"rest of the chapter did in the build. Every exercise still works; the runs of "
            f"your own exercise code train here.")
    else:
        timing = ("**How long it takes.** This chapter's runs are trained in the page, and "
                  "its code cells print how long they will take on your device before they "
                  "start.")
    return nbformat.v4.new_markdown_cell(
        f"*The learner's version of a chapter of **Deep Residual Networks, Hands-On** "
        f"({repository_url()}); the book is at {book_url()}. The solutions are removed: "
        f"write your code where it says `YOUR CODE HERE`, then run the check cell below "
        f"it.*\n\n"
        f"**\"Run all\" stops at the first exercise you have not solved.** That is by "
        f"design: its check cell says what is missing, and nothing after an error runs. "
        f"Write your answer, run its cell and the check again, then select the cell after "
        f"the check and use *Runtime > Run cell and below* in Colab (*Run > Run Selected "
        f"Cell and All Below* in Jupyter); to read on without solving it, do the same.\n\n"
        f"<details><summary><b>Running this chapter</b> (how long it takes, "
        f"<code>BOOK_RUNS</code>, budgets, keeping your runs)</summary>\n\n"
        f"{timing}\n\n"
        f"*Numbers marked † are the ones the book's build computed (the `{budget}` budget, "
        f"on a CPU). Your run prints its own in the cells above them.* The first code "
        f"cell also picks the compute budget (`BUDGET`). Training runs are cached in "
        f"`~/.cache/deepres`, which Colab forgets when the runtime ends; to keep them, run "
        f"`from google.colab import drive; drive.mount(\"/content/drive\")` and "
        f"`%env DEEPRES_CACHE=/content/drive/MyDrive/deepres-cache` before that cell. "
        f"More: {book_url()}chapters/running.html\n\n</details>")


def first_exercise(md_path):
    """The book's number of the chapter's first exercise: sphinx-exercise numbers them
    through the whole book, in the order of ``_toc.yml``."""
    pages = re.findall(r"file:\s*(\S+)", (ROOT / "_toc.yml").read_text())
    before = 0
    for page in pages:
        if Path(page).stem == md_path.stem:
            return before + 1
        source = (ROOT / page).with_suffix(".md")
        before += len(re.findall(r"^(?:`{3,}|:{3,})\{(?:exercise|exercise-start)\}",
                                 source.read_text(), re.M)) if source.is_file() else 0
    raise UnknownMarkup(f"{md_path.name} is not in _toc.yml")


def learner_notebook(md_path, values=None, commit=None):
    """The learner's notebook of one chapter, as an nbformat notebook, with the glued
    ``values`` of the executed chapter (default: read from the book's build), installing
    the library at ``commit`` (default: the library's last commit)."""
    if values is None:
        values = glued_values(EXECUTED / "chapters" / md_path.with_suffix(".ipynb").name)
    chapter = jupytext.read(md_path)
    page = f"{book_url()}chapters/{md_path.stem}.html"
    converter = Converter(Bibliography(), values, page, first_exercise(md_path))
    cells = []
    for cell in chapter.cells:
        if cell.cell_type == "markdown":
            text = converter.markdown(cell.source)
            for part in re.split(f"({re.escape(ANSWER_CELL)}|{re.escape(CODE_CELL)})", text):
                if part == ANSWER_CELL:  # an empty cell where the learner writes a prose answer
                    cells.append(nbformat.v4.new_markdown_cell("*Your answer:* "))
                elif part == CODE_CELL:  # and one for the computation it asks for
                    cells.append(nbformat.v4.new_code_cell("# Your computation here\n"))
                elif part.strip():
                    cells.append(nbformat.v4.new_markdown_cell(part.strip()))
        elif not converter.in_solution:
            tags = cell.metadata.get("tags", [])
            if "book-only" in tags:   # the HTML book's own figures (deepres.course.figures)
                continue
            cells.append(nbformat.v4.new_code_cell(cell.source, metadata={"tags": tags}
                                                   if tags else {}))
    if converter.in_solution:
        raise UnknownMarkup(f"{md_path.name}: a solution-start has no solution-end")
    cells[1:1] = [intro_cell(md_path, values), install_cell(commit)]
    for number, cell in enumerate(cells):
        cell["id"] = f"cell-{number}"
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
        "deepres": {"book_values": values},
    })
    nbformat.validate(notebook)
    return notebook


def render(notebook):
    return nbformat.writes(notebook) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale notebooks")
    parser.add_argument("--executed", type=Path, default=EXECUTED,
                        help="the executed book's jupyter_execute folder")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the notebooks here instead of beside the chapters")
    args = parser.parse_args(argv)
    stale = []
    for md in chapters():
        target = (args.out or md.parent) / md.with_suffix(".ipynb").name
        try:
            values = glued_values(args.executed / "chapters" / target.name)
        except MissingBuild as error:
            raise SystemExit(str(error)) from None
        text = render(learner_notebook(md, values))
        if target.exists() and target.read_text() == text:
            continue
        stale.append(target.name)
        if not args.check:
            target.write_text(text)
    verb = "out of date" if args.check else "written"
    print(f"learner notebooks {verb}: {', '.join(map(str, stale)) or 'none'}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
