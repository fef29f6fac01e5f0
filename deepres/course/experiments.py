"""The runs each chapter trains, as data: ``chapter_specs(chapter, budget)`` lists them
(:class:`~deepres.training.RunSpec`), and the page, the command line, the book's runs and
the GPU estimate all read that list, so they train, load or count the same runs.

Chapters 2 and 3 share He et al.'s CIFAR experiment (section 4.2): ``cifar_spec``.
Chapters 1, 4, 5 and 6 each compare a few networks: ``*_networks(budget, data)`` gives
them by name, and ``network_specs`` makes a run of each for every seed of the budget.
Chapter 8's transfer runs start from its source network's trained weights.
"""
import math
from dataclasses import replace

import torchvision
from torch import nn

from ..data import load
from ..models import VGG, PreActBlock, densenet_bc_cifar
from ..models.cifar import plain, resnet_cifar
from ..specs import RunSpec, train_specs
from ..training import train
from ..transfer import class_subset, for_weights, load_pretrained, transfer_variants

CHAPTERS = range(1, 9)  # the chapters whose pages train runs


def cifar_data(budget):
    """The budget's dataset at the budget's input size for the CIFAR-style networks."""
    return load(budget.dataset, train_size=budget.train_size, test_size=budget.test_size,
                image_size=budget.resnet_image_size or None)


def cifar_spec(kind, depth, seed, data, budget, block=None):
    """A plain or residual ("resnet") network of the given depth, trained with the paper's
    recipe: SGD, momentum 0.9, weight decay 1e-4, batch 128, learning rate 0.1 divided
    by 10 at 50% and 75% of the steps (32k and 48k of 64k iterations in the paper).
    ``block(c_in, c_out, stride)``, for example your own block class, builds a residual
    network's blocks instead of the library's basic block."""
    if kind not in ("plain", "resnet"):
        raise ValueError(f"kind must be 'plain' or 'resnet', got {kind!r}")
    if block is not None and kind != "resnet":
        raise ValueError("a block of your own makes a 'resnet' run, not a plain one")
    build = plain if kind == "plain" else resnet_cifar
    # a block of your own may be a pre-activation block: normalise after the last one
    options = {"block": block, "final_norm": True} if block is not None else {}
    name = f"{kind}-{depth}" if block is None else f"{getattr(block, '__name__', 'block')}-{depth}"

    def make_model():
        return build(depth, widths=budget.resnet_widths, in_channels=data.shape[0], **options)

    return RunSpec(make_model, data, dict(
        steps=budget.steps, batch_size=budget.batch_size, lr=0.1, momentum=0.9,
        weight_decay=1e-4, eval_every=budget.eval_every, seed=seed, name=f"{name}, seed {seed}"))


def cifar_run(kind, depth, seed, data, budget, device, block=None):
    """Train (or load) the run of :func:`cifar_spec`."""
    return train_specs({0: cifar_spec(kind, depth, seed, data, budget, block)}, device)[0]


def vgg_data(budget):
    """Chapter 1's data: the budget's dataset at its native size."""
    return load(budget.dataset, train_size=budget.train_size, test_size=budget.test_size)


def vgg_networks(budget, data):
    """Chapter 1: three stages that end in a max-pool; in each, two 3x3 convolutions
    ("3x3 pairs") or one 5x5 ("single 5x5"), with BatchNorm and a 128-unit classifier."""
    a, b, c = budget.vgg_widths
    deep = [a, a, "M", b, b, "M", c, c, "M"]      # two 3x3 per stage
    shallow = [a, "M", b, "M", c, "M"]            # one 5x5 per stage

    def small_vgg(config, kernel_size):
        return VGG(config, num_classes=len(data.classes), in_channels=data.shape[0],
                   batch_norm=True, hidden=128, pool_size=3, kernel_size=kernel_size)

    return {"3x3 pairs": lambda: small_vgg(deep, 3),
            "single 5x5": lambda: small_vgg(shallow, 5)}


