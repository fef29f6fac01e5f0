"""Checkers for the DenseNet chapter's exercises."""
import torch
from torch import nn

from ..models.densenet import DenseBlock, DenseLayer
from .core import CRASHED, compare_modules, run_checks


class _OnTensor(nn.Module):
    """The reference dense layer, called on one (already concatenated) tensor."""

    def __init__(self, c_in, growth_rate):
        super().__init__()
        self.layer = DenseLayer(c_in, growth_rate)

    def forward(self, x):
        return self.layer([x])


def dense_layer(cls):
    """``cls(c_in, growth_rate)``: BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k) on a tensor."""
    def body(check):
        for c_in, k in ((16, 4), (24, 12), (7, 3)):
            compare_modules(check, lambda: cls(c_in, k), lambda: _OnTensor(c_in, k),
                            [torch.randn(2, c_in, 6, 6)],
                            what=f"your DenseLayer({c_in}, growth_rate={k})")

    return run_checks("Exercise: a dense layer", body, answer=cls,
                      hint="norm1 = BatchNorm2d(c_in), conv1 = 1x1 to 4*k channels, norm2 = "
                           "BatchNorm2d(4*k), conv2 = 3x3 (padding 1) to k channels, all "
                           "convolutions without bias; forward: conv2(relu(norm2(conv1("
                           "relu(norm1(x)))))). It returns only the k new channels.")


def dense_block(cls):
    """``cls(n_layers, c_in, growth_rate)``: a dense block; outputs c_in + n_layers*k channels."""
    def body(check):
        for n, c_in, k in ((3, 8, 4), (5, 16, 12), (1, 6, 2)):
            what = f"your DenseBlock({n}, {c_in}, growth_rate={k})"
            model = check.call(cls, n, c_in, k, label=what)
            if isinstance(model, nn.Module):
                out = check.call(model, torch.randn(2, c_in, 6, 6), label=what)
                if out is not CRASHED and isinstance(out, torch.Tensor):
                    check.expect(out.shape[1] == c_in + n * k,
                                 f"{what} outputs {out.shape[1]} channels; a dense block "
                                 f"outputs c_in + n_layers * k = {c_in + n * k}")
            compare_modules(check, lambda: cls(n, c_in, k), lambda: DenseBlock(n, c_in, k),
                            [torch.randn(2, c_in, 6, 6)], what=what)

    return run_checks("Exercise: a dense block", body, answer=cls,
                      hint="layer i (from 0) is DenseLayer(c_in + i*k, k); forward keeps a "
                           "list of tensors, starting with x; each layer gets torch.cat(list, "
                           "1) and its output is appended; return torch.cat of the whole list.")


def transition_channels(fn):
    """``fn(c_in, n_layers, growth_rate, compression)``: channels after a dense block
    on c_in channels followed by a transition layer."""
    cases = [(64, 6, 32, 0.5), (24, 16, 12, 0.5), (16, 5, 12, 0.5), (30, 3, 7, 0.5),
             (64, 6, 32, 1.0), (16, 4, 6, 0.3)]

    def body(check):
        for c_in, n, k, theta in cases:
            label = f"transition_channels({c_in}, {n}, {k}, {theta})"
            want = int((c_in + n * k) * theta)
            got = check.call(fn, c_in, n, k, theta, label=label)
            if got is CRASHED:
                continue
            if got == want:
                check.expect(True, "")
            elif got == int(c_in * theta):
                check.fail(f"{label} = {got}: the block adds n_layers * k channels before "
                           f"the transition compresses them")
            elif isinstance(got, float) and int(got) == want:
                check.fail(f"{label} = {got}: channels are whole numbers; round down (int)")
            else:
                check.fail(f"{label} returned {got!r}; expected {want}")

    return run_checks("Exercise: channels after a transition", body, answer=fn,
                      hint="the block outputs c_in + n_layers * k channels; the transition "
                           "keeps floor(compression * that) of them.")
