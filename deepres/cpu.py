"""The same numbers on every x86-64 CPU with AVX2, Intel or AMD: the kernels pinned.

ATen and oneDNN pick CPU kernels by the instruction set, MKL also by the vendor, and
kernels that add up in another order give other last bits. ``pin()``, run when the
library is imported, sets ``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA`` and ``MKL_CBWR``
(a variable already set wins; ``DEEPRES_NATIVE_CPU=1`` leaves all three alone).
CONTRIBUTING.md says why each; ``tests/test_reproducible.py`` holds the figures.
"""
import contextlib
import os
import platform

PINS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "COMPATIBLE"}
NATIVE_ENV = "DEEPRES_NATIVE_CPU"
THREADS_ENV = "DEEPRES_THREADS"   # CPU threads of every computation (1: the same sums anywhere)


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


@contextlib.contextmanager
def flush_denormal(on):
    """Denormal floats flushed to zero (``on``) or not inside the block, restored after it.
    Flushing changes the numbers of a run (and made deep plain nets up to 3x faster)."""
    import torch
    before = flushing_denormal()
    torch.set_flush_denormal(on)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def flushing_denormal():
    """Whether PyTorch flushes denormal floats to zero now (it has no getter: a denormal
    multiplied by one comes out as zero when it does)."""
    import torch
    return (torch.tensor([1e-39]) * 1.0).item() == 0.0