def bottleneck_networks(budget, data):
    """Chapter 4: a basic ResNet-20 (widths raised by 9/8 to match) against a bottleneck
    ResNet-29 with the same 9 blocks (the budget's widths as the bottleneck width)."""
    w = budget.resnet_widths
    return {"basic ResNet-20": lambda: resnet_cifar(
                20, widths=tuple(c * 9 // 8 for c in w), in_channels=data.shape[0]),
            "bottleneck ResNet-29": lambda: resnet_cifar(
                29, widths=w, in_channels=data.shape[0], bottleneck=True, shortcut="B")}


def resnext_networks(budget, data):
    """Chapter 5: 1x64d (a ResNet) against 8x14d (a ResNeXt), as in Xie et al.'s Table 2,
    bottleneck networks of 11 layers on twice the budget's widths."""
    planes = tuple(2 * c for c in budget.resnet_widths)

    def resnext_cifar(cardinality, d):
        return resnet_cifar(11, widths=planes, in_channels=data.shape[0], bottleneck=True,
                            shortcut="B", groups=cardinality, width_per_group=d)

    return {"1x64d": lambda: resnext_cifar(1, 64), "8x14d": lambda: resnext_cifar(8, 14)}


def densenet_networks(budget, data):
    """Chapter 6: DenseNet-BC-40 against the ResNet-14 of the budget's widths, about as
    many parameters."""
    k = budget.resnet_widths[0] * 3 // 4
    return {f"DenseNet-BC-40 (k={k})": lambda: densenet_bc_cifar(
                40, growth_rate=k, in_channels=data.shape[0]),
            "ResNet-14": lambda: resnet_cifar(14, widths=budget.resnet_widths,
                                              in_channels=data.shape[0])}


RACE_SEEDS = (0, 1, 2, 3)  # the race of chapter 7: four seeds on every budget (deepres.course.book)


def race_budget(budget):
    """The budget of each run of the race: ``budget.race_steps`` iterations (fewer than
    the budget's steps on the laptop and gpu budgets, so that the race's 28 runs fit in
    minutes on a CPU and chapter 7 in a Colab session on a T4), evaluated four times."""
    return replace(budget, steps=budget.race_steps,
                   eval_every=max(1, budget.race_steps // 4))


def race_networks(budget, data):
    """Chapter 7: one network of each family of the course, each with about as many
    parameters as the ResNet-14 of the budget's widths (chapter 6's pair, DenseNet-BC-40
    and ResNet-14, is part of the race). The other families' widths were chosen to land
    within 5% of ResNet-14's count on the laptop and gpu budgets (a test checks it). No
    network uses dropout (VGG's classifier had it)."""
    w, c = budget.resnet_widths, data.shape[0]
    v = tuple(x * 3 // 2 for x in w)  # VGG-style: three stages of two 3x3 convolutions

    def vgg_style():
        model = VGG([v[0], v[0], "M", v[1], v[1], "M", v[2], v[2], "M"],
                    num_classes=len(data.classes), in_channels=c, batch_norm=True,
                    hidden=4 * w[0], pool_size=1, dropout=0.0)
        # VGG's N(0, 0.01) for the fully connected layers suits their 4,096 units; at a
        # width of 32 it shrinks the signal about 20x a layer and the network trains
        # badly (measured once on the laptop budget: about twice the test error of He
        # initialisation). He initialisation, as everywhere else.
        for m in model.classifier:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        return model

    return {
        "VGG-style": vgg_style,
        "plain-14": lambda: plain(14, widths=w, in_channels=c),
        "ResNet-14": lambda: resnet_cifar(14, widths=w, in_channels=c),
        "pre-act ResNet-14": lambda: resnet_cifar(14, widths=w, in_channels=c,
                                                  block=PreActBlock, final_norm=True),
        "bottleneck ResNet-20": lambda: resnet_cifar(
            20, widths=tuple(x * 7 // 8 for x in w), in_channels=c, bottleneck=True,
            shortcut="B"),
        "ResNeXt-20 (4x32d)": lambda: resnet_cifar(
            20, widths=tuple(x * 3 // 4 for x in w), in_channels=c, bottleneck=True,
            shortcut="B", groups=4, width_per_group=32),
        "DenseNet-BC-40": lambda: densenet_bc_cifar(40, growth_rate=w[0] * 3 // 4,
                                                    in_channels=c),
    }


def network_specs(networks, data, budget, lr=0.1, weight_decay=1e-4, seeds=None):
    """A run of each network for every seed of the budget, or of ``seeds`` (SGD, momentum
    0.9, He et al.'s step schedule): {(name, seed): RunSpec}."""
    return {(name, seed): RunSpec(make, data, dict(
                steps=budget.steps, batch_size=budget.batch_size, lr=lr,
                weight_decay=weight_decay, eval_every=budget.eval_every, seed=seed,
                name=f"{name}, seed {seed}"))
            for seed in (seeds or budget.seeds) for name, make in networks.items()}


def train_networks(networks, data, budget, device, lr=0.1, weight_decay=1e-4, seeds=None):
    """Train (or load) the runs of :func:`network_specs`: {(name, seed): Run}."""
    return train_specs(network_specs(networks, data, budget, lr, weight_decay, seeds), device)


TRANSFER_LRS = (0.1, 0.01)   # chapter 8: every variant at both, compared at the same one
CURVE_POINTS = 6   # chapter 8's main runs: test evaluations a run, for their learning curves
SOURCE_CLASSES, TARGET_CLASSES = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]


def transfer_source(budget, data):
    """Chapter 8's source network: a ResNet-20 of the budget's widths trained on the first
    five classes, all their images, with the budget's recipe (learning rate 0.1)."""
    def small_resnet():
        return resnet_cifar(20, widths=budget.resnet_widths, in_channels=data.shape[0],
                            num_classes=len(SOURCE_CLASSES))

    return RunSpec(small_resnet, class_subset(data, SOURCE_CLASSES), dict(
        steps=budget.steps, batch_size=budget.batch_size, lr=0.1,
        eval_every=budget.eval_every, seed=0, name="source task"))


EARLY = ["conv", "bn"] + [f"blocks.{i}" for i in range((20 - 2) // 6)]   # stem + stage 1


def transfer_specs(source, data, budget, per_class, seeds, lrs=TRANSFER_LRS, points=1):
    """Chapter 8's four ways onto the target task (the last five classes, ``per_class``
    labels a class), each from ``source``'s trained network (``transfer_variants``), at
    each learning rate, for each seed, a quarter of the budget's steps, evaluated on the
    test set ``points`` times a run, evenly spaced: {(variant, lr, seed): RunSpec}."""
    steps = budget.steps // 4
    specs = {}
    for seed in seeds:
        target = class_subset(data, TARGET_CLASSES, per_class=per_class, seed=seed)
        for name in ("from scratch", "linear probe", "fine-tune all",
                     "fine-tune, early layers frozen"):
            def make(pretrained, name=name):
                return transfer_variants(pretrained, len(TARGET_CLASSES), EARLY)[name]()
            for lr in lrs:
                specs[name, lr, seed] = RunSpec(make, target, dict(
                    steps=steps, batch_size=budget.batch_size, lr=lr,
                    eval_every=max(1, math.ceil(steps / points)), seed=seed,
                    name=f"{name}, lr {lr}, {per_class} a class, seed {seed}",
                    progress=False), source=source)
    return specs


def imagenet_to_cifar(budget, device, download, per_class=100, size=112, seed=0):
    """Chapter 8 on a GPU: torchvision's ImageNet ResNet-18 on CIFAR-10 with ``per_class``
    labels a class, normalised as the weights' ``transforms()`` say (ImageNet's mean and
    standard deviation), enlarged to ``size`` pixels (the ImageNet stem shrinks its input 4x
    at once; the weights' own 224 would cost 4x the time), as a linear probe and fine-tuned
    (learning rate 0.01, a quarter of the budget's steps). Returns {variant: Run} and
    whether the weights were ImageNet's."""
    weights = torchvision.models.get_model_weights("resnet18").DEFAULT
    cifar = for_weights(weights)
    backbone, loaded = load_pretrained("resnet18", download=download)
    variants = transfer_variants(backbone, len(cifar.classes), ["conv1", "bn1", "layer1"])
    few = class_subset(cifar, list(range(len(cifar.classes))), per_class=per_class, seed=seed)
    runs = {}
    for name in ("linear probe", "fine-tune all"):
        def make(build=variants[name]):
            return nn.Sequential(nn.Upsample(size=size, mode="bilinear"), build())
        runs[name] = train(make, few, steps=max(1, budget.steps // 4),
                           batch_size=budget.batch_size, lr=0.01,
                           eval_every=max(1, budget.steps // 4), seed=seed, device=device,
                           name=f"ImageNet ResNet-18 on CIFAR-10, {name}")
    return runs, loaded


def transfer_labels(data):
    """Labels a class of chapter 8's experiment: 100, or fewer where the budget's
    training set has fewer (the smoke budget)."""
    return min(100, min(int((data.y_train == c).sum()) for c in TARGET_CLASSES))


def chapter_specs(chapter, budget, data=None):
    """Every training run of a chapter's page (not the runs of your own exercise code):
    {label: RunSpec}, labelled as the page labels them. ``data``: the chapter's dataset
    (default: loaded; anything with its ``shape`` and ``classes`` will do for counting)."""
    if chapter not in CHAPTERS:
        raise ValueError(f"chapter must be one of 1 to 8 (the chapters that train), "
                         f"not {chapter!r}")
    if data is None:
        data = vgg_data(budget) if chapter == 1 else cifar_data(budget)
    if chapter == 1:
        return network_specs(vgg_networks(budget, data), data, budget, lr=0.05,
                             weight_decay=5e-4)
    if chapter in (2, 3):
        kinds = ("plain",) if chapter == 2 else ("plain", "resnet")
        return {(kind, depth, seed): cifar_spec(kind, depth, seed, data, budget)
                for seed in budget.seeds for kind in kinds for depth in (20, 56)}
    if chapter == 7:
        seed0 = budget.seeds[0]
        specs = {("plain", 56, seed0): cifar_spec("plain", 56, seed0, data, budget)}
        specs.update({("resnet", 56, seed): cifar_spec("resnet", 56, seed, data, budget)
                      for seed in budget.seeds})
        specs.update({("pre-act", 56, seed): cifar_spec("resnet", 56, seed, data, budget,
                                                        block=PreActBlock)
                      for seed in budget.seeds})
        specs.update(network_specs(race_networks(budget, data), data, race_budget(budget),
                                   seeds=RACE_SEEDS))
        return specs
    if chapter == 8:
        source = transfer_source(budget, data)
        return {"source": source, **transfer_specs(source, data, budget, transfer_labels(data),
                                                   budget.seeds, points=CURVE_POINTS)}
    networks = {4: bottleneck_networks, 5: resnext_networks, 6: densenet_networks}
    return network_specs(networks[chapter](budget, data), data, budget)


def chapter_runs(chapter, budget, device):
    """Train (or load) every run of :func:`chapter_specs`: {label: Run}."""
    return train_specs(chapter_specs(chapter, budget), device)
