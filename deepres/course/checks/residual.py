"""Checkers for the residual-blocks chapter's exercises."""
import torch
from torch import nn

from ...measure import count_params
from ...models.blocks import BasicBlock, PadShortcut, PreActBlock
from ...models.cifar import resnet_cifar
from ...training import Run
from .compare import compare_modules, computes_like
from .core import CRASHED, CheckFailed, hint, run_checks  # noqa: F401 (hint: check.hint())

BLOCK_CASES = [(8, 8, 1, "identity shortcut"), (8, 16, 2, "projection, stride 2"),
               (8, 16, 1, "projection, more channels"), (8, 8, 2, "projection, stride 2 only")]


def basic_block(cls, seed=None):
    """``cls(c_in, c_out, stride)``: the basic block with option-B shortcuts."""
    def body(check):
        compare_blocks(check, cls, lambda c_in, c_out, stride: BasicBlock(
            c_in, c_out, stride, shortcut="B"), BLOCK_CASES)
        identity_when_silenced(check, cls, (8, 8, 1), channels=8)

    return run_checks("Exercise: the basic block", body, answer=cls, kind="class", seed=seed,
                      hint="the shortcut must give the branch's shape: when does the "
                           "identity not fit? And where in Figure 2 does the last ReLU sit?")


def compare_blocks(check, cls, make_reference, cases):
    """compare_modules for a learner's block class on (c_in, c_out, stride, case) cases,
    with the channels scaled and the image size drawn at random."""
    scale = check.random.choice((1, 2))
    for c_in, c_out, stride, case in cases:
        c_in, c_out = c_in * scale, c_out * scale
        size = check.random.choice((6, 8, 10))
        what = f"your block({c_in}, {c_out}, stride={stride}) [{case}]"
        compare_modules(check, lambda: cls(c_in, c_out, stride),
                        lambda: make_reference(c_in, c_out, stride),
                        [torch.randn(2, c_in, size, size)], what=what)


def identity_when_silenced(check, cls, args, channels):
    """The shortcut must be there: with every BN scale at 0 the residual branch is 0, so a
    block with an identity shortcut passes its (non-negative) input through unchanged."""
    block = check.call(cls, *args, label=f"your block{args}")
    if not isinstance(block, nn.Module):
        return
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.zeros_(m.weight)
    x = torch.rand(2, channels, 8, 8)
    label = "the block with its BN scales set to 0"
    out = check.call(block.eval(), x, label=label)
    out = None if out is CRASHED else check.tensor(out, label, like=x)
    if out is not None:
        check.expect(torch.allclose(out, x, atol=1e-6),
                     "with every BN scale at 0 the block should return its input (the "
                     "identity shortcut); yours does not - is the shortcut added before "
                     "the last ReLU?")


class _ShortcutAfterActivation(PreActBlock):
    """A known mistake: the projection shortcut reads the pre-activated input."""

    def forward(self, x):
        a = nn.functional.relu(self.bn1(x))
        return self.conv2(nn.functional.relu(self.bn2(self.conv1(a)))) + self.shortcut(a)


class _StrideOnSecondConv(PreActBlock):
    """A known mistake: the stride on the second 3x3 convolution instead of the first."""

    def __init__(self, c_in, c_out, stride=1):
        super().__init__(c_in, c_out, stride)
        self.conv1.stride, self.conv2.stride = (1, 1), (stride, stride)


