"""Checkers for the ResNeXt chapter's exercises."""
import math

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .core import CRASHED, RuleBroken, hint, run_checks  # noqa: F401 (hint: check.hint())

TABLE2 = {1: 64, 2: 40, 4: 24, 8: 14, 32: 4}  # Xie et al. (2017), Table 2


class _Untouchable(nn.Conv2d):
    """The grouped convolution handed to the learner: its weights may be read, but
    calling it is the thing the exercise asks to do by hand."""

    def forward(self, x):
        raise RuleBroken("you called the grouped convolution itself; compute it with "
                         "ungrouped F.conv2d calls on the groups' slices")


# where each convolution function takes ``groups`` (argument index), by name: torch's
# functions (F.conv2d is torch.conv2d), the ATen operators (torch.ops.aten.conv2d,
# torch.ops.aten.convolution.default) and the internal entry points
_GROUPS_AT = {"conv1d": 6, "conv2d": 6, "conv3d": 6, "conv_transpose1d": 6,
              "conv_transpose2d": 6, "conv_transpose3d": 6, "mkldnn_convolution": 6,
              "convolution": 8, "_convolution": 8}


class _UngroupedOnly(TorchFunctionMode):
    """While the learner's code runs, every convolution function of torch refuses groups
    other than 1, however it is called (F.conv2d, torch.conv2d, a conv2d imported
    earlier under another name, torch.convolution, torch.ops.aten's operators,
    torch._convolution, torch.mkldnn_convolution, the transposed convolutions): PyTorch
    routes each call from Python through this mode."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "").split(".")[0]
        if name in _GROUPS_AT:
            at = _GROUPS_AT[name]
            groups = kwargs.get("groups", args[at] if len(args) > at else 1)
            if groups != 1:
                raise RuleBroken(f"you called {name} "
                                 f"with groups={groups}; the exercise asks for ungrouped "
                                 f"convolutions, one per group")
        return func(*args, **kwargs)


def grouped_conv(fn, seed=None):
    """``fn(x, conv)``: conv(x) for a grouped ``nn.Conv2d``, computed by splitting the
    channels, convolving each group separately and concatenating."""
    def body(check):
        r = check.random
        # (c_in, c_out, k, groups, stride, padding): the conv's own padding, 0 included
        cases = [(8, 16, 3, 2, 1, 1), (12, 6, 3, 3, 2, 1), (8, 4, 5, 4, 1, 2),
                 (6, 6, 1, 2, 2, 0), (8, 8, 3, 2, 1, 0)]
        for _ in range(3):
            groups, k = r.choice((2, 3, 4, 8)), r.choice((1, 3, 5))
            cases.append((groups * r.randint(1, 4), groups * r.randint(1, 4), k, groups,
                          r.choice((1, 2)), r.choice((0, k // 2))))
        for c_in, c_out, k, groups, stride, padding in cases:
            torch.manual_seed(0)
            conv = _Untouchable(c_in, c_out, k, stride=stride, padding=padding, groups=groups,
                                bias=False)
            x = torch.randn(2, c_in, 9, 9)
            given = x.clone()
            want = nn.Conv2d.forward(conv, x).detach()  # before your code runs
            label = (f"grouped_conv(x, Conv2d({c_in}, {c_out}, {k}, groups={groups}, "
                     f"stride={stride}, padding={padding}))")
            with _UngroupedOnly():
                got = check.call(fn, x, conv, label=label)
            if not check.expect(torch.equal(x, given), f"{label} changed its input x in "
                                f"place; a convolution leaves its input as it is"):
                continue
            got = None if got is CRASHED else check.tensor(got, label, like=want)
            if got is not None:
                check.expect(torch.allclose(got, want, atol=1e-5),
                             f"{label} differs from conv(x) by up to "
                             f"{(got - want).abs().max().item():.3g}: which input channels "
                             f"does group g see, and which of the weight's filters are its?")

    return run_checks("Exercise: a grouped convolution by hand", body, answer=fn,
                      kind="function", seed=seed,
                      hint="look at conv.weight.shape: (c_out, c_in / groups, k, k). Which "
                           "dimension of x, and which of the weight, do you split?")


def block_params(cardinality, d):
    """Weights of the ResNeXt block of Table 2: 256 -> C x d -> C x d (grouped 3x3) -> 256."""
    width = cardinality * d
    return 256 * width + 9 * width * d + width * 256


def width_for_cardinality(fn, seed=None):
    """``fn(C)``: the per-group width d that keeps the block's parameters at the
    1x64d ResNet bottleneck's, rounded to the nearest integer (Xie et al., Table 2)."""
    target = block_params(1, 64)
    exercise = "Exercise: width at fixed complexity"

    def body(check):
        others = check.random.sample([c for c in range(3, 129) if c not in TABLE2], 4)
        for c in list(TABLE2) + others:
            exact = (-512 * c + math.sqrt((512 * c) ** 2 + 36 * c * target)) / (18 * c)
            want = TABLE2.get(c, round(exact))
            label = f"width_for_cardinality({c})"
            got = check.arithmetic(fn, c, label=label)
            if got is None:
                continue
            if got == want:
                check.expect(True, "")
            elif got == math.ceil(exact) or got == math.floor(exact):
                check.fail(f"{label} = {got}: the exact solution is {exact:.2f}; round it "
                           f"to the nearest whole number")
            elif got > 0:
                source = f"; Table 2 of the paper uses d = {want}" if c in TABLE2 else ""
                check.fail(f"{label} = {got}: that block has {block_params(c, got):,} "
                           f"weights against {target:,} for 1x64d{source}")
            else:
                check.fail(f"{label} returned {got}; expected a positive width")

    return run_checks(exercise, body, answer=fn, kind="function", seed=seed,
                      hint="write the block's weight count as a function of C and d (the "
                           "3x3 is grouped), set it equal to the 1x64d block's, and solve "
                           "for d.")
