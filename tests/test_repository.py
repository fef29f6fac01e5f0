"""One repository URL, right for any fork: _config.yml's, or the build's own."""
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from devtools import learner, repository

ROOT = Path(__file__).resolve().parents[1]

CONFIGURED = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    for name in ("DEEPRES_REPOSITORY_URL", "DEEPRES_REPOSITORY_BRANCH", "DEEPRES_BOOK_URL",
                 "GITHUB_ACTIONS", "GITHUB_REPOSITORY", "GITHUB_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)


def test_default_is_the_configured_repository():
    assert repository.repository_url() == CONFIGURED["url"].rstrip("/")
    assert repository.repository_branch() == CONFIGURED["branch"]


def test_a_github_actions_build_uses_its_own_repository(monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_REPOSITORY", "a-fork/hands-on")
    assert repository.repository_url() == "https://github.com/a-fork/hands-on"
    assert repository.book_url() == "https://a-fork.github.io/hands-on/"
    assert 'REPOSITORY = "https://github.com/a-fork/hands-on"' in learner.install_cell().source


def test_the_explicit_override_wins(monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_REPOSITORY", "a-fork/hands-on")
    monkeypatch.setenv("DEEPRES_REPOSITORY_URL", "https://github.com/Someone/Course/")
    monkeypatch.setenv("DEEPRES_REPOSITORY_BRANCH", "teaching")
    assert repository.repository_url() == "https://github.com/Someone/Course"
    assert repository.repository_branch() == "teaching"
    assert repository.book_url() == "https://someone.github.io/Course/"


def test_the_build_points_the_theme_and_the_colab_links_at_it(monkeypatch):
    monkeypatch.setenv("DEEPRES_REPOSITORY_URL", "https://github.com/a-fork/hands-on")
    config = SimpleNamespace(html_theme_options={"repository_url": CONFIGURED["url"],
                                                 "repository_branch": "main"})
    repository.point_at_the_builds_repository(config.html_theme_options)
    assert config.html_theme_options["repository_url"] == "https://github.com/a-fork/hands-on"
    assert repository.colab_url(config.html_theme_options["repository_url"], "main",
                                "chapters/01_vgg.ipynb") == (
        "https://colab.research.google.com/github/a-fork/hands-on/blob/main/chapters/01_vgg.ipynb")


@pytest.mark.parametrize("url", ["https://gitlab.com/a/b", "https://github.com/only-owner",
                                 "file:///tmp/repo"])
def test_colab_needs_a_github_repository(url):
    with pytest.raises(ValueError, match="GitHub URL"):
        repository.colab_url(url, "main", "chapters/01_vgg.ipynb")


def test_a_learner_notebook_fetches_the_books_runs_of_its_own_commit(monkeypatch):
    """The install cell points $DEEPRES_BOOK_RUNS at runs/ of the commit it installs, as
    GitHub serves it raw: a fork that publishes no site has them too."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("DEEPRES_REPOSITORY_URL", "https://github.com/someone/fork")
    cell = learner.install_cell(commit).source
    assert (f'"https://raw.githubusercontent.com/someone/fork/{commit}/runs/"') in cell
    assert repository.raw_url(commit, "runs/", "file:///srv/repo") == "/srv/repo/runs/"
    assert "runs" in repository.LIBRARY   # the pinned commit has the runs the notebook loads


def test_the_licenses_are_stated_where_a_reuser_looks():
    """MIT for the code, CC BY 4.0 for the text and figures: in the license files, the
    package's metadata, the README and the book's footer (tests/test_book.py checks the
    built pages)."""
    import tomllib
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "Creative Commons Attribution 4.0 International" in (ROOT / "LICENSE-TEXT").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    readme = (ROOT / "README.md").read_text()
    assert "(LICENSE)" in readme and "(LICENSE-TEXT)" in readme
    footer = yaml.safe_load((ROOT / "_config.yml").read_text())["html"]["extra_footer"]
    assert "creativecommons.org/licenses/by/4.0" in footer and "MIT License" in footer


def test_the_readme_links_the_published_book_and_colab():
    """The README starts with the reader: the book's address and a chapter in Colab, for
    the configured repository; a contributor's detail lives in CONTRIBUTING.md."""
    readme = (ROOT / "README.md").read_text()
    assert repository.book_url() in readme
    assert repository.colab_url(repository.repository_url(), repository.repository_branch(),
                                "chapters/01_vgg.ipynb") in readme
    assert "(CONTRIBUTING.md)" in readme and (ROOT / "CONTRIBUTING.md").is_file()
    assert readme.index("## Chapters") < readme.index("## The two commands") \
        < readme.index("## Contributing")
