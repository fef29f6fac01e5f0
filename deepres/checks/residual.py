"""Checkers for the residual-blocks chapter's exercises."""
import torch
from torch import nn

from ..measure import count_params
from ..models.blocks import BasicBlock
from ..models.cifar import resnet_cifar
from .core import CRASHED, compare_modules, run_checks

BLOCK_CASES = [(8, 8, 1, "identity shortcut"), (8, 16, 2, "projection, stride 2"),
               (8, 16, 1, "projection, more channels"), (8, 8, 2, "projection, stride 2 only")]


def basic_block(cls):
    """``cls(c_in, c_out, stride)``: the basic block with option-B shortcuts."""
    def body(check):
        compare_blocks(check, cls, lambda c_in, c_out, stride: BasicBlock(
            c_in, c_out, stride, shortcut="B"), BLOCK_CASES)
        identity_when_silenced(check, cls, (8, 8, 1), channels=8)

    return run_checks("Exercise: the basic block", body, answer=cls,
                      hint="out = relu(bn1(conv1(x))); out = bn2(conv2(out)); then add "
                           "shortcut(x), where shortcut is a 1x1 conv (stride, no bias) + BN "
                           "if the stride or the channels change and the identity otherwise; "
                           "finally relu. Create conv1, bn1, conv2, bn2, shortcut in that order.")


def compare_blocks(check, cls, make_reference, cases):
    """compare_modules for a learner's block class on (c_in, c_out, stride, case) cases."""
    for c_in, c_out, stride, case in cases:
        what = f"your block({c_in}, {c_out}, stride={stride}) [{case}]"
        compare_modules(check, lambda: cls(c_in, c_out, stride),
                        lambda: make_reference(c_in, c_out, stride),
                        [torch.randn(2, c_in, 8, 8)], what=what)


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
    out = check.call(block.eval(), x, label="the block with its BN scales set to 0")
    if out is not CRASHED:
        check.expect(isinstance(out, torch.Tensor) and torch.allclose(out, x, atol=1e-6),
                     "with every BN scale at 0 the block should return its input (the "
                     "identity shortcut); yours does not - is the shortcut added before "
                     "the last ReLU?")


def option_a(fn):
    """``fn(x, c_out, stride)``: the option-A shortcut of x."""
    cases = [((2, 4, 8, 8), 8, 2), ((1, 16, 6, 6), 32, 2), ((3, 5, 4, 4), 5, 1),
             ((2, 3, 5, 5), 7, 1)]

    def body(check):
        for shape, c_out, stride in cases:
            x = torch.randn(*shape)
            label = f"option_a(x of shape {shape}, {c_out}, {stride})"
            got = check.call(fn, x, c_out, stride, label=label)
            if got is CRASHED:
                continue
            sub = x[:, :, ::stride, ::stride]
            want_shape = (shape[0], c_out, *sub.shape[2:])
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

    return run_checks("Exercise: the option-A shortcut", body, answer=fn,
                      hint="subsample with x[:, :, ::stride, ::stride], then append "
                           "c_out - c_in zero channels, e.g. with torch.nn.functional.pad "
                           "or torch.cat with torch.zeros.")


def resnet_params(fn):
    """``fn(n)``: the number of parameters of the CIFAR ResNet of depth 6n+2, option A."""
    def body(check):
        for n in (1, 3, 5, 9, 18):
            want = count_params(resnet_cifar(6 * n + 2))
            got = check.call(fn, n, label=f"resnet_params({n})")
            if got is CRASHED:
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

    return run_checks("Exercise: ResNet parameters by hand", body, answer=fn,
                      hint="count each 3x3 convolution (9 * c_in * c_out, no bias), each "
                           "BatchNorm (2 per channel) and the final layer (64 * 10 + 10); "
                           "the option-A shortcuts have no parameters.")
