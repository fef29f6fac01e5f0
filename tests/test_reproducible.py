"""A seeded run gives the book's numbers on every x86-64 CPU with AVX2, Intel or AMD.

The library pins the kernels (``deepres/cpu.py``): ATen and oneDNN to AVX2, MKL to its
COMPATIBLE branch, the one MKL promises gives the same results on Intel and non-Intel
CPUs. The reference run (the laptop ResNet-20, seed 0, one thread, 40 steps, in a fresh
process) must give the figures below, bit for bit, on any such machine: no skip, no
expected failure. Seen so far on an Intel Xeon (Ice Lake-SP, AVX-512, no AMX) and an
Intel Xeon with AMX (``../shared/numerics``: their per-operation fingerprints agree on
all 5,833 operations). The second test shows that the first one can fail.
"""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepres.cpu import PINS

ROOT = Path(__file__).resolve().parents[1]
TORCH = "2.14.1"   # the pinned torch (requirements.txt): the figures are its numbers
# float.hex() of the last three per-step losses, then the test and training error
FIGURES = {"losses": ["0x1.e5faa40000000p-1", "0x1.ae8cbc0000000p-1", "0x1.d9c4ba0000000p-1"],
           "test_error": 0.3467, "train_error": 0.3378}

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64")
    or torch.__version__.split("+")[0] != TORCH,
    reason=f"the figures are those of x86-64 CPUs with torch {TORCH} (requirements.txt)")

RUN = """
import json, torch, deepres
from deepres.course.budget import get_budget
from deepres.course.experiments import cifar_data
from deepres.models.cifar import resnet_cifar
from deepres.training import train
budget = get_budget("laptop", verbose=False)
run = train(lambda: resnet_cifar(20, widths=budget.resnet_widths, in_channels=1),
            cifar_data(budget), steps=40, eval_every=40, seed=0, use_cache=False,
            progress=False, threads=1)
print(json.dumps({"losses": [x.hex() for x in run.history["loss"][-3:]],
                  "test_error": run.test_error, "train_error": run.train_error,
                  "kernels": torch.backends.cpu.get_cpu_capability()}))
"""


def reference_run(**env):
    """The reference run in a fresh process (the pins are read when torch first computes),
    with ``env`` added to the environment."""
    result = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def figures(got):
    return {k: got[k] for k in FIGURES}


def test_a_seeded_run_gives_the_books_numbers_on_this_cpu():
    got = reference_run()
    assert got["kernels"] == "AVX2"
    assert figures(got) == FIGURES, (
        f"this CPU gives other numbers than the book's: {figures(got)}. Compare it "
        f"operation by operation: ../shared/numerics/op_hashes.py (its README)")


def test_without_the_mkl_pin_an_intel_cpu_gives_other_numbers():
    """MKL's AVX2 branch (the library's earlier pin) computes the classifier's product
    otherwise on Intel CPUs: the test above tells it apart."""
    vendor = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if "GenuineIntel" not in vendor:
        pytest.skip("MKL's AVX2 branch is Intel's own; elsewhere it falls back to another")
    got = reference_run(MKL_CBWR="AVX2")
    assert PINS["MKL_CBWR"] == "COMPATIBLE"
    assert figures(got) != FIGURES
