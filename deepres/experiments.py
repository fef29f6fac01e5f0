"""The CIFAR experiment of He et al. (2016), section 4.2, shared by the degradation and
residual chapters so that both train (or load from the run cache) the same runs."""
from .data import load
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
