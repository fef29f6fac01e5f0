"""``make gpu-check`` in its dry mode: every section of the GPU check, run on the CPU with
the smoke budget's networks, so that the script a GPU will run does not rot where no
GPU is (CI has none)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def test_the_gpu_check_runs_every_section_on_the_cpu(tmp_path):
    result = subprocess.run([sys.executable, "-m", "devtools.gpu_check", "--dry",
                             "--out", str(tmp_path)], capture_output=True, text=True,
                            timeout=1200, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert report["dry"] and report["device_name"] == "CPU"
    expected = ["data", "networks", "syncs", "chapter 2", "command line", "resume", "ddp"]
    assert list(report["sections"]) == expected
    assert all(s["ok"] for s in report["sections"].values())
    networks = report["sections"]["networks"]["networks"]
    assert {r["chapter"] for r in networks} == set(range(1, 8))   # every chapter's networks
    assert all(r["ms_per_step"] > 0 and r["estimate_s"] > 0 for r in networks)
    markdown = (tmp_path / "gpu-check.md").read_text()
    assert "| networks | ok |" in markdown and "chapter 7: VGG-style" in markdown


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: make gpu-check runs")
def test_without_a_gpu_the_real_check_says_what_to_do():
    result = subprocess.run([sys.executable, "-m", "devtools.gpu_check"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "no CUDA GPU here" in result.stderr
