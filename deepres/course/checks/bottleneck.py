"""Checkers for the bottleneck chapter's exercises."""
from ...measure import count_params
from ...models.blocks import Bottleneck
from .core import hint, run_checks  # noqa: F401 (hint: check.hint())
from .residual import compare_blocks, identity_when_silenced

CASES = [(64, 16, 1, "identity shortcut"), (32, 16, 1, "projection, more channels"),
         (64, 16, 2, "projection, stride 2"), (64, 32, 2, "projection, both")]


def bottleneck_block(cls, seed=None):
    """``cls(c_in, planes, stride)``: the bottleneck block, outputs 4 * planes channels."""
    def body(check):
        compare_blocks(check, cls, lambda c_in, planes, stride: Bottleneck(
            c_in, planes, stride, shortcut="B"), CASES)
        identity_when_silenced(check, cls, (64, 16, 1), channels=64)

    return run_checks("Exercise: the bottleneck block", body, answer=cls, kind="class",
                      seed=seed,
                      hint="three convolutions: which one reduces the width, which one "
                           "restores it (to how many channels?), and which one may change "
                           "the resolution? The shortcut has to match the output's shape.")


def bottleneck_params(fn, seed=None):
    """``fn(c_in, planes, stride)``: parameters of that bottleneck block (option B)."""
    exercise = "Exercise: parameters of a bottleneck"

    def body(check):
        r = check.random
        # fixed: no projection; stride without a change of channels; channels without a
        # stride (the cases that tell the usual mistakes apart, on every seed)
        cases = [(256, 64, 1), (1024, 512, 2), (64, 16, 2), (32, 16, 1)]
        for _ in range(4):
            planes = r.randint(1, 64)
            c_in = 4 * planes if r.random() < 0.4 else r.randint(1, 256)
            cases.append((c_in, planes, r.choice((1, 2))))
        for c_in, planes, stride in cases:
            block = Bottleneck(c_in, planes, stride, shortcut="B")
            want = count_params(block)
            label = f"bottleneck_params({c_in}, {planes}, {stride})"
            got = check.arithmetic(fn, c_in, planes, stride, label=label)
            if got is None:
                continue
            bn = sum(p.numel() for n, p in block.named_parameters() if "bn" in n or ".1." in n)
            projection = count_params(block.shortcut)
            if got == want:
                check.expect(True, "")
            elif got == want - bn:
                check.fail(f"{label} = {got:,}: add BatchNorm's 2 parameters per channel")
            elif projection and got == want - projection:
                what = (f"stride {stride} halves the resolution" if c_in == 4 * planes
                        else f"the channels change ({c_in} to {4 * planes})")
                check.fail(f"{label} = {got:,}: {what}, so the shortcut is a projection "
                           f"(1x1 conv + BN) with {projection:,} parameters")
            else:
                check.fail(f"{label} returned {got!r}; expected {want:,}")

    return run_checks(exercise, body, answer=fn, kind="function", seed=seed,
                      hint="add up the three convolutions, a BatchNorm after each, and ask "
                           "when the shortcut needs parameters of its own.")
