"""The same seeded run gives the same numbers on every x86-64 CPU with AVX2.

The reference below was measured on a machine that has AVX2 but no AVX-512 (an AMD EPYC,
2 cores; ``torch.backends.cpu.get_cpu_capability()`` said AVX2), with torch 2.14.1: the
laptop ResNet-20, seed 0, one thread, 40 steps. The library pins the kernels'
instruction set to AVX2 (``deepres/cpu.py``), so a machine with AVX-512 must give the
same figures bit for bit; without the pins it does not (the second test shows that the
first one can fail).
"""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# float.hex() of the last three per-step losses, then test and training error
REFERENCE = {"torch": "2.14.1",
             "losses": ["0x1.dfea020000000p-1", "0x1.aff0e20000000p-1", "0x1.e101920000000p-1"],
             "test_error": 0.3472, "train_error": 0.3366}

RUN = """
import json, torch, deepres
from deepres.budget import get_budget
from deepres.experiments import cifar_data
from deepres.models.cifar import resnet_cifar
from deepres.training import train
torch.set_num_threads(1)
torch.set_flush_denormal(True)
budget = get_budget("laptop", verbose=False)
data = cifar_data(budget)
run = train(lambda: resnet_cifar(20, widths=budget.resnet_widths, in_channels=1), data,
            steps=40, eval_every=40, seed=0, use_cache=False, progress=False)
print(json.dumps({"losses": [x.hex() for x in run.history["loss"][-3:]],
                  "test_error": run.test_error, "train_error": run.train_error,
                  "kernels": torch.backends.cpu.get_cpu_capability()}))
"""

pytestmark = [
    pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                       reason="the reference is for x86-64 CPUs"),
    pytest.mark.skipif(torch.__version__.split("+")[0] != REFERENCE["torch"],
                       reason=f"the reference was measured with torch {REFERENCE['torch']}"),
]


def reference_run(**env):
    """The reference run in a fresh process (the pins are read when torch first computes)."""
    result = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, **env})
    if "DataNotFound" in result.stderr:
        pytest.skip("needs the real Fashion-MNIST (make data)")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_seeded_run_gives_the_numbers_of_an_avx2_only_machine():
    got = reference_run()
    assert got["kernels"] == "AVX2"
    assert {k: got[k] for k in ("losses", "test_error", "train_error")} == \
        {k: REFERENCE[k] for k in ("losses", "test_error", "train_error")}


def test_without_the_pins_an_avx512_machine_gives_other_numbers():
    native = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
        capture_output=True, text=True, check=True).stdout.strip()
    if native != "AVX512":
        pytest.skip(f"this CPU's own kernels are {native}: nothing to tell apart")
    got = reference_run(DEEPRES_NATIVE_CPU="1", ATEN_CPU_CAPABILITY="",
                        ONEDNN_MAX_CPU_ISA="", MKL_CBWR="")
    assert got["kernels"] == "AVX512"
    assert got["losses"] != REFERENCE["losses"]
