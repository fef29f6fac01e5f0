"""Estimate how long each chapter's training takes with the `gpu` budget, from FLOPs.

No GPU is lent to this project, so this is arithmetic, not a measurement: the training
FLOPs of every run a chapter makes (3 x the forward pass per training image, the
backward pass counted as twice the forward; plus the evaluations), divided by a
throughput. On a real GPU the notebooks print their own estimate, from timed steps.

    python tools/gpu_estimate.py [TFLOPS]

TFLOPS is the effective training throughput to assume. By default it is derived from a
published measurement on a GPU of the T4's generation (Turing): Lambda Labs trained
David Page's ResNet-9 on CIFAR-10 for 24 epochs in 131 s on an RTX 2080 Ti, in fp16
("ResNet9: train to 94% CIFAR10 accuracy in 100 seconds with a single Turing GPU").
Its FLOPs, counted here, give the 2080 Ti's effective throughput on a CIFAR ResNet; a T4
is taken to sustain T4_SHARE of it (40 against 68 streaming multiprocessors, and lower
clocks under its 70 W limit: an assumption, not a measurement). The networks are the
chapters' own, built with the library and the budget's widths; a chapter that reuses
another's runs through the run cache in the book is counted in full, as in a fresh
Colab runtime.
"""
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from deepres.budget import PROFILES  # noqa: E402
from deepres.experiments import (RACE_SEEDS, bottleneck_networks,  # noqa: E402
                                 densenet_networks, race_budget, race_networks,
                                 resnext_networks, vgg_networks)
from deepres.measure import count_flops  # noqa: E402
from deepres.models import PreActBlock, plain, resnet_cifar  # noqa: E402
from deepres.training import TRAIN_EVAL_SIZE, n_evaluations  # noqa: E402


CIFAR10 = SimpleNamespace(shape=(3, 32, 32), classes=tuple(range(10)))  # what the nets see


def chapter_networks(b):
    """Each chapter's networks for budget ``b``, as the chapters build them (CIFAR-10),
    with the budget each trains under (the budget's own, or the race's) and how many
    seeds (chapter 7: its pre-activation networks and its race; the ResNet-56 and
    plain-56 it studies are chapter 3's)."""
    cifar = [(build, depth) for build in (plain, resnet_cifar) for depth in (20, 56)]
    race, seeds = race_budget(b), len(b.seeds)
    return {
        "1 VGG": [(make(), b, seeds) for make in vgg_networks(b, CIFAR10).values()],
        "2 degradation": [(plain(d, widths=b.resnet_widths), b, seeds) for d in (20, 56)],
        "3 residual": [(build(d, widths=b.resnet_widths), b, seeds) for build, d in cifar],
        "4 bottleneck": [(make(), b, seeds)
                         for make in bottleneck_networks(b, CIFAR10).values()],
        "5 ResNeXt": [(make(), b, seeds) for make in resnext_networks(b, CIFAR10).values()],
        "6 DenseNet": [(make(), b, seeds) for make in densenet_networks(b, CIFAR10).values()],
        "7 why": [(resnet_cifar(56, widths=b.resnet_widths, block=PreActBlock,
                                final_norm=True), b, seeds)]
                 + [(make(), race, len(RACE_SEEDS))
                    for make in race_networks(b, CIFAR10).values()],
    }


T4_SHARE = 0.36  # (40 SMs x ~1.1 GHz under load) / (68 SMs x ~1.8 GHz): an assumption


def resnet9():
    """David Page's DAWNBench ResNet-9 (the network of the published measurement)."""
    def block(c_in, c_out, pool=False):
        layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                  nn.ReLU()]
        return layers + ([nn.MaxPool2d(2)] if pool else [])

    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.body = nn.Sequential(*block(c, c), *block(c, c))

        def forward(self, x):
            return x + self.body(x)

    return nn.Sequential(*block(3, 64), *block(64, 128, pool=True), Residual(128),
                         *block(128, 256, pool=True), *block(256, 512, pool=True),
                         Residual(512), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                         nn.Linear(512, 10))


def reference_tflops(seconds=131, epochs=24):
    """Effective training throughput of the 2080 Ti measurement, scaled to a T4."""
    flops = 3 * count_flops(resnet9(), torch.randn(1, 3, 32, 32)) * 50_000 * epochs
    return flops / seconds / 1e12 * T4_SHARE


def estimates(tflops=None, budget="gpu"):
    """{chapter: (training PFLOP, minutes)} for ``budget``, at ``tflops`` (default: the
    reference measurement's throughput scaled to a T4)."""
    tflops = tflops or reference_tflops()
    b = PROFILES[budget]
    x = torch.randn(1, 3, 32, 32)
    eval_images = 10_000 + TRAIN_EVAL_SIZE
    rows = {}
    for chapter, networks in chapter_networks(b).items():
        flops = 0.0
        for model, run, seeds in networks:
            forward = count_flops(model, x)
            flops += seeds * forward * (3 * run.batch_size * run.steps
                                        + n_evaluations(run.steps, run.eval_every) * eval_images)
        rows[chapter] = (flops / 1e15, flops / (tflops * 1e12) / 60)
    return rows


def main(tflops=None, budget="gpu"):
    tflops = tflops or reference_tflops()
    b = PROFILES[budget]
    print(f"budget {budget}: {b.steps} steps of batch {b.batch_size}, seeds {b.seeds}; "
          f"{tflops:.1f} TFLOPS effective")
    rows = estimates(tflops, budget)
    for chapter, (pflop, minutes) in rows.items():
        print(f"chapter {chapter:<14} {pflop:7.2f} PFLOP  {minutes:6.1f} min")
    print(f"all chapters          {sum(m for _, m in rows.values()):6.1f} min")


if __name__ == "__main__":
    main(*(float(a) for a in sys.argv[1:2]))
