"""Estimate how long each chapter's training takes with the `gpu` budget on a T4.

No GPU has measured these networks yet (``make gpu-check`` does, where one is lent), so
this is arithmetic, not a measurement:

    python -m devtools.gpu_estimate [budget]

**Which runs.** Every run a chapter trains in a fresh Colab runtime: the run
specifications of ``deepres.course.experiments.chapter_specs`` (the list the pages train), each
chapter counted in full even where the book shares runs between chapters through the run
cache, plus the exercises' runs (``extra_runs``).

**How long a step takes.** A roofline with three parts, for the training step of batch B:

* compute: 3 x the forward FLOPs (the backward pass counted as twice the forward) at
  ``reference_tflops()``, the throughput a published measurement on a GPU of the T4's
  generation gives for a CIFAR ResNet, scaled to a T4 (see ``reference_tflops``);
* memory: every activation (the output of every layer: convolution, BatchNorm, ReLU...)
  written and read about ``PASSES`` times in a step, 2 bytes each (fp16), at
  ``BANDWIDTH``. These networks are thin (16 to 64 channels), so BatchNorm and ReLU,
  which only move memory, take much of the time;
* launch: PyTorch's Python side issues about ``OPS_PER_LAYER`` kernels a layer a step,
  each taking ``SECONDS_PER_OP`` of the CPU. The GPU works while the CPU issues, so a
  step takes the longer of (compute + memory) and launch.

The estimate is that; the bracket printed beside it goes from compute alone (the method
of this tool's first version, which the memory and launch parts showed to be 2-4x too
optimistic for thin networks) to compute + memory + launch with no overlap. The
constants are assumptions from the T4's data sheet, not measurements: expect the truth
within the bracket, and prefer any figure a GPU measured (the chapters print their own
estimate, from timed steps, before they train; ``make gpu-check`` writes one per network).
"""
import sys

import torch
from torch import nn

from deepres.course import experiments
from deepres.course.budget import PROFILES
from deepres.data import Data
from deepres.measure import count_flops
from deepres.models import resnet_cifar
from deepres.specs import untrained
from deepres.training import TRAIN_EVAL_SIZE, n_evaluations

T4_SHARE = 0.36        # (40 SMs x ~1.1 GHz under load) / (68 SMs x ~1.8 GHz): an assumption
BANDWIDTH = 220e9      # bytes/s: 70% of the T4's 320 GB/s
PASSES = 6             # times each activation is written or read in a training step
SECONDS_PER_OP = 15e-6  # CPU time to issue one kernel from PyTorch (Colab's slow vCPUs)
OPS_PER_LAYER = 4      # kernels a layer a step: forward, two backward, optimiser's share
CHAPTERS = {1: "1 VGG", 2: "2 degradation", 3: "3 residual", 4: "4 bottleneck",
            5: "5 ResNeXt", 6: "6 DenseNet", 7: "7 why", 8: "8 practice"}


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
    """Effective training throughput on a T4, from Lambda Labs' measurement: David Page's
    ResNet-9 trained on CIFAR-10 for 24 epochs in 131 s on an RTX 2080 Ti in fp16
    ("ResNet9: train to 94% CIFAR10 accuracy in 100 seconds with a single Turing GPU"),
    its FLOPs counted here, times T4_SHARE. A wide network: its time is mostly compute."""
    flops = 3 * count_flops(resnet9(), torch.randn(1, 3, 32, 32)) * 50_000 * epochs
    return flops / seconds / 1e12 * T4_SHARE


_profiles = {}


@torch.no_grad()
def profile(model, image_shape):
    """(forward FLOPs, activation elements, layers) of ``model`` for one image."""
    key = (repr(model), tuple(image_shape))
    if key not in _profiles:
        _profiles[key] = _profile(model, image_shape)
    return _profiles[key]


def _profile(model, image_shape):
    x = torch.randn(1, *image_shape)
    leaves = [m for m in model.modules() if not list(m.children())]
    elements = []
    handles = [m.register_forward_hook(lambda m, i, o: elements.append(o.numel()))
               for m in leaves]
    try:
        flops = count_flops(model, x)
    finally:
        for h in handles:
            h.remove()
    return flops, sum(elements), len(leaves)


