"""A learner's module against the reference: the same parameters, outputs, gradients.

``compare_modules`` copies the reference's weights into the learner's module (matched by
name, or by order and shape) and compares them on the check's inputs, in training and in
evaluation mode; tolerances grow with the size of the values compared (``_scale``).
"""
import collections

import torch
from torch import nn

from .core import CRASHED


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def _name_map(source, target):
    """{source name: target name} for every tensor of the state dicts: by name when the
    names are the same, else by position; or an error message."""
    src, dst = source.state_dict(), target.state_dict()
    if src.keys() == dst.keys():
        pairs = {k: k for k in src}
    elif len(src) != len(dst):
        return (f"your module has {len(dst)} weight tensors (parameters and buffers); "
                f"the reference has {len(src)}")
    else:
        pairs = dict(zip(src, dst))
    for s, d in pairs.items():
        if src[s].shape != dst[d].shape:
            return (f"your tensor '{d}' has shape {tuple(dst[d].shape)} where the reference's "
                    f"'{s}' has {tuple(src[s].shape)} (are the layers created in the same "
                    f"order, with the same sizes?)")
    return pairs


@torch.no_grad()
def computes_like(make_yours, reference, variant, x):
    """Whether the learner's module (``make_yours()``), given ``reference``'s weights,
    computes what ``variant`` computes: the reference with one known mistake, the same
    weights. Used to name a mistake instead of reporting a difference."""
    try:
        torch.manual_seed(0)
        yours = make_yours()
        if not isinstance(yours, nn.Module) or copy_weights(reference, yours) is not None:
            return False
        variant.load_state_dict(reference.state_dict())
        a, b = yours.train()(x), variant.train()(x)
        return (isinstance(a, torch.Tensor) and a.shape == b.shape
                and torch.allclose(a, b, atol=1e-5))
    except Exception:   # the learner's module could not even run: reported elsewhere
        return False


def copy_weights(source, target):
    """Copy parameters and buffers from ``source`` into ``target``: by name if the names
    are the same, else by position; returns an error message, or None if it worked."""
    pairs = _name_map(source, target)
    if isinstance(pairs, str):
        return pairs
    _load(source, target, pairs)
    return None


def _load(source, target, pairs):
    src = source.state_dict()
    target.load_state_dict({d: src[s] for s, d in pairs.items()})


def _forward(module, x, mode, check=None, label=""):
    """(input that requires grad, output) of one forward pass in ``mode`` ("training" or
    "evaluation"), the random number generator seeded alike for every module; the
    learner's module runs through ``check.call``."""
    module.train(mode == "training")
    module.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    torch.manual_seed(1)
    return x, (check.call(module, x, label=label) if check else module(x))


def _scale(want):
    """The size of ``want``'s entries (at least 1), by which a tolerance grows: float
    rounding grows with the numbers, and another memory layout (channels_last) or
    summation order rounds differently."""
    return max(1.0, want.abs().max().item())


def _close(got, want, atol):
    """``got`` equals ``want`` up to ``atol`` times :func:`_scale` of ``want``."""
    return torch.allclose(got, want, rtol=0, atol=atol * _scale(want))


# one forward pass of both modules on one input, in one mode: the inputs (to read their
# gradients), the outputs, and the largest difference between the outputs
_Pass = collections.namedtuple("_Pass", "x_ref expected x_yours out difference")


def compare_modules(check, make_yours, make_reference, inputs, what="the module",
                    atol=1e-5):
    """The usual checks of a learner's nn.Module against the reference. It builds and has
    the same number of parameters; with the reference's weights copied in, it gives the
    same outputs in training mode and in evaluation mode (the random number generator
    seeded alike), the same gradients for the input and for every parameter, and the same
    output when called a second time."""
    torch.manual_seed(0)
    yours = check.call(make_yours, label=f"building {what}")
    if yours is CRASHED:
        return
    if not check.expect(isinstance(yours, nn.Module),
                        f"{what} should be an nn.Module, got {type(yours).__name__}"):
        return
    reference = make_reference()
    n_yours, n_ref = count_params(yours), count_params(reference)
    if not check.expect(n_yours == n_ref, f"{what} has {n_yours:,} parameters; expected "
                                          f"{n_ref:,}"):
        return
    pairs = _name_map(reference, yours)
    if not check.expect(not isinstance(pairs, str), f"cannot copy the reference's weights "
                                                    f"into {what}: {pairs}"):
        return
    _load(reference, yours, pairs)
    yours_params = dict(yours.named_parameters())
    for x in inputs:
        shape, runs = tuple(x.shape), {}
        for mode in ("training", "evaluation"):
            label = f"{what} in {mode} mode on input {shape}"
            x_ref, expected = _forward(reference, x, mode)
            x_yours, out = _forward(yours, x, mode, check, label)
            out = None if out is CRASHED else check.tensor(out, label, like=expected)
            if out is None:
                return
            if not check.expect(out.requires_grad, f"{label}: the output is not connected "
                                f"to the input by autograd (computed under torch.no_grad(), "
                                f"or with .detach(), .item() or numpy?)"):
                return
            runs[mode] = _Pass(x_ref, expected, x_yours, out,
                               (out - expected).abs().max().item())
        evaluation, training = runs["evaluation"], runs["training"]
        if evaluation.difference > atol * _scale(evaluation.expected):
            check.fail(f"with the reference's weights, {what}'s output differs by up to "
                       f"{evaluation.difference:.3g} on input {shape}")
            continue
        if training.difference > atol * _scale(training.expected):
            check.fail(f"with the reference's weights, {what} in training mode differs by "
                       f"up to {training.difference:.3g} on input {shape}, though in "
                       f"evaluation mode it matches: something behaves differently while "
                       f"training (dropout or other randomness, or BatchNorm statistics "
                       f"taken over other positions, e.g. because a stride is elsewhere)")
            continue
        training.expected.sum().backward()
        training.out.sum().backward()
        check.expect(training.x_yours.grad is not None and
                     _close(training.x_yours.grad, training.x_ref.grad, atol),
                     f"{what}: the gradient with respect to the input differs on input {shape}")
        for name, p in reference.named_parameters():
            your_p = yours_params.get(pairs[name])
            if p.grad is not None and (your_p is None or your_p.grad is None or
                                       not _close(your_p.grad, p.grad, atol)):
                check.fail(f"{what}: the gradient of '{pairs[name]}' differs from the "
                           f"reference's on input {shape}")
                break
        _, again = _forward(yours, x, "evaluation", check, f"{what}, called a second time")
        if again is not CRASHED:
            check.expect(isinstance(again, torch.Tensor) and
                         again.shape == evaluation.out.shape and
                         torch.allclose(again.detach(), evaluation.out.detach(), atol=atol),
                         f"{what} gives another output when called a second time on the "
                         f"same input: does forward change the module's state?")
    reference.train(), yours.train()
