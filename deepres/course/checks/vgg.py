"""Checkers for the VGG chapter's exercises."""
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ...models.vgg import make_features as reference_features
from .compare import compare_modules
from .core import hint, run_checks  # noqa: F401 (hint: check.hint())


def stack_params(fn, seed=None):
    """``fn(channels, n_layers, kernel_size)``: weights of n stacked k x k convolutions
    with C input and C output channels each, biases not counted."""
    exercise = "Exercise: parameters of a stack"

    def body(check):
        r = check.random
        cases = [(64, 3, 3), (64, 1, 7)] + [(r.randint(1, 600), r.randint(1, 8),
                                             r.choice((1, 3, 5, 7, 9))) for _ in range(5)]
        for c, n, k in cases:
            want = n * k * k * c * c
            label = f"stack_params({c}, {n}, {k})"
            got = check.arithmetic(fn, c, n, k, label=label)
            if got is None:
                continue
            if got == want:
                check.expect(True, "")
            elif got == n * (k * k * c * c + c):
                check.fail(f"{label} = {got}: that counts the biases too; count the weights "
                           f"only")
            elif got == k * k * c * c:
                check.fail(f"{label} = {got}: that is one layer; there are {n}")
            elif got == n * k * c * c:
                check.fail(f"{label} = {got}: how many weights does one k x k kernel have?")
            else:
                check.fail(f"{label} returned {got}; expected {want}")

    return run_checks(exercise, body, answer=fn, kind="function", seed=seed,
                      hint="count the weights that connect one input channel to one output "
                           "channel in one layer first; then how many such pairs, and layers.")


def make_features(fn, seed=None):
    """``fn(config, in_channels)``: the VGG feature extractor for a configuration table."""
    def body(check):
        r = check.random
        configs = [([8, "M", 16, "M"], 3), ([4, 4, "M", 6], 1)]   # (in_channels not only 3)
        for _ in range(2):  # random tables: 1 to 3 stages of 1 to 3 convolutions
            config = []
            for _ in range(r.randint(1, 3)):
                config += [r.randint(2, 12) for _ in range(r.randint(1, 3))] + ["M"]
            if r.random() < 0.5:
                config.append(r.randint(2, 12))  # a table may end with a convolution
            configs.append((config, r.randint(1, 4)))
        for config, c_in in configs:
            what = f"make_features({config}, {c_in})"
            x = torch.randn(2, c_in, 15, 15)   # odd: a pool's rounding shows
            compare_modules(check, lambda: fn(config, c_in),
                            lambda: reference_features(config, c_in), [x], what=what)
            model = check.call(fn, config, c_in, label=what)
            if isinstance(model, nn.Module):  # (CRASHED was reported already)
                for m in model.modules():
                    if isinstance(m, nn.Conv2d):
                        check.expect(m.kernel_size == (3, 3) and m.padding in ((1, 1), "same"),
                                     f"{what}: every convolution should be 3x3 with padding 1 "
                                     f"(found kernel {m.kernel_size}, padding {m.padding})")
                    if isinstance(m, nn.MaxPool2d):
                        check.expect(m.kernel_size in (2, (2, 2)) and m.stride in (2, (2, 2)),
                                     f"{what}: max-pools should be 2x2 with stride 2")
                # a ReLU module used twice counts twice
                n_relu = sum(isinstance(m, nn.ReLU)
                             for _, m in model.named_modules(remove_duplicate=False))
                n_conv = sum(isinstance(m, nn.Conv2d) for m in model.modules())
                check.expect(n_relu == n_conv or not isinstance(model, nn.Sequential),
                             f"{what}: {n_conv} convolutions but "
                                                    f"{n_relu} ReLUs; each convolution is "
                                                    f"followed by a ReLU")

    return run_checks("Exercise: VGG from a table", body, answer=fn, kind="function",
                      seed=seed, library=(reference_features,),
                      hint="walk through the table once, remembering how many channels the "
                           "last layer produced: that is the next convolution's input.")


def conv_flops(fn, seed=None):
    """``fn(c_in, c_out, kernel_size, height, width)``: FLOPs of one convolution with stride
    1 and 'same' padding, counted as torch.utils.flop_counter counts them."""
    exercise = "Exercise: FLOPs of a convolution"

    def body(check):
        r = check.random
        cases = [(3, 64, 3, 224, 224)] + [
            (r.randint(1, 300), r.randint(1, 300), r.choice((1, 3, 5, 7)), r.randint(1, 80),
             r.randint(1, 80)) for _ in range(5)]
        for c_in, c_out, k, h, w in cases:
            # "meta" tensors have shapes but no data: counting costs no compute
            conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False, device="meta")
            with FlopCounterMode(display=False) as counter:
                conv(torch.empty(1, c_in, h, w, device="meta"))
            want = counter.get_total_flops()
            label = f"conv_flops{(c_in, c_out, k, h, w)}"
            got = check.arithmetic(fn, c_in, c_out, k, h, w, label=label)
            if got is None:
                continue
            if got == want:
                check.expect(True, "")
            elif got * 2 == want:
                check.fail(f"{label} = {got}: that is the number of multiply-adds; "
                           f"flop_counter counts each as 2 FLOPs")
            elif got == 2 * c_out * c_in * k * k * h * h or got == 2 * c_out * c_in * k * k * w * w:
                check.fail(f"{label} = {got}: the image is {h} high and {w} wide")
            else:
                check.fail(f"{label} returned {got}; flop_counter measures {want}")

    return run_checks(exercise, body, answer=fn, kind="function", seed=seed,
                      hint="how many output values are there, and how many multiply-adds "
                           "make each one? Then: how does flop_counter count a multiply-add?")
