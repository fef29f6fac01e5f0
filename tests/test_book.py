"""The book builds from scratch with zero warnings, executing every chapter, and the
published pages have what a reader needs: outputs, numbers, citations, exercises with
hidden solutions, the quiz, and working Colab links."""
import html
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
PAGES = [TOC["root"]] + [c["file"] for part in TOC["parts"] for c in part["chapters"]]
CHAPTERS = [p for p in PAGES if re.match(r"chapters/\d\d_", p)]


def page(book, name):
    return (book[2] / f"{name}.html").read_text()


def text_of(markup):
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup)))


# ipykernel 7 logs this at every kernel start: the kernel talks to the build over
# localhost TCP. It is not a warning about the book. (ipykernel 6.29, which does not log
# it, hung intermittently here: a lost wake-up in its event loop.)
KERNEL_TRANSPORT_NOTICE = "[IPKernelApp] WARNING | Kernel is running over TCP without encryption."


def test_build_exits_0_with_zero_warnings(book):
    code, log, _ = book
    assert code == 0, log[-5000:]
    warnings = [line for line in log.splitlines()
                if "WARNING" in line and not line.startswith(KERNEL_TRANSPORT_NOTICE)]
    assert warnings == []
    assert "build succeeded." in log


@pytest.mark.parametrize("name", PAGES)
def test_every_page_is_built(book, name):
    assert (book[2] / f"{name}.html").is_file()


@pytest.mark.parametrize("name", PAGES)
def test_every_page_states_the_licenses(book, name):
    markup = page(book, name)
    assert "creativecommons.org/licenses/by/4.0" in markup and "MIT License" in markup


# the pages with code (the intro has none: the machinery is on "Running the course")
CODE_PAGES = [p for p in PAGES if "{code-cell}" in (ROOT / f"{p}.md").read_text()]


def test_the_pages_with_code_are_the_pages_but_the_intro():
    assert CODE_PAGES == [p for p in PAGES if p != TOC["root"]]


@pytest.mark.parametrize("name", CODE_PAGES)
def test_every_notebook_page_was_executed(book, name):
    markup = page(book, name)
    assert "cell_output" in markup
    assert not re.search(r'class="[^"]*output traceback', markup)  # no error output


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_has_the_template_anatomy(book, name):
    markup = page(book, name)
    text = text_of(markup)
    for heading in ("Learning goals", "Exercises", "Self-check quiz", "Summary", "References"):
        assert heading in text, heading
    exercises = len(re.findall(r'class="exercise (with-code )?admonition"', markup))
    assert exercises >= 3
    # every exercise's solution is on the page but folded away
    assert markup.count('class="solution dropdown admonition"') == exercises
    assert 'class="footnote' in markup  # citations resolved to the page's bibliography
    assert "jupyterquiz" in markup or "jq-" in markup  # the quiz's script and styles
    assert re.search(r"<img[^>]+src=\"[^\"]+\.png\"", markup)  # figures rendered


@pytest.mark.parametrize("name", CHAPTERS)
def test_colab_link_opens_the_committed_learner_notebook(book, name):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]["url"].removeprefix("https://github.com/")
    links = set(re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', page(book, name)))
    expected = (f"https://colab.research.google.com/github/{repo}/blob/"
                f"{config['repository']['branch']}/{name}.ipynb")
    assert expected in links
    assert (ROOT / f"{name}.ipynb").is_file()


def test_vgg_text_quotes_numbers_the_page_computed(book):
    text = text_of(page(book, "chapters/01_vgg"))
    assert re.search(r"Our VGG-16 has 138,357,544 parameters, exactly torchvision.s 138,357,544", text)
    assert re.search(r"ends with \d+\.\d\d % test error", text)


def test_performance_page_lists_every_chapter_and_the_loops_ratio(book):
    text = text_of(page(book, "chapters/performance"))
    for name in CHAPTERS:
        assert Path(name).name in text
    for model in ("plain-20", "ResNet-20", "DenseNet-BC-40"):
        assert model in text
    assert re.search(r"ran at \d\.\d\d to \d\.\d\d times the speed", text)


def test_the_build_trains_nothing(book):
    """Every run the book shows is committed in runs/ (``make runs``): the build's first
    step (_ext/prefill.py) finds every one, and no page trains one, not chapter 3's
    exercise nor chapter 8's transfer runs; the Performance page says so."""
    log = book[1]
    assert "deepres.run --chapter 1 2 3 4 5 6 7 8 --jobs auto" in log
    assert "every run is in" in log, "the build's first step trained runs: run `make runs`"
    for chapter in CHAPTERS + ["chapters/performance"]:
        executed = (book[2].parent / "jupyter_execute" / f"{chapter}.ipynb").read_text()
        assert "not in the run cache; training" not in executed, (
            f"{chapter} trained a run that runs/ does not hold: run `make runs`")
    text = text_of(page(book, "chapters/performance"))
    assert re.search(r"[Ee]very run the book shows was already trained", text)
