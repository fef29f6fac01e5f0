"""The publish workflow (.github/workflows/publish.yml): actionlint passes, and it does
what the book needs: build on every push to main with the laptop budget, keep the run
cache keyed on the library, make the learner notebooks, deploy to GitHub Pages."""
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "publish.yml"
ACTIONLINT = Path(sys.executable).with_name("actionlint")


def actionlint(path):
    return subprocess.run([str(ACTIONLINT), "-no-color", str(path)], capture_output=True,
                          text=True, cwd=ROOT)


def test_actionlint_passes():
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    text = WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest", 1)
    broken.write_text(text.replace("${{ github.sha }}", "${{ github.shaa }}"))
    result = actionlint(broken)
    assert result.returncode != 0
    assert "runs_on" in result.stdout and "shaa" in result.stdout


def test_workflow_builds_on_push_and_deploys_to_pages():
    flow = yaml.safe_load(WORKFLOW.read_text())
    triggers = flow[True]                     # YAML reads the key "on" as True
    assert triggers["push"]["branches"] == ["main"]
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    assert build["env"]["DEEPRES_BUDGET"] == "laptop"
    steps = build["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    uses = [s.get("uses", "") for s in steps]
    assert "make book" in runs
    assert "tools/learner.py --out _build/html/notebooks" in runs
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert deploy["needs"] == "build"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")
    assert flow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}


def test_run_cache_is_keyed_on_the_library_files_that_decide_a_run():
    flow = yaml.safe_load(WORKFLOW.read_text())
    cache = next(s for s in flow["jobs"]["build"]["steps"]
                 if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == "_build/runcache"
    assert flow["jobs"]["build"]["env"]["DEEPRES_CACHE"].endswith("/_build/runcache")
    # the same files as deepres.training._library_hash
    from deepres.training import _library_hash
    import inspect
    source = inspect.getsource(_library_hash)
    for name in ("training.py", "data.py", "models"):
        assert name in source and name in cache["with"]["key"]
    assert cache["with"]["restore-keys"].strip() in cache["with"]["key"]
