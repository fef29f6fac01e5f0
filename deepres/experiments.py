"""The networks each chapter trains, in one place, so that a chapter and the command
line (``python -m deepres.run --chapter N``) train, or load from the run cache, exactly
the same runs.

Chapters 2 and 3 share He et al.'s CIFAR experiment (section 4.2): ``cifar_run``.
Chapters 1, 4, 5 and 6 each compare a few networks: ``*_networks(budget, data)`` gives
them by name, and ``train_networks`` trains each for every seed of the budget.
"""
from dataclasses import replace

from torch import nn

from .data import load
from .models import VGG, PreActBlock, densenet_bc_cifar
from .models.cifar import plain, resnet_cifar
from .training import train

CHAPTERS = range(1, 8)  # the chapters that train runs of their own (chapter 8 trains in its page)


def cifar_data(budget):
    """The budget's dataset at the budget's input size for the CIFAR-style networks."""
    return load(budget.dataset, train_size=budget.train_size, test_size=budget.test_size,
                image_size=budget.resnet_image_size or None)


def cifar_run(kind, depth, seed, data, budget, device, block=None):
    """Train a plain or residual ("resnet") network of the given depth with the paper's
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

    return train(make_model, data, steps=budget.steps, batch_size=budget.batch_size,
                 lr=0.1, momentum=0.9, weight_decay=1e-4, eval_every=budget.eval_every,
                 seed=seed, device=device, name=f"{name}, seed {seed}")


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


RACE_SEEDS = (0, 1, 2, 3)  # the race of chapter 7: four seeds on every budget (deepres.book)


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
        # width of 32 it shrinks the signal ~20x a layer and the network trains badly
        # (measured on the laptop budget, seed 0: 44% test error after the race's 250
        # steps, 22% with He initialisation). He initialisation, as everywhere else.
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


def train_networks(networks, data, budget, device, lr=0.1, weight_decay=1e-4, seeds=None):
    """Train each network for every seed of the budget, or of ``seeds`` (SGD, momentum
    0.9, He et al.'s step schedule); returns {(name, seed): Run}."""
    return {(name, seed): train(make, data, steps=budget.steps,
                                batch_size=budget.batch_size, lr=lr,
                                weight_decay=weight_decay, eval_every=budget.eval_every,
                                seed=seed, device=device, name=f"{name}, seed {seed}")
            for seed in (seeds or budget.seeds) for name, make in networks.items()}


def chapter_runs(chapter, budget, device):
    """Every training run of a chapter's page (not the runs of your own exercise code),
    trained or loaded from the run cache: {key: Run}, with the keys the page uses."""
    if chapter == 1:
        data = vgg_data(budget)
        return train_networks(vgg_networks(budget, data), data, budget, device,
                              lr=0.05, weight_decay=5e-4)
    if chapter in (2, 3):
        data = cifar_data(budget)
        kinds = ("plain",) if chapter == 2 else ("plain", "resnet")
        return {(kind, depth, seed): cifar_run(kind, depth, seed, data, budget, device)
                for seed in budget.seeds for kind in kinds for depth in (20, 56)}
    if chapter == 7:
        data = cifar_data(budget)
        runs = {("plain", 56, budget.seeds[0]): cifar_run("plain", 56, budget.seeds[0],
                                                          data, budget, device)}
        runs.update({("resnet", 56, seed): cifar_run("resnet", 56, seed, data, budget, device)
                     for seed in budget.seeds})
        runs.update({("pre-act", 56, seed): cifar_run("resnet", 56, seed, data, budget,
                                                      device, block=PreActBlock)
                     for seed in budget.seeds})
        runs.update(train_networks(race_networks(budget, data), data, race_budget(budget),
                                   device, seeds=RACE_SEEDS))
        return runs
    networks = {4: bottleneck_networks, 5: resnext_networks, 6: densenet_networks}
    if chapter not in networks:
        raise ValueError(f"chapter must be one of 1 to 7 (the chapters that train), "
                         f"not {chapter!r}")
    data = cifar_data(budget)
    return train_networks(networks[chapter](budget, data), data, budget, device)
