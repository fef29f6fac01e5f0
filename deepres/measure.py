"""Counting parameters and FLOPs, layer by layer.

FLOPs are counted by ``torch.utils.flop_counter``, which counts one multiply-add as 2
FLOPs and counts only matrix multiplications and convolutions (not ReLU, pooling or
BatchNorm). Papers often quote multiply-adds and call them FLOPs: check before comparing.
"""
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model):
    """Number of parameters (all of them trainable in this course's models)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model, x):
    """FLOPs of one forward pass of ``model`` on the batch ``x``."""
    with FlopCounterMode(display=False) as counter:
        model.eval()(x)
    return counter.get_total_flops()


@torch.no_grad()
def layer_costs(model, x, kinds=(nn.Conv2d, nn.Linear)):
    """One row per layer of the given kinds, in forward order:
    ``dict(name, kind, params, flops, out_shape)``."""
    shapes, order = {}, []
    layers = {m: name for name, m in model.named_modules() if isinstance(m, kinds)}

    def hook(module, inputs, output):
        order.append(layers[module])
        shapes[layers[module]] = tuple(output.shape[1:])

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        with FlopCounterMode(display=False) as counter:
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    counts = counter.get_flop_counts()
    prefix = type(model).__name__ + "."
    modules = dict(model.named_modules())
    rows = []
    for name in order:
        flops = sum(counts.get(prefix + name, {}).values())
        rows.append(dict(name=name, kind=type(modules[name]).__name__,
                         params=count_params(modules[name]), flops=flops,
                         out_shape=shapes[name]))
    return rows


def layer_grad_norms(model, x, y):
    """The L2 norm of the loss gradient with respect to the weight of each convolution
    and fully connected layer, in the order ``model.modules()`` lists them (the forward
    order, for this course's models). The loss is the cross-entropy on the batch (x, y);
    the model is left in training mode, as during training."""
    model.train()
    model.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    norms = [m.weight.grad.norm().item() for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.zero_grad(set_to_none=True)
    return norms
