"""The networks each chapter trains, in one place, so that a chapter and the command
line (``python -m deepres.run --chapter N``) train, or load from the run cache, exactly
the same runs.

Chapters 2 and 3 share He et al.'s CIFAR experiment (section 4.2): ``cifar_run``.
Chapters 1, 4, 5 and 6 each compare a few networks: ``*_networks(budget, data)`` gives
them by name, and ``train_networks`` trains each for every seed of the budget.
"""
from .data import load
from .models import VGG, densenet_bc_cifar
from .models.cifar import plain, resnet_cifar
from .training import train


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


def train_networks(networks, data, budget, device, lr=0.1, weight_decay=1e-4):
    """Train each network for every seed of the budget (SGD, momentum 0.9, He et al.'s
    step schedule); returns {(name, seed): Run}."""
    return {(name, seed): train(make, data, steps=budget.steps,
                                batch_size=budget.batch_size, lr=lr,
                                weight_decay=weight_decay, eval_every=budget.eval_every,
                                seed=seed, device=device, name=f"{name}, seed {seed}")
            for seed in budget.seeds for name, make in networks.items()}


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
    networks = {4: bottleneck_networks, 5: resnext_networks, 6: densenet_networks}
    if chapter not in networks:
        raise ValueError(f"chapter must be one of 1 to 6 (the chapters that train), "
                         f"not {chapter!r}")
    data = cifar_data(budget)
    return train_networks(networks[chapter](budget, data), data, budget, device)
