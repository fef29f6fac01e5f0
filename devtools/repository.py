"""Where the book and its notebooks live: one repository URL for every link.

The URL is ``repository.url`` in ``_config.yml``, unless the build says otherwise:

1. ``DEEPRES_REPOSITORY_URL`` (and ``DEEPRES_REPOSITORY_BRANCH``), set by hand;
2. in a GitHub Actions build, the repository the build runs in (``GITHUB_SERVER_URL``
   and ``GITHUB_REPOSITORY``), so that a fork publishes links to itself.

The Colab links, the launch button, the learner notebooks' install cell and their links
to the book's solutions are all built from it.
"""
import os
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COLAB = "https://colab.research.google.com/github"
GITHUB = "https://github.com/"


def _config():
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]


def repository_url(configured=None):
    """The repository's URL: the environment's override, else ``configured`` (default:
    ``_config.yml``'s)."""
    if os.environ.get("DEEPRES_REPOSITORY_URL"):
        return os.environ["DEEPRES_REPOSITORY_URL"].rstrip("/")
    if os.environ.get("GITHUB_ACTIONS") == "true" and os.environ.get("GITHUB_REPOSITORY"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        return f"{server}/{os.environ['GITHUB_REPOSITORY']}"
    return (configured or _config()["url"]).rstrip("/")


def repository_branch(configured=None):
    return os.environ.get("DEEPRES_REPOSITORY_BRANCH") or configured or _config()["branch"]


def github_path(url):
    """``owner/name`` of a GitHub URL; a ValueError for anything else."""
    if not url.startswith(GITHUB) or url[len(GITHUB):].count("/") != 1:
        raise ValueError(f"the repository must be a GitHub URL "
                         f"(https://github.com/OWNER/NAME), got {url!r}")
    return url[len(GITHUB):]


def colab_url(url, branch, path):
    """Colab's address for the notebook at ``path`` in the repository."""
    return f"{COLAB}/{github_path(url)}/blob/{branch}/{path}"


def book_url(url=None):
    """Where GitHub Pages publishes the book of the repository: ``DEEPRES_BOOK_URL``,
    else https://OWNER.github.io/NAME/."""
    if os.environ.get("DEEPRES_BOOK_URL"):
        return os.environ["DEEPRES_BOOK_URL"].rstrip("/") + "/"
    owner, name = github_path(url or repository_url()).split("/")
    return f"https://{owner.lower()}.github.io/{name}/"


def raw_url(commit, path, url=None):
    """The address of the file or folder ``path`` of the repository at ``commit``, as
    GitHub serves it raw (a learner notebook fetches the book's runs from there); for a
    repository on this machine (``file://``, the tests' stand-in), its folder's ``path``."""
    url = url or repository_url()
    if url.startswith("file://"):
        return f"{url[len('file://'):]}/{path}"
    return f"https://raw.githubusercontent.com/{github_path(url)}/{commit}/{path}"


# what a learner notebook's install cell installs: the library, and the runs it loads
LIBRARY = ("deepres", "pyproject.toml", "runs")


def library_commit():
    """The commit whose library the learner notebooks install: ``DEEPRES_REPOSITORY_COMMIT``,
    else the last commit that changed the library (``deepres/``, ``pyproject.toml``) or the
    book's runs (``runs/``), so
    that the notebooks change only when the library does. A test checks that the library
    at that commit is the working tree's."""
    if os.environ.get("DEEPRES_REPOSITORY_COMMIT"):
        return os.environ["DEEPRES_REPOSITORY_COMMIT"]
    import subprocess
    try:
        found = subprocess.run(["git", "log", "-1", "--format=%H", "--", *LIBRARY], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as error:
        raise RuntimeError(f"the learner notebooks pin the library's commit, and git could "
                           f"not tell it ({error}); set DEEPRES_REPOSITORY_COMMIT") from None
    if not found:
        raise RuntimeError("no commit of the library found in this repository's history; "
                           "set DEEPRES_REPOSITORY_COMMIT")
    return found


def point_at_the_builds_repository(options):
    """Point the theme's buttons (and so the Colab links), ``html_theme_options``, at the
    build's repository."""
    options["repository_url"] = repository_url(options.get("repository_url"))
    options["repository_branch"] = repository_branch(options.get("repository_branch"))
