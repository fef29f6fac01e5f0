"""Pick a device and a compute budget, and say what was picked.

A *budget* is a named profile that sizes every experiment of the course:

* ``smoke``  - seconds; checks that a notebook runs end to end (numbers mean little).
* ``laptop`` - minutes on 2 CPU cores; Fashion-MNIST. The default without a CUDA GPU.
* ``gpu``    - CIFAR-10 at full size and the papers' CIFAR widths, with He et al.'s
  schedule shortened to 5,000 iterations (the book's Performance page estimates each
  chapter's time on a T4). The default on a CUDA GPU.
* ``paper``  - the same with He et al.'s full CIFAR schedule (64k iterations of batch
  128) for every chapter's networks: hours a chapter. Only when asked for.

Choose one with ``setup("laptop")`` in a chapter's first cell, or with the environment
variable ``DEEPRES_BUDGET``; an argument wins over the variable.
"""
import os
from dataclasses import dataclass, replace

import torch

from .. import cpu
from ..cpu import THREADS_ENV

ENV_VAR = "DEEPRES_BUDGET"
BOOK_BUDGET = "laptop"   # the budget the book's build trains its runs with (on a CPU)


@dataclass(frozen=True)
class Budget:
    name: str
    dataset: str            # "fashion-mnist" or "cifar10"
    train_size: int         # examples drawn (seeded) from the training set; 0 = all
    test_size: int          # examples drawn from the test set; 0 = all
    steps: int              # SGD iterations per training run
    eval_every: int         # evaluate on the test subset every this many steps
    batch_size: int
    seeds: tuple            # seeds for experiments repeated over seeds
    vgg_widths: tuple       # stage widths of chapter 1's small VGG-style networks
    resnet_widths: tuple    # stage widths of the CIFAR-style networks (paper: 16, 32, 64)
    resnet_image_size: int  # their input size (0 = the dataset's own)
    race_steps: int         # SGD iterations of each run of chapter 7's race


PROFILES = {
    "smoke": Budget("smoke", "fashion-mnist", train_size=1024, test_size=512, steps=20,
                    eval_every=10, batch_size=64, seeds=(0, 1), vgg_widths=(8, 16, 32),
                    resnet_widths=(4, 8, 16), resnet_image_size=14, race_steps=20),
    # laptop: 750 steps (1.6 epochs), and 200 for each run of the race. Four seeds, the
    # fewest with which the book's decision rule can call a network ahead (deepres.course.book)
    "laptop": Budget("laptop", "fashion-mnist", train_size=0, test_size=0, steps=750,
                     eval_every=250, batch_size=128, seeds=(0, 1, 2, 3), vgg_widths=(16, 32, 64),
                     resnet_widths=(8, 16, 32), resnet_image_size=14, race_steps=200),
    # gpu: race_steps 2,000 (5 epochs), so that chapter 7 fits a Colab session on a T4
    # (devtools/gpu_estimate.py prints each chapter's estimate)
    "gpu": Budget("gpu", "cifar10", train_size=0, test_size=0, steps=5000,
                  eval_every=1000, batch_size=128, seeds=(0, 1, 2, 3),
                  vgg_widths=(64, 128, 256), resnet_widths=(16, 32, 64),
                  resnet_image_size=0, race_steps=2000),
    "paper": Budget("paper", "cifar10", train_size=0, test_size=0, steps=64000,
                    eval_every=2000, batch_size=128, seeds=(0, 1, 2, 3),
                    vgg_widths=(64, 128, 256), resnet_widths=(16, 32, 64),
                    resnet_image_size=0, race_steps=64000),
}


def pick_device(verbose=True):
    """CUDA if there is one, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        device = torch.device("cuda")
        what = torch.cuda.get_device_name(0)
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        device, what = torch.device("mps"), "Apple GPU"
    else:
        device, what = torch.device("cpu"), f"{torch.get_num_threads()} CPU threads"
    if verbose:
        print(f"device: {device} ({what})")
    return device


def default_budget(device):
    """``gpu`` on a CUDA GPU; ``laptop`` elsewhere (CPU, and Apple's MPS, whose speed
    varies too much between machines for a CIFAR-10 default)."""
    return "gpu" if torch.device(device).type == "cuda" else "laptop"


def get_budget(name=None, device=None, verbose=True, **overrides):
    """The budget named ``name``, else ``$DEEPRES_BUDGET``, else the device's default.

    Keyword arguments override single fields, e.g. ``get_budget(steps=100)``.
    """
    name = name or os.environ.get(ENV_VAR) or None
    if name is None:
        name = default_budget(device if device is not None else pick_device(verbose=False))
    key = name.strip().lower()
    if key not in PROFILES:
        raise ValueError(
            f"Unknown budget {name!r}. Choose one of {', '.join(PROFILES)} "
            f"(argument or environment variable {ENV_VAR})."
        )
    budget = replace(PROFILES[key], **overrides)
    if verbose:
        print(f"budget: {budget.name} ({budget.dataset}, {budget.steps} steps of batch "
              f"{budget.batch_size}, seeds {budget.seeds})\n"
              f"        to change it: setup(\"smoke\"), setup(\"laptop\"), setup(\"gpu\") "
              f"or setup(\"paper\")")
    return budget


def setup(budget=None, verbose=True, book_runs=False):
    """The first cell of every chapter: seed, pick the device and the budget (the one
    named, else ``$DEEPRES_BUDGET``, else the device's default; with ``book_runs``, the
    budget of the book's own runs, ``deepres.course.book_runs``)."""
    torch.manual_seed(0)
    torch.set_flush_denormal(True)  # denormals made deep nets up to 3x slower on CPU
    cpu.check()                     # the kernels' instruction set, pinned (deepres/cpu.py)
    if os.environ.get(THREADS_ENV):  # the book's build: one thread, the same sums anywhere
        torch.set_num_threads(int(os.environ[THREADS_ENV]))
    device = pick_device(verbose)
    if book_runs and budget is None:
        budget = BOOK_BUDGET
    return device, get_budget(budget, device=device, verbose=verbose)
