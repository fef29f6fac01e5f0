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


def test_the_build_trains_the_runs_first_and_the_chapters_load_them(book):
    """_ext/prefill.py: every run is trained (or found) before the chapters execute, so
    no chapter trains one of the book's runs itself; the Performance page says so."""
    log = book[1]
    assert "deepres.run --chapter 1 2 3 4 5 6 7 --jobs auto" in log
    said = re.search(r"(\d+) runs trained in .+ by (\d+) process\(es\)|every run is in", log)
    assert said, "the build's first step did not report what it trained"
    # chapter 3's exercise trains a block of the learner's own, chapter 8 its transfer runs
    for chapter in set(CHAPTERS[:7]) - {"chapters/03_residual"}:
        executed = (book[2].parent / "jupyter_execute" / f"{chapter}.ipynb").read_text()
        assert "not in the run cache; training" not in executed, chapter
    text = text_of(page(book, "chapters/performance"))
    assert re.search(r"\d+ runs were trained in .+ by \d+ process\(es\) of one thread each|"
                     r"[Ee]very run was already in the run cache", text)
