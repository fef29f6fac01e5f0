"""Checkers for the bottleneck chapter's exercises."""
from ..measure import count_params
from ..models.blocks import Bottleneck
from .core import CRASHED, run_checks
from .residual import compare_blocks, identity_when_silenced

CASES = [(64, 16, 1, "identity shortcut"), (32, 16, 1, "projection, more channels"),
         (64, 16, 2, "projection, stride 2"), (64, 32, 2, "projection, both")]


def bottleneck_block(cls):
    """``cls(c_in, planes, stride)``: the bottleneck block, outputs 4 * planes channels."""
    def body(check):
        compare_blocks(check, cls, lambda c_in, planes, stride: Bottleneck(
            c_in, planes, stride, shortcut="B"), CASES)
        identity_when_silenced(check, cls, (64, 16, 1), channels=64)

    return run_checks("Exercise: the bottleneck block", body, answer=cls,
                      hint="conv1 1x1 (c_in -> planes), bn1, ReLU; conv2 3x3 (planes -> "
                           "planes, stride, padding 1), bn2, ReLU; conv3 1x1 (planes -> 4 * "
                           "planes), bn3; add the shortcut (1x1 conv with stride + BN if the "
                           "shape changes); ReLU. No biases; create them in that order.")


def bottleneck_params(fn):
    """``fn(c_in, planes, stride)``: parameters of that bottleneck block (option B)."""
    def body(check):
        for c_in, planes, stride, _ in CASES + [(256, 64, 1, ""), (1024, 512, 2, "")]:
            block = Bottleneck(c_in, planes, stride, shortcut="B")
            want = count_params(block)
            got = check.call(fn, c_in, planes, stride)
            if got is CRASHED:
                continue
            bn = sum(p.numel() for n, p in block.named_parameters() if "bn" in n or ".1." in n)
            projection = count_params(block.shortcut)
            label = f"bottleneck_params({c_in}, {planes}, {stride})"
            if got == want:
                check.expect(True, "")
            elif got == want - bn:
                check.fail(f"{label} = {got:,}: add BatchNorm's 2 parameters per channel")
            elif projection and got == want - projection:
                check.fail(f"{label} = {got:,}: the shape changes here, so the shortcut is a "
                           f"projection (1x1 conv + BN) with {projection:,} parameters")
            else:
                check.fail(f"{label} returned {got!r}; expected {want:,}")

    return run_checks("Exercise: parameters of a bottleneck", body, answer=fn,
                      hint="1x1: c_in*planes; 3x3: 9*planes*planes; 1x1: planes*4*planes; "
                           "BN: 2 per channel after each; plus the projection when stride != 1 "
                           "or c_in != 4*planes.")