def preact_block(cls, seed=None):
    """``cls(c_in, c_out, stride)``: the pre-activation block of He et al. (2016b)."""
    def body(check):
        compare_blocks(check, cls, PreActBlock, BLOCK_CASES)   # (8, 8, 2): the stride alone
        torch.manual_seed(check.random.randrange(1000))
        reference, x = PreActBlock(8, 16, 2), torch.randn(2, 8, 8, 8)
        for variant, message in (
                (_ShortcutAfterActivation(8, 16, 2), "your projection shortcut reads the "
                 "pre-activated input (after BN and ReLU); this block's shortcut reads x "
                 "itself, as the identity shortcut does"),
                (_StrideOnSecondConv(8, 16, 2), "your block puts the stride on the second "
                 "convolution; it belongs on the first, as in the basic block")):
            if computes_like(lambda: cls(8, 16, 2), reference, variant, x):
                check.fail(f"your block(8, 16, stride=2): {message}", first=True)
        # nothing may follow the addition: with the branch silenced, the block is the
        # identity for any input, negative values included
        block = check.call(cls, 8, 8, 1, label="your block(8, 8, 1)")
        if isinstance(block, nn.Module):
            convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
            if convs:
                with torch.no_grad():
                    convs[-1].weight.zero_()
            x = torch.randn(2, 8, 6, 6)
            label = "your block(8, 8, 1) with its last convolution's weights at 0"
            out = check.call(block.eval(), x, label=label)
            out = None if out is CRASHED else check.tensor(out, label, like=x)
            if out is not None:
                check.expect(torch.allclose(out, x, atol=1e-6),
                             f"{label} should return its input exactly, negative values "
                             f"too: does anything come after the addition?")

    return run_checks("Exercise: the pre-activation block", body, answer=cls, kind="class",
                      seed=seed,
                      hint="in Figure 4(e) of the second paper, BN and ReLU come before each "
                           "convolution, and the addition is the block's last step.")


COMPARABLE_STEPS = 200   # runs shorter than this do not separate plain-56 from a ResNet


def block_in_experiment(train_fn, plain_run, budget, cls):
    """``train_fn()``: trains (or loads from the run cache) the 56-layer network of your
    ``cls`` blocks with chapter 2's recipe and returns its Run. It must be a Run built
    from your blocks and, on a budget of at least COMPARABLE_STEPS steps (laptop: the
    book's build separates plain-56 at 32.8% from pre-activation-56 at 11.0% training
    error), end more than 5 points below plain-56's training error. No time limit: the
    run trains (or resumes from its checkpoint) as long as it needs."""
    def body(check):
        run = check.call(train_fn, label="train_your_network()")
        if run is CRASHED:
            return
        kind = type(run).__name__
        if not check.expect(isinstance(run, Run),
                            f"train_your_network() should return the Run that cifar_run "
                            f"returns, not {'None' if run is None else 'a ' + kind}"):
            return
        yours = sum(isinstance(m, cls) for m in run.model.modules()) if isinstance(cls, type) else 0
        check.expect(yours == 27, f"the network should be built from 27 of your blocks "
                                  f"(depth 56 = 6 x 9 + 2); it has {yours}: pass block=your "
                                  f"class to cifar_run")
        if budget.steps < COMPARABLE_STEPS:
            print(f"(The {budget.name} budget's {budget.steps} steps are too short to "
                  f"compare the networks: the laptop and gpu budgets are long enough.)")
            return
        gap = plain_run.train_error - run.train_error
        check.expect(gap > 0.05, f"your network's training error, {run.train_error:.1%}, is "
                                 f"not clearly below plain-56's {plain_run.train_error:.1%}: "
                                 f"compare your block with the one in the text")

    try:   # a training run has no time limit: it saves checkpoints and resumes
        return run_checks("Exercise: your block against the degradation", body,
                          answer=train_fn, kind="function", limit=False, seeded=False,
                          hint="cifar_run takes the same arguments as in the experiment "
                               "above, and your class as block=.")
    except KeyboardInterrupt:
        raise CheckFailed("Exercise: your block against the degradation: stopped while "
                          "training. The run keeps its last checkpoint in the run cache: run "
                          "this cell again to resume it.") from None


