"""Make the learner's notebooks: chapters/NN_name.md -> chapters/NN_name.ipynb.

A learner notebook is the chapter without its solutions, with the MyST-only markup
turned into plain Markdown that Colab and Jupyter render, and with a first cell that
installs the course library where it is missing (Colab). Run ``python tools/learner.py``
after changing a chapter; ``--check`` only reports notebooks that are out of date.
"""
import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml
from pybtex.database import parse_file

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(`{3,}|:{3,})\{([\w:-]+)\}\s*(.*)$")
ROLE = re.compile(r"\{([\w:-]+)\}`([^`]*)`")
ADMONITIONS = {"note", "tip", "warning", "important", "hint", "caution", "attention",
               "admonition", "seealso"}


class UnknownMarkup(ValueError):
    pass


def repository_url():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"].rstrip("/")


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

    def cite(self, keys):
        parts = []
        for key in (k.strip() for k in keys.split(",")):
            names = [" ".join(p.last_names) for p in self._names(key)]
            who = names[0] if len(names) == 1 else (
                f"{names[0]} & {names[1]}" if len(names) == 2 else f"{names[0]} et al.")
            parts.append(f"{_plain(who)}, {self.entries[key].fields['year']}")
            if key not in self.cited:
                self.cited.append(key)
        return "(" + "; ".join(parts) + ")"

    def reference_list(self):
        lines = []
        for key in self.cited:
            entry = self.entries[key]
            names = ", ".join(" ".join(p.first_names + p.middle_names + p.last_names)
                              for p in self._names(key))
            venue = (entry.fields.get("booktitle") or entry.fields.get("journal")
                     or entry.fields.get("institution") or "")
            arxiv = f" arXiv:{entry.fields['eprint']}." if "eprint" in entry.fields else ""
            venue = f" *{_plain(venue)}*." if venue else ""
            lines.append(f"- {_plain(names)} ({entry.fields['year']}). "
                         f"{_plain(entry.fields['title'])}.{venue}{arxiv}")
        return "\n".join(lines)


def _plain(text):
    """BibTeX text to plain text: accents and braces."""
    for tex, char in ((r"{\'a}", "á"), (r'{\"u}', "ü"), (r'{\"o}', "ö"), (r"\'a", "á")):
        text = text.replace(tex, char)
    return text.replace("{", "").replace("}", "")


class Converter:
    """Turns the chapter's cells into the learner's cells, one markdown line at a time."""

    def __init__(self, bib):
        self.bib = bib
        self.in_solution = False  # inside {solution-start} ... {solution-end}, across cells
        self.exercises = 0

    def roles(self, line):
        def replace(match):
            role, text = match.groups()
            if role == "footcite":
                return self.bib.cite(text)
            if role.startswith("glue"):
                return f"`{text.split(':')[0]}`"  # the value is printed where it was computed
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
            body, i = self._block(lines, i + 1, fence)
            out.extend(self.directive(name, argument, body))
        return "\n".join(out).strip()

    @staticmethod
    def _block(lines, i, fence):
        """The lines of a directive up to its closing fence, options dropped."""
        body = []
        while i < len(lines) and lines[i].strip() != fence:
            if not (body == [] and re.match(r"^:[\w-]+:", lines[i])):
                body.append(lines[i])
            i += 1
        return body, i + 1

    def directive(self, name, argument, body):
        if name == "solution-start":
            self.in_solution = True
            return []
        if name == "solution-end":
            self.in_solution = False
            return []
        if self.in_solution or name in ("solution", "colab-link", "exercise-end"):
            return []
        if name in ("exercise", "exercise-start"):
            self.exercises += 1
            title = f"### Exercise {self.exercises}" + (f": {argument}" if argument else "")
            return [title, ""] + [self.roles(line) for line in body]
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


def install_cell():
    url = repository_url()
    return nbformat.v4.new_code_cell(
        "# Installs this course's library where it is missing (as in Colab).\n"
        "# On your own machine, `make book` has installed it already.\n"
        "import importlib.util, subprocess, sys\n"
        "if importlib.util.find_spec(\"deepres\") is None:\n"
        "    subprocess.check_call([sys.executable, \"-m\", \"pip\", \"install\", \"--quiet\",\n"
        f"                           \"deepres @ git+{url}\"])")


def learner_notebook(md_path):
    """The learner's notebook of one chapter, as an nbformat notebook."""
    chapter = jupytext.read(md_path)
    converter = Converter(Bibliography())
    cells = []
    for cell in chapter.cells:
        if cell.cell_type == "markdown":
            text = converter.markdown(cell.source)
            if text:
                cells.append(nbformat.v4.new_markdown_cell(text))
        elif not converter.in_solution:
            tags = cell.metadata.get("tags", [])
            cells.append(nbformat.v4.new_code_cell(cell.source, metadata={"tags": tags}
                                                   if tags else {}))
    if converter.in_solution:
        raise UnknownMarkup(f"{md_path.name}: a solution-start has no solution-end")
    intro = nbformat.v4.new_markdown_cell(
        f"*The learner's version of this chapter of **Deep Residual Networks, Hands-On** "
        f"({repository_url()}). The solutions are removed: write your code where it says "
        f"`YOUR CODE HERE`, then run the check cell below it.*")
    cells[1:1] = [intro, install_cell()]
    for number, cell in enumerate(cells):
        cell["id"] = f"cell-{number}"
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    })
    nbformat.validate(notebook)
    return notebook


def render(notebook):
    return nbformat.writes(notebook) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale notebooks")
    args = parser.parse_args(argv)
    stale = []
    for md in chapters():
        target = md.with_suffix(".ipynb")
        text = render(learner_notebook(md))
        if target.exists() and target.read_text() == text:
            continue
        stale.append(target.relative_to(ROOT))
        if not args.check:
            target.write_text(text)
    verb = "out of date" if args.check else "written"
    print(f"learner notebooks {verb}: {', '.join(map(str, stale)) or 'none'}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
