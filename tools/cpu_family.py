"""Which family of numbers this machine's CPU gives the book.

The library pins PyTorch's CPU kernels to AVX2 (``deepres/cpu.py``). On the first machines
we measured, an AMD EPYC with AVX2 only and Intel Xeons with AVX-512, a seeded run then
gives the same numbers bit for bit. On an Intel Xeon with AMX (Sapphire Rapids class,
``amx_tile`` in /proc/cpuinfo), measured on 2026-12-01, the same pinned run gives other
numbers, and so do 69 of the book's numbers. The cause is not found yet. On that
machine, three training steps of the ResNet-20 give the same bits natively as under
valgrind, whose emulated CPU has neither AVX-512 nor AMX and Haswell's cache sizes: its
kernels do not choose by the CPU's features or caches, so the difference may come from
elsewhere in the machine (its system's libraries, say), and a family is named after the
machine it was seen on. Until the cause is found, the numbers come in
families, one per kind of machine, and this module tells them apart by one short run: the
laptop ResNet-20, seed 0, one thread, 40 steps, in a fresh process (about 8 s).

``tests/test_reproducible.py`` checks that this machine gives one family's figures;
``tools/learner.py`` records in each learner notebook the family of the machine that
made it, and ``tests/test_learner.py`` compares a notebook's numbers with a build's only
when both come from the same family.

    python tools/cpu_family.py     # prints this machine's family and its figures
"""
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# float.hex() of the last three per-step losses, then test and training error (torch 2.14.1)
FAMILIES = {
    # AMD EPYC, AVX2 only (measured first); Intel Xeon with AVX-512, pinned to AVX2
    "avx2": {"losses": ["0x1.dfea020000000p-1", "0x1.aff0e20000000p-1",
                        "0x1.e101920000000p-1"],
             "test_error": 0.3472, "train_error": 0.3366},
    # Intel Xeon with AMX (Sapphire Rapids class), pinned to AVX2
    "xeon-amx": {"losses": ["0x1.e076f40000000p-1", "0x1.ac1ff20000000p-1",
                            "0x1.d792800000000p-1"],
                 "test_error": 0.3423, "train_error": 0.3336},
}
TORCH = "2.14.1"   # the figures are those of this torch version

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
                  "kernels": torch.backends.cpu.get_cpu_capability(),
                  "torch": torch.__version__.split("+")[0]}))
"""


class RunFailed(RuntimeError):
    pass


def run(**env):
    """The reference run in a fresh process (the pins are read when torch first computes),
    with ``env`` added to the environment. Its figures, as a dict."""
    result = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, **env})
    if result.returncode != 0:
        raise RunFailed(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def family_of(figures):
    """The name of the family whose figures these are, or None."""
    keys = ("losses", "test_error", "train_error")
    return next((name for name, known in FAMILIES.items()
                 if all(figures[k] == known[k] for k in keys)), None)


@functools.lru_cache(maxsize=None)
def pinned_figures():
    """The reference run's figures on this machine, with the library's pins (run once a
    process: the tests and ``this_machine`` share it)."""
    return run()


@functools.lru_cache(maxsize=None)
def this_machine():
    """This machine's family: a name of FAMILIES; "unknown" for figures of no known
    family; "other-torch" for another torch version than the figures', whose numbers
    differ anyway; "other-cpu" off x86-64."""
    import platform
    import torch
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "other-cpu"
    if torch.__version__.split("+")[0] != TORCH:
        return "other-torch"
    return family_of(pinned_figures()) or "unknown"


if __name__ == "__main__":
    figures = run()
    print(json.dumps(figures))
    print("family:", family_of(figures) or "unknown (add it to FAMILIES in tools/cpu_family.py)")
