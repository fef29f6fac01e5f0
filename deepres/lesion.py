"""Residual networks behave like ensembles of shallow networks (Veit et al., 2016).

A network of n residual blocks, each y = x + F(x), unrolls into 2**n paths from input
to output: at each block a path goes through F or along the shortcut. Deleting a block
(keeping only its shortcut) removes half of the paths and leaves the other half
working. A plain network has one path, through every layer: delete a layer, and nothing
is left.
"""
import copy
import math
import random

import torch
from torch import nn

from .training import evaluate


def path_length_counts(n_blocks):
    """How many of the 2**n paths through ``n_blocks`` residual blocks go through k of
    the residual branches, for k = 0 .. n: the binomial coefficients C(n, k)."""
    return [math.comb(n_blocks, k) for k in range(n_blocks + 1)]


def keeps_shape(block):
    """True if ``block`` outputs a tensor of its input's shape (stride 1, as many
    channels out as in): only such a block can be replaced by the identity."""
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    return (bool(convs) and all(c.stride == (1, 1) for c in convs)
            and convs[0].in_channels == convs[-1].out_channels)


def deletable_blocks(model):
    """Indices of the blocks of ``model.blocks`` that keep their input's shape."""
    return [i for i, block in enumerate(model.blocks) if keeps_shape(block)]


def delete_blocks(model, indices):
    """A copy of ``model`` with each block of ``model.blocks`` listed in ``indices``
    replaced by the identity: of a residual block y = x + F(x) only the shortcut is
    left; of a plain block, nothing. ``model`` itself is not changed."""
    lesioned = copy.deepcopy(model)
    for i in indices:
        if not keeps_shape(lesioned.blocks[i]):
            raise ValueError(f"block {i} changes the shape of its input: it cannot be "
                             f"replaced by the identity")
        lesioned.blocks[i] = nn.Identity()
    return lesioned


def single_lesions(model, x, y, device="cpu"):
    """{block index: test error of ``model`` without that block}, for every block that
    can be deleted (``deletable_blocks``)."""
    device = torch.device(device)
    return {i: evaluate(delete_blocks(model, [i]), x, y, device)[1]
            for i in deletable_blocks(model)}


def random_lesions(model, ks, x, y, draws=5, seed=0, device="cpu"):
    """{k: [test error after deleting k blocks drawn at random] for each draw}."""
    rng, device = random.Random(seed), torch.device(device)
    blocks = deletable_blocks(model)
    return {k: [evaluate(delete_blocks(model, rng.sample(blocks, k)), x, y, device)[1]
                for _ in range(draws if k else 1)]
            for k in ks}


@torch.no_grad()
def branch_ratios(model, x, device="cpu"):
    """{block index: ||F(x)|| / ||x||} for every deletable residual block of ``model``
    (one whose branch ends in ``last_bn()``): the size of what the block adds against
    the size of its input, over the images ``x``, in evaluation mode. Deleting a block
    removes F(x): where that is about as large as x, the block is no small correction."""
    device = torch.device(device)
    model = copy.deepcopy(model).to(device).eval()
    seen, hooks = {}, []
    for i in deletable_blocks(model):
        block = model.blocks[i]
        if not hasattr(block, "last_bn"):
            continue
        hooks.append(block.register_forward_pre_hook(
            lambda module, inputs, i=i: seen.__setitem__((i, "x"), inputs[0].norm())))
        hooks.append(block.last_bn().register_forward_hook(
            lambda module, inputs, output, i=i: seen.__setitem__((i, "F"), output.norm())))
    model(x.to(device))
    for hook in hooks:
        hook.remove()
    return {i: (seen[i, "F"] / seen[i, "x"]).item() for i, part in seen if part == "x"}
