"""Checkers for the ResNeXt chapter's exercises."""
import math

import torch
from torch import nn

from ..measure import count_params
from .core import CRASHED, run_checks

TABLE2 = {1: 64, 2: 40, 4: 24, 8: 14, 32: 4}  # Xie et al. (2017), Table 2


def grouped_conv(fn):
    """``fn(x, conv)``: conv(x) for a grouped ``nn.Conv2d``, computed by splitting the
    channels, convolving each group separately and concatenating."""
    cases = [(8, 16, 3, 2, 1), (8, 8, 3, 4, 1), (12, 6, 3, 3, 2), (4, 8, 1, 4, 1), (6, 6, 3, 1, 1)]

    def body(check):
        for c_in, c_out, k, groups, stride in cases:
            torch.manual_seed(0)
            conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, groups=groups,
                             bias=False)
            x = torch.randn(2, c_in, 9, 9)
            want = conv(x)
            label = f"grouped_conv(x, Conv2d({c_in}, {c_out}, {k}, groups={groups}, stride={stride}))"
            got = check.call(fn, x, conv, label=label)
            if got is CRASHED:
                continue
            if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                check.fail(f"{label} has shape {tuple(getattr(got, 'shape', ()))}; expected "
                           f"{tuple(want.shape)} (use the layer's stride and padding)")
            else:
                check.expect(torch.allclose(got, want, atol=1e-5),
                             f"{label} differs from conv(x) by up to "
                             f"{(got - want).abs().max().item():.3g}: group g's weights are "
                             f"conv.weight[g*o:(g+1)*o] with o = c_out // groups, and it sees "
                             f"input channels g*i:(g+1)*i with i = c_in // groups")

    return run_checks("Exercise: a grouped convolution by hand", body, answer=fn,
                      hint="torch.chunk(x, groups, dim=1) and torch.chunk(conv.weight, groups, "
                           "dim=0); torch.nn.functional.conv2d each pair with conv.stride and "
                           "conv.padding; torch.cat the results along dim 1.")


def block_params(cardinality, d):
    """Weights of the ResNeXt block of Table 2: 256 -> C x d -> C x d (grouped 3x3) -> 256."""
    width = cardinality * d
    return 256 * width + 9 * width * d + width * 256


def width_for_cardinality(fn):
    """``fn(C)``: the per-group width d that keeps the block's parameters at the
    1x64d ResNet bottleneck's, rounded to an integer (Xie et al., Table 2)."""
    target = block_params(1, 64)

    def body(check):
        for c, d_paper in TABLE2.items():
            got = check.call(fn, c, label=f"width_for_cardinality({c})")
            if got is CRASHED:
                continue
            if got == d_paper:
                check.expect(True, "")
            elif isinstance(got, (int, float)) and got > 0:
                check.fail(f"width_for_cardinality({c}) = {got}: that block has "
                           f"{block_params(c, got):,.0f} weights against {target:,} for "
                           f"1x64d; Table 2 of the paper uses d = {d_paper}")
            else:
                check.fail(f"width_for_cardinality({c}) returned {got!r}; expected a width")
        for c in (3, 16, 64):  # beyond the paper's table: solve 9Cd^2 + 512Cd = target
            exact = (-512 * c + math.sqrt((512 * c) ** 2 + 36 * c * target)) / (18 * c)
            got = check.call(fn, c, label=f"width_for_cardinality({c})")
            if got is not CRASHED:
                check.expect(isinstance(got, (int, float)) and abs(got - exact) <= 1,
                             f"width_for_cardinality({c}) = {got!r}; the exact solution is "
                             f"{exact:.2f}")

    return run_checks("Exercise: width at fixed complexity", body, answer=fn,
                      hint="a block has 256*C*d + 9*C*d*d + C*d*256 weights (the 3x3 is "
                           "grouped: each of C groups maps d to d channels); set this equal "
                           "to the 1x64d block's and solve the quadratic for d, then round.")
