"""The publish workflow (.github/workflows/publish.yml): actionlint passes, and it does
what the book needs: build on every push to main with the laptop budget and the torch of
the committed runs, make the learner notebooks, deploy to GitHub Pages."""
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
    broken.write_text(text.replace("run: make book", "run: make book ${{ github.shaa }}"))
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
    assert "-m devtools.learner --out _build/html/notebooks" in runs
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert deploy["needs"] == "build"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")
    assert flow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}


def test_the_build_installs_the_torch_of_the_committed_runs_and_keeps_no_cache():
    """The committed runs are keyed by the torch version of requirements.txt: the build
    installs that one (through `make book`), and needs no run cache between builds."""
    flow = yaml.safe_load(WORKFLOW.read_text())
    build = flow["jobs"]["build"]
    assert not any(s.get("uses", "").startswith("actions/cache@") for s in build["steps"])
    assert "DEEPRES_CACHE" not in build["env"]
    assert "pip install" not in "\n".join(s.get("run", "") for s in build["steps"])
