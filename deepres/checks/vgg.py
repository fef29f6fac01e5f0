"""Checkers for the VGG chapter's exercises."""
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..models.vgg import make_features as reference_features
from .core import CRASHED, compare_modules, run_checks


def stack_params(fn):
    """``fn(channels, n_layers, kernel_size)``: weights of n stacked k x k convolutions
    with C input and C output channels each, biases not counted."""
    cases = [(64, 1, 3), (64, 2, 3), (64, 3, 3), (512, 3, 3), (64, 1, 7), (32, 1, 5), (8, 4, 5)]

    def body(check):
        for c, n, k in cases:
            got = check.call(fn, c, n, k)
            want = n * k * k * c * c
            if got is CRASHED:
                continue
            if got == want:
                check.expect(True, "")
            elif got == n * (k * k * c * c + c):
                check.fail(f"stack_params({c}, {n}, {k}) = {got}: that counts the biases too; "
                           f"count the weights only ({want})")
            elif got == k * k * c * c:
                check.fail(f"stack_params({c}, {n}, {k}) = {got}: that is one layer; "
                           f"there are {n}")
            elif got == n * k * c * c:
                check.fail(f"stack_params({c}, {n}, {k}) = {got}: a k x k kernel has k*k "
                           f"weights per input-output channel pair, not k")
            else:
                check.fail(f"stack_params({c}, {n}, {k}) returned {got!r}; expected {want}")

    return run_checks("Exercise: parameters of a stack", body,
                      hint="each layer has kernel_size * kernel_size * channels * channels weights.",
                      answer=fn)


def make_features(fn):
    """``fn(config, in_channels)``: the VGG feature extractor for a configuration table."""
    configs = [([8, "M", 16, "M"], 3), ([4, 4, "M", 8, 8, 8, "M"], 1), ([6, "M"], 2)]

    def body(check):
        for config, c_in in configs:
            what = f"make_features({config}, {c_in})"
            x = torch.randn(2, c_in, 16, 16)
            compare_modules(check, lambda: fn(config, c_in),
                            lambda: reference_features(config, c_in), [x], what=what)
            model = check.call(fn, config, c_in, label=what)
            if isinstance(model, nn.Module):  # (CRASHED was reported already)
                for m in model.modules():
                    if isinstance(m, nn.Conv2d):
                        check.expect(m.kernel_size == (3, 3) and m.padding == (1, 1),
                                     f"{what}: every convolution should be 3x3 with padding 1 "
                                     f"(found kernel {m.kernel_size}, padding {m.padding})")
                    if isinstance(m, nn.MaxPool2d):
                        check.expect(m.kernel_size in (2, (2, 2)) and m.stride in (2, (2, 2)),
                                     f"{what}: max-pools should be 2x2 with stride 2")
                n_relu = sum(isinstance(m, nn.ReLU) for m in model.modules())
                n_conv = sum(isinstance(m, nn.Conv2d) for m in model.modules())
                check.expect(n_relu == n_conv, f"{what}: {n_conv} convolutions but {n_relu} "
                                               f"ReLUs; each convolution is followed by a ReLU")

    return run_checks("Exercise: VGG from a table", body,
                      hint="loop over the table; for a number append Conv2d(in, out, 3, "
                           "padding=1) and ReLU and update in; for 'M' append MaxPool2d(2, 2).",
                      answer=fn)


def conv_flops(fn):
    """``fn(c_in, c_out, kernel_size, height, width)``: FLOPs of one convolution with stride
    1 and 'same' padding, counted as torch.utils.flop_counter counts them."""
    cases = [(3, 64, 3, 224, 224), (64, 64, 3, 224, 224), (512, 512, 3, 14, 14),
             (16, 32, 5, 28, 28), (1, 1, 1, 1, 1)]

    def body(check):
        for c_in, c_out, k, h, w in cases:
            # "meta" tensors have shapes but no data: counting costs no compute
            conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False, device="meta")
            with FlopCounterMode(display=False) as counter:
                conv(torch.empty(1, c_in, h, w, device="meta"))
            want = counter.get_total_flops()
            got = check.call(fn, c_in, c_out, k, h, w)
            if got is CRASHED:
                continue
            if got == want:
                check.expect(True, "")
            elif got * 2 == want:
                check.fail(f"conv_flops{(c_in, c_out, k, h, w)} = {got}: that is the number of "
                           f"multiply-adds; flop_counter counts each as 2 FLOPs ({want})")
            else:
                check.fail(f"conv_flops{(c_in, c_out, k, h, w)} returned {got!r}; "
                           f"flop_counter measures {want}")

    return run_checks("Exercise: FLOPs of a convolution", body,
                      hint="every output value (c_out * height * width of them) needs "
                           "c_in * k * k multiply-adds, and one multiply-add is 2 FLOPs.",
                      answer=fn)