def option_a(fn, seed=None):
    """``fn(x, c_out, stride)``: the option-A shortcut of x."""
    def body(check):
        r = check.random
        # (more than twice the channels: the zeros fill more than the input's width)
        cases = [((2, 4, 8, 8), 8, 2), ((3, 5, 4, 4), 5, 1), ((2, 3, 6, 6), 11, 2)]
        for _ in range(3):
            c_in, size = r.randint(1, 12), r.randint(3, 9)
            cases.append(((r.randint(1, 3), c_in, size, size), c_in + r.randint(0, 12),
                          r.choice((1, 2))))
        for shape, c_out, stride in cases:
            x = torch.randn(*shape, requires_grad=True) * 1  # not a leaf: may be changed
            sub = x[:, :, ::stride, ::stride].detach().clone()  # expected, before your code
            original = x.detach().clone()
            label = f"option_a(x of shape {shape}, {c_out}, {stride})"
            got = check.call(fn, x, c_out, stride, label=label)
            if got is CRASHED:
                continue
            if not check.expect(torch.equal(x.detach(), original), f"{label} changed its "
                                f"input x in place; a shortcut must leave x as it is"):
                continue
            if isinstance(got, torch.Tensor) and not got.requires_grad:
                check.fail(f"{label}: the output is not connected to x by autograd (.detach(), "
                           f"torch.no_grad() or numpy?); the gradient must flow through the "
                           f"shortcut")
                continue
            want_shape = (shape[0], c_out, *sub.shape[2:])
            if isinstance(got, torch.Tensor) and got.dtype != x.dtype:
                check.fail(f"{label} returned {got.dtype}; expected {x.dtype}, like x")
                continue
            if not isinstance(got, torch.Tensor) or tuple(got.shape) != want_shape:
                check.fail(f"{label} has shape {tuple(getattr(got, 'shape', ()))}; expected "
                           f"{want_shape}")
                continue
            # the subsampled input must sit in one block of channels, zeros elsewhere
            # (the paper does not say where the zeros go: any offset is right)
            offsets = [o for o in range(c_out - shape[1] + 1)
                       if torch.equal(got[:, o:o + shape[1]], sub)]
            if not offsets:
                pooled = nn.functional.avg_pool2d(x, stride) if stride > 1 else x
                if got.shape[2:] == pooled.shape[2:] and any(
                        torch.allclose(got[:, o:o + shape[1]], pooled)
                        for o in range(c_out - shape[1] + 1)):
                    check.fail(f"{label}: you averaged; option A keeps every stride-th "
                               f"pixel (x[:, :, ::stride, ::stride])")
                else:
                    check.fail(f"{label}: the input's channels, subsampled, should appear "
                               f"unchanged in the output")
                continue
            o = offsets[0]
            rest = torch.cat([got[:, :o], got[:, o + shape[1]:]], dim=1)
            check.expect(not rest.any(), f"{label}: the added channels must be zeros")

    return run_checks("Exercise: the option-A shortcut", body, answer=fn, kind="function",
                      seed=seed, library=(PadShortcut,),
                      hint="two steps: keep every stride-th pixel (slicing has a step), then "
                           "make up the missing channels with something that has no "
                           "parameters.")


def resnet_params(fn, seed=None):
    """``fn(n)``: the number of parameters of the CIFAR ResNet of depth 6n+2, option A."""
    exercise = "Exercise: ResNet parameters by hand"

    def body(check):
        for n in [3] + check.random.sample(range(1, 40), 4):
            want = count_params(resnet_cifar(6 * n + 2))
            label = f"resnet_params({n})"
            got = check.arithmetic(fn, n, label=label)
            if got is None:
                continue
            no_bn = want - sum(p.numel() for m in resnet_cifar(6 * n + 2).modules()
                               if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
            if got == want:
                check.expect(True, "")
            elif got == no_bn:
                check.fail(f"resnet_params({n}) = {got:,}: add the BatchNorm layers' "
                           f"parameters (a scale and a shift per channel)")
            elif got == want - 10:
                check.fail(f"resnet_params({n}) = {got:,}: the final layer has 10 biases too")
            else:
                check.fail(f"resnet_params({n}) returned {got!r}; expected {want:,}")

    return run_checks(exercise, body, answer=fn, kind="function", seed=seed,
                      hint="list the layers that have parameters, stage by stage: what does "
                           "each convolution, each BatchNorm and the last layer hold? Which "
                           "shortcuts have none?")
