"""The layers of CONTRIBUTING.md's "Layout", held by reading every import: the core
(deepres/ outside course/) imports neither the course nor the command line, the course
not the command line, and nothing of the library imports the development tools."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "deepres"


def imported(path):
    """The absolute names of the modules ``path`` imports (relative ones resolved)."""
    return imports(path.read_text(), ".".join(path.relative_to(ROOT).parts[:-1]))


def imports(source, package):
    """The absolute names that ``source``, a module of ``package``, imports."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] \
                if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names |= {module} | {f"{module}.{a.name}" for a in node.names}
    return names


def layer(path):
    parts = path.relative_to(LIBRARY).parts
    if parts[0] == "course":
        return "course"
    return "command line" if parts == ("run.py",) or parts == ("__init__.py",) else "core"


def within(name, packages):
    return any(name == p or name.startswith(p + ".") for p in packages)


FILES = sorted(LIBRARY.rglob("*.py"))
FORBIDDEN = {"core": ("deepres.course", "deepres.run", "devtools"),
             "course": ("deepres.run", "devtools"),
             "command line": ("devtools",)}


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_each_layer_imports_only_the_layers_below_it(path):
    wrong = sorted(n for n in imported(path) if within(n, FORBIDDEN[layer(path)]))
    assert not wrong, f"{path.relative_to(ROOT)} ({layer(path)}) imports {wrong}"


def test_the_reader_sees_every_layer():
    assert {layer(p) for p in FILES} == {"core", "course", "command line"}


def test_the_rule_catches_a_core_module_that_imports_the_course():
    names = imports("from ..course.budget import PROFILES\nimport devtools.fixtures\n"
                    "from .. import runcache\n", "deepres.models")
    assert layer(LIBRARY / "models" / "new.py") == "core"
    assert sorted(n for n in names if within(n, FORBIDDEN["core"])) == [
        "deepres.course.budget", "deepres.course.budget.PROFILES", "devtools.fixtures"]


def test_the_learners_wheel_holds_the_whole_library_and_no_devtools(tmp_path):
    """What `pip install` gives a learner (Colab installs the library from the repository):
    every module and data file of deepres/, and nothing of devtools/."""
    import subprocess
    import sys
    import zipfile
    import shutil
    source = tmp_path / "source"   # a clean copy: no build/ or egg-info left by another build
    shutil.copytree(LIBRARY, source / "deepres",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", str(source), "-w", str(tmp_path)], check=True,
                   capture_output=True)
    [wheel] = tmp_path.glob("deepres-*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("deepres/")}
    wanted = {str(p.relative_to(ROOT)) for p in LIBRARY.rglob("*")
              if p.suffix in (".py", ".json") and "__pycache__" not in p.parts}
    assert wanted <= shipped, sorted(wanted - shipped)
    assert not any(n.startswith("devtools/") for n in zipfile.ZipFile(wheel).namelist())