def run_seconds(model, image_shape, steps, batch_size, eval_every, tflops):
    """(low, estimate, high) seconds of one run: see the module's docstring."""
    flops, elements, layers = profile(model, image_shape)
    compute = 3 * flops * batch_size / (tflops * 1e12)
    memory = PASSES * 2 * elements * batch_size / BANDWIDTH
    launch = OPS_PER_LAYER * layers * SECONDS_PER_OP
    images = n_evaluations(steps, eval_every) * (10_000 + TRAIN_EVAL_SIZE)
    evaluation = images * (flops / (tflops * 1e12) + 2 * 2 * elements / BANDWIDTH)
    return (steps * compute + evaluation / 2,
            steps * max(compute + memory, launch) + evaluation,
            steps * (compute + memory + launch) + evaluation)


def placeholder_data(budget, image_size=0):
    """Blank data of the budget's dataset's shape and ten classes, 100 images a class:
    what the run specifications need to be counted (no dataset is read)."""
    channels, size = (3, 32) if budget.dataset == "cifar10" else (1, 28)
    size = image_size or size
    x, y = torch.zeros(1000, channels, size, size), torch.arange(1000) % 10
    return Data(budget.dataset, x, y, x[:10], y[:10], tuple(map(str, range(10))),
                budget.dataset == "cifar10", {})


def recorded_runs(budget):
    """{chapter: [(model, image shape, steps, batch size, eval_every, name)]}: the runs of
    ``chapter_specs`` on ``budget``, counted on blank data, nothing trained."""
    table = {}
    for chapter in experiments.CHAPTERS:
        data = placeholder_data(budget, 0 if chapter == 1 else budget.resnet_image_size)
        table[chapter] = []
        for spec in experiments.chapter_specs(chapter, budget, data).values():
            o = spec.options
            model = untrained(spec)
            table[chapter].append((model, spec.data.shape, o["steps"], o["batch_size"],
                                   o["eval_every"], o["name"]))
    return table


def extra_runs(budget):
    """The runs the pages train with their own code (not in ``chapter_specs``), on the
    `gpu` budget: chapter 3's exercise (your block in a ResNet-56, one seed); chapter 8's
    exercise (the four transfer variants at two learning rates with two other label
    counts, one seed, a quarter of the steps each), and the ImageNet ResNet-18 at 112x112,
    as a probe and fine-tuned (a quarter)."""
    w, s, b = budget.resnet_widths, budget.steps, budget.batch_size
    image = (3, 32, 32)
    resnet20 = resnet_cifar(20, widths=w, num_classes=5)
    quarter = max(1, s // 4)
    imagenet = nn.Sequential(nn.Upsample(size=112, mode="bilinear"),
                             __import__("torchvision").models.resnet18(num_classes=10))
    return {3: [(resnet_cifar(56, widths=w), image, s, b, budget.eval_every,
                 "your block in a ResNet-56")],
            8: [(resnet20, image, quarter, b, quarter, "a transfer run")] * (2 * 4 * 2)
               + [(imagenet, image, quarter, b, quarter, "ImageNet ResNet-18")] * 2}


def estimates(budget="gpu", tflops=None):
    """{chapter: dict(runs, pflop, low, minutes, high)}: minutes on a T4 with ``budget``."""
    tflops = tflops or reference_tflops()
    b = PROFILES[budget]
    table = recorded_runs(b)
    for chapter, runs in extra_runs(b).items():
        table.setdefault(chapter, []).extend(runs)
    rows = {}
    for chapter, runs in sorted(table.items()):
        seconds = [run_seconds(m, shape, steps, batch, every, tflops)
                   for m, shape, steps, batch, every, _ in runs]
        pflop = sum(3 * profile(m, shape)[0] * batch * steps
                    for m, shape, steps, batch, _, _ in runs) / 1e15
        low, mid, high = (sum(t[i] for t in seconds) / 60 for i in range(3))
        rows[CHAPTERS[chapter]] = dict(runs=len(runs), pflop=pflop, low=low, minutes=mid,
                                       high=high)
    return rows


def main(budget="gpu"):
    tflops = reference_tflops()
    b = PROFILES[budget]
    print(f"budget {budget}: {b.steps} steps of batch {b.batch_size}, seeds {b.seeds}; "
          f"on a T4 by estimate: {tflops:.1f} TFLOPS, {BANDWIDTH / 1e9:.0f} GB/s, "
          f"{1e6 * SECONDS_PER_OP:.0f} us a kernel launch")
    rows = estimates(budget, tflops)
    for chapter, r in rows.items():
        print(f"chapter {chapter:<14} {r['runs']:3} runs {r['pflop']:7.2f} PFLOP  about "
              f"{r['minutes']:5.1f} min ({r['low']:.1f} to {r['high']:.1f})")
    print(f"all chapters      about {sum(r['minutes'] for r in rows.values()):6.1f} min")


if __name__ == "__main__":
    main(*sys.argv[1:2])
