"""Checkers for the DenseNet chapter's exercises."""
import torch
from torch import nn

from ..models.densenet import DenseBlock, DenseLayer, Transition
from .core import CRASHED, compare_modules, hint, no_modules, run_checks  # noqa: F401


class _OnTensor(nn.Module):
    """The reference dense layer, called on one (already concatenated) tensor."""

    def __init__(self, c_in, growth_rate):
        super().__init__()
        self.layer = DenseLayer(c_in, growth_rate)

    def forward(self, x):
        return self.layer([x])


def dense_layer(cls, seed=None):
    """``cls(c_in, growth_rate)``: BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k) on a tensor."""
    def body(check):
        r = check.random
        for c_in, k in [(16, 4)] + [(r.randint(1, 30), r.randint(1, 12)) for _ in range(2)]:
            compare_modules(check, lambda: cls(c_in, k), lambda: _OnTensor(c_in, k),
                            [torch.randn(2, c_in, 6, 6)],
                            what=f"your DenseLayer({c_in}, growth_rate={k})")

    return run_checks("Exercise: a dense layer", body, answer=cls, kind="class", seed=seed,
                      hint="DenseNet's layers normalise *before* they convolve (the opposite "
                           "of ResNet's blocks); which of the two convolutions is the "
                           "bottleneck, and how wide is it?")


def dense_block(cls, seed=None):
    """``cls(n_layers, c_in, growth_rate)``: a dense block; outputs c_in + n_layers*k channels."""
    def body(check):
        r = check.random
        for n, c_in, k in [(3, 8, 4), (1, 6, 2)] + [(r.randint(2, 5), r.randint(2, 16),
                                                     r.randint(1, 8))]:
            what = f"your DenseBlock({n}, {c_in}, growth_rate={k})"
            model = check.call(cls, n, c_in, k, label=what)
            if isinstance(model, nn.Module):
                out = check.call(model, torch.randn(2, c_in, 6, 6), label=what)
                if out is not CRASHED and isinstance(out, torch.Tensor) and out.dim() == 4:
                    check.expect(out.shape[1] == c_in + n * k,
                                 f"{what} outputs {out.shape[1]} channels; a dense block "
                                 f"outputs c_in + n_layers * k = {c_in + n * k}")
            compare_modules(check, lambda: cls(n, c_in, k), lambda: DenseBlock(n, c_in, k),
                            [torch.randn(2, c_in, 6, 6)], what=what)

    return run_checks("Exercise: a dense block", body, answer=cls, kind="class", seed=seed,
                      hint="how many channels does layer i receive? Keep every output: the "
                           "block's result is all of them, side by side.")


def transition_layer(cls, seed=None):
    """``cls(c_in, c_out)``: DenseNet's transition, BN-ReLU-Conv1x1-AvgPool 2x2."""
    def body(check):
        r = check.random
        for c_in, c_out in [(16, 8)] + [(r.randint(2, 40), r.randint(1, 20)) for _ in range(2)]:
            size = r.choice((4, 6, 8))
            compare_modules(check, lambda: cls(c_in, c_out), lambda: Transition(c_in, c_out),
                            [torch.randn(2, c_in, size, size)],
                            what=f"your Transition({c_in}, {c_out})")

    return run_checks("Exercise: a transition layer", body, answer=cls, kind="class",
                      seed=seed,
                      hint="like the dense layers, it normalises before it convolves; which "
                           "layer halves the resolution without weights?")


def transition_channels(fn, seed=None):
    """``fn(c_in, n_layers, growth_rate, compression)``: channels after a dense block
    on c_in channels followed by a transition layer."""
    exercise = "Exercise: channels after a transition"

    def body(check):
        r = check.random
        cases = [(64, 6, 32, 0.5), (30, 3, 7, 0.5)] + [
            (r.randint(1, 300), r.randint(1, 48), r.randint(1, 48),
             r.choice((0.5, 0.5, 1.0, 0.3, 0.75))) for _ in range(4)]
        for c_in, n, k, theta in cases:
            label = f"transition_channels({c_in}, {n}, {k}, {theta})"
            want = int((c_in + n * k) * theta)
            with no_modules(exercise):
                got = check.call(fn, c_in, n, k, theta, label=label)
            if isinstance(got, float) and got.is_integer() is False and int(got) == want:
                check.fail(f"{label} = {got}: channels are whole numbers; round down")
                continue
            got = None if got is CRASHED else check.number(got, label)
            if got is None:
                continue
            if got == want:
                check.expect(True, "")
            elif got == int(c_in * theta):
                check.fail(f"{label} = {got}: the block adds n_layers * k channels before "
                           f"the transition compresses them")
            else:
                check.fail(f"{label} returned {got!r}; expected {want}")

    return run_checks(exercise, body, answer=fn, kind="function", seed=seed,
                      hint="first the block: how many channels does each layer add? Then the "
                           "transition keeps a fraction of them, as a whole number.")
