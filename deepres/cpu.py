"""The same numbers on every x86-64 CPU with AVX2: the kernels' instruction set, pinned.

PyTorch picks its CPU kernels by the instruction set of the machine (AVX-512 on some of
ours, AVX2 on others), and kernels of different widths add up in a different order, so
the last bits of every sum differ. After a few hundred SGD steps a seeded run gives
other numbers. Measured: laptop ResNet-20, seed 0, one thread, 40 steps: 34.63% test
error with this machine's AVX-512 kernels, 34.72% pinned to AVX2 (the same as on a
machine that has only AVX2, bit for bit: ``tests/test_reproducible.py``).

Three libraries choose kernels, each with its own switch, each read once, when it first
runs a kernel (not when torch is imported, so setting them here, on importing the
library, is early enough as long as nothing was computed before):

* ATen, PyTorch's own kernels (element-wise, reductions, BatchNorm): ``ATEN_CPU_CAPABILITY``;
* oneDNN, the convolutions: ``ONEDNN_MAX_CPU_ISA``;
* MKL, the matrix products of linear layers: ``MKL_CBWR`` (conditional numerical
  reproducibility).

Every process of the course imports this library before it computes (the chapters, the
command line, its training processes, the tests, the book build's kernels inherit the
variables), so this is the one place where the pins are set. A variable already set
wins; ``DEEPRES_NATIVE_CPU=1`` leaves all three alone (the machine's fastest kernels,
and numbers of its own). The pins only concern the CPU: on a GPU they change nothing.
"""
import contextlib
import os
import platform

PINS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
NATIVE_ENV = "DEEPRES_NATIVE_CPU"


def pin():
    """Set the three variables (those not set already) on x86-64, unless asked not to."""
    if os.environ.get(NATIVE_ENV, "0") not in ("", "0") or \
            platform.machine().lower() not in ("x86_64", "amd64"):
        return
    for name, value in PINS.items():
        os.environ.setdefault(name, value)


def capability():
    """The instruction set of the kernels PyTorch runs here, e.g. 'AVX2' or 'AVX512'."""
    import torch
    return torch.backends.cpu.get_cpu_capability()


def check():
    """Say so if the pins came too late: something computed on the CPU before the library
    was imported, and PyTorch chose its kernels then. Returns the kernels' instruction set."""
    pinned = os.environ.get("ATEN_CPU_CAPABILITY", "").upper()
    chosen = capability()
    if pinned and chosen not in (pinned, "DEFAULT"):
        print(f"note: PyTorch runs {chosen} kernels, not {pinned}: it chose them before the "
              "course library was imported. This notebook's numbers may differ from the "
              "book's in the last digits. To get the book's: restart, and import deepres "
              "before computing anything.")
    return chosen


def kernels():
    """What decides which CPU kernels run: ATen's instruction set and the three switches
    as they are set (part of every CPU run's cache key)."""
    return [capability()] + [f"{name}={os.environ.get(name, '')}" for name in PINS]


@contextlib.contextmanager
def num_threads(n):
    """PyTorch's CPU thread count set to ``n`` inside the block, restored after it (None:
    left as it is)."""
    import torch
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
