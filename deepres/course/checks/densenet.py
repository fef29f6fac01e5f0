"""Checkers for the DenseNet chapter's exercises."""
import torch
from torch import nn

from ...models.densenet import DenseBlock, DenseLayer, Transition
from .compare import compare_modules
from .core import CRASHED, hint, no_modules, run_checks  # noqa: F401


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
                      library=(DenseBlock,),
                      hint="how many channels does layer i receive? Keep every output: the "
                           "block's result is all of them, side by side.")


def transition_layer(cls, seed=None):
    """``cls(c_in, c_out)``: DenseNet's transition, BN-ReLU-Conv1x1-AvgPool 2x2."""
    def body(check):
        r = check.random
        # an odd size (7) tells floor from ceil mode, on every seed
        for c_in, c_out, size in [(16, 8, 8), (6, 4, 7)] + [
                (r.randint(2, 40), r.randint(1, 20), r.choice((4, 5, 6, 8, 9))) for _ in range(2)]:
            compare_modules(check, lambda: cls(c_in, c_out), lambda: Transition(c_in, c_out),
                            [torch.randn(2, c_in, size, size)],
                            what=f"your Transition({c_in}, {c_out})")
        _name_transition_mistakes(check, cls)

    return run_checks("Exercise: a transition layer", body, answer=cls, kind="class",
                      seed=seed,
                      hint="like the dense layers, it normalises before it convolves; which "
                           "layer halves the resolution without weights?")


def _name_transition_mistakes(check, cls):
    """Say which known mistake the learner's transition makes, where it is one of them:
    max pooling, a bias on the convolution, the layers in another order, ceil mode."""
    yours = check.call(cls, 6, 4, label="your Transition(6, 4)")
    if not isinstance(yours, nn.Module):
        return
    kinds = [m for m in yours.modules() if not list(m.children())]
    if any(isinstance(m, nn.MaxPool2d) for m in kinds):
        check.fail("your transition max-pools; DenseNet's averages (nn.AvgPool2d(2, "
                   "stride=2)), keeping every channel's mean", first=True)
    if any(isinstance(m, nn.Conv2d) and m.bias is not None for m in kinds):
        check.fail("your transition's convolution has a bias; the reference's has none "
                   "(bias=False), as every convolution of DenseNet", first=True)
    if any(getattr(m, "ceil_mode", False) for m in kinds):
        check.fail("your transition pools with ceil_mode=True; an odd size then rounds up, "
                   "where DenseNet's rounds down (the default)", first=True)
    order = [type(m).__name__ for m in kinds
             if isinstance(m, (nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d))]
    expected = ["BatchNorm2d", "ReLU", "Conv2d", "AvgPool2d"]
    # pooling before the 1x1 convolution computes the same function (both are linear:
    # averaging positions and mixing channels commute), with 4 times fewer FLOPs: right
    same = ["BatchNorm2d", "ReLU", "AvgPool2d", "Conv2d"]
    if isinstance(yours, nn.Sequential) and sorted(order) == sorted(expected) \
            and order not in (expected, same):
        check.fail(f"your transition's layers run in the order {'-'.join(order)}; DenseNet's "
                   f"is BN-ReLU-Conv1x1-AvgPool (normalise before the weights, as in the "
                   f"dense layers)", first=True)


def transition_channels(fn, seed=None):
    """``fn(c_in, n_layers, growth_rate, compression)``: channels after a dense block
    on c_in channels followed by a transition layer."""
    exercise = "Exercise: channels after a transition"

    def body(check):
        r = check.random
        # fixed: rounding once, not per part (31, 3, 7); compressions other than 0.5
        cases = [(64, 6, 32, 0.5), (30, 3, 7, 0.5), (31, 3, 7, 0.5), (70, 2, 15, 0.3),
                 (50, 4, 5, 0.75)] + [
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
            elif got == int(c_in * theta) + int(n * k * theta):
                check.fail(f"{label} = {got}: you rounded the two parts separately; "
                           f"compress their sum, then round down once")
            elif theta != 0.5 and got == int((c_in + n * k) * 0.5):
                check.fail(f"{label} = {got}: that is compression 0.5; use the compression "
                           f"given ({theta})")
            elif int(1 / theta) != 1 / theta and got == (c_in + n * k) // int(1 / theta):
                check.fail(f"{label} = {got}: dividing by int(1 / {theta}) = "
                           f"{int(1 / theta)} is not multiplying by {theta}")
            else:
                check.fail(f"{label} returned {got!r}; expected {want}")

    return run_checks(exercise, body, answer=fn, kind="function", seed=seed,
                      hint="first the block: how many channels does each layer add? Then the "
                           "transition keeps a fraction of them, as a whole number.")
