"""The same seeded run gives the same numbers on every CPU of one family.

The library pins the kernels' instruction set to AVX2 (``deepres/cpu.py``). The figures of
the reference run (``tools/cpu_family.py``: the laptop ResNet-20, seed 0, one thread, 40
steps, torch 2.14.1) were measured on an AMD EPYC with AVX2 only; an Intel Xeon with
AVX-512 gives them bit for bit with the pins, and other figures without them (the second
test shows that the first one can fail). An Intel Xeon with AMX gives other figures even
with the pins, a family of its own whose cause is not found yet: the test says so (xfail)
on such a machine, and fails on a CPU whose figures belong to no known family.
"""
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepres.cpu import PINS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import cpu_family  # noqa: E402

pytestmark = [
    pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                       reason="the figures are for x86-64 CPUs"),
    pytest.mark.skipif(torch.__version__.split("+")[0] != cpu_family.TORCH,
                       reason=f"the figures were measured with torch {cpu_family.TORCH}"),
]


def reference_run(**env):
    try:
        return cpu_family.run(**env) if env else cpu_family.pinned_figures()
    except cpu_family.RunFailed as error:
        if "DataNotFound" in str(error):
            pytest.skip("needs the real Fashion-MNIST (make data)")
        raise


def test_a_seeded_run_gives_the_numbers_of_an_avx2_only_machine():
    got = reference_run()
    assert got["kernels"] == "AVX2"
    family = cpu_family.family_of(got)
    if family == "xeon-amx":
        pytest.xfail("this Intel Xeon with AMX gives other numbers than an AVX2-only "
                     "machine even with the kernels pinned to AVX2 (a known family: "
                     "tools/cpu_family.py)")
    assert family == "avx2", f"figures of no known family: {got}"


def test_the_families_are_told_apart():
    figures = {name: tuple(known["losses"]) for name, known in cpu_family.FAMILIES.items()}
    assert len(set(figures.values())) == len(figures)
    for name, known in cpu_family.FAMILIES.items():
        assert cpu_family.family_of(known) == name
    assert cpu_family.family_of({**cpu_family.FAMILIES["avx2"], "test_error": 0.5}) is None


def test_without_the_pins_an_avx512_machine_gives_other_numbers():
    unpinned = {k: v for k, v in os.environ.items() if k not in PINS}
    native = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
        capture_output=True, text=True, check=True, env=unpinned).stdout.strip()
    if native != "AVX512":
        pytest.skip(f"this CPU's own kernels are {native}: nothing to tell apart")
    got = reference_run(DEEPRES_NATIVE_CPU="1", ATEN_CPU_CAPABILITY="",
                        ONEDNN_MAX_CPU_ISA="", MKL_CBWR="")
    assert got["kernels"] == "AVX512"
    assert cpu_family.family_of(got) is None
