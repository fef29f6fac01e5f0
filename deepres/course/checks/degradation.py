"""Checkers for the degradation chapter's exercises."""
import numpy as np
import torch
from torch import nn

from ...measure import count_params, layer_grad_norms
from ...models.cifar import plain
from .compare import compare_modules
from .core import CRASHED, hint, run_checks  # noqa: F401


def _models():
    torch.manual_seed(0)
    return [plain(8, widths=(4, 8, 16), in_channels=1),
            nn.Sequential(nn.Flatten(), nn.Linear(196, 32), nn.ReLU(), nn.Linear(32, 10))]


def grad_norms(fn, seed=None):
    """``fn(model, x, y)``: the list of per-layer gradient norms, as layer_grad_norms."""
    def body(check):
        n = check.random.randint(8, 32)
        x, y = torch.randn(n, 1, 14, 14), torch.randint(0, 10, (n,))
        for model in _models():
            want = layer_grad_norms(model, x, y)
            label = "grad_norms(model, x, y)"
            got = check.call(fn, model, x, y, label=label)
            if got is CRASHED:
                continue
            if isinstance(got, np.ndarray):   # the same numbers as a tensor: fine
                got = torch.from_numpy(got)
            if isinstance(got, torch.Tensor) and got.dim() == 1:
                got = got.tolist() if len(got) <= len(want) else list(range(len(got)))
            if not isinstance(got, (list, tuple)):
                check.fail(f"{label} returned {'None' if got is None else 'a ' + type(got).__name__}"
                           f"; expected a list of numbers, one per layer")
                continue
            if len(got) != len(want):
                check.fail(f"you returned {len(got)} norms for a model with {len(want)} "
                           f"convolution and linear layers: one per layer weight "
                           f"(not biases, not BatchNorm)")
                continue
            numbers = [check.number(v, f"{label}[{i}]", integer=False) for i, v in enumerate(got)]
            if None in numbers:
                continue
            got = numbers
            ok = torch.allclose(torch.tensor(got), torch.tensor(want), rtol=1e-4, atol=1e-8)
            if ok:
                check.expect(True, "")
                again = check.call(fn, model, x, y, label="calling grad_norms twice")
                if again is not CRASHED:
                    check.expect(torch.allclose(torch.tensor([float(v) for v in again]),
                                                torch.tensor(want), rtol=1e-4),
                                 "a second call gives different norms: gradients "
                                 "accumulate; zero them first (model.zero_grad())")
            elif torch.allclose(torch.tensor(got), torch.tensor(want) ** 2, rtol=1e-4):
                check.fail("those are squared norms: take the square root (tensor.norm())")
            else:
                worst = max(range(len(want)), key=lambda i: abs(got[i] - want[i]))
                check.fail(f"layer {worst}: you got {got[worst]:.4g}, expected {want[worst]:.4g}")

    return run_checks("Exercise: per-layer gradient norms", body, answer=fn, kind="function",
                      seed=seed,
                      hint="after backward(), every layer's weight carries its gradient in "
                           ".grad; which layers count, and what happens to .grad on a second "
                           "call?")


def plain_net(fn, seed=None):
    """``fn(n)``: the plain CIFAR network of depth 6n+2 (3 input channels, 10 classes)."""
    def body(check):
        for n in (1, 3, check.random.choice((2, 4))):
            depth = 6 * n + 2
            what = f"plain_net({n})"
            model = check.call(fn, n, label=what)
            if model is CRASHED or not isinstance(model, nn.Module):
                check.expect(model is CRASHED, f"{what} should return an nn.Module")
                continue
            convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
            linears = sum(isinstance(m, nn.Linear) for m in model.modules())
            check.expect(convs + linears == depth,
                         f"{what} has {convs} convolutions and {linears} linear layers: "
                         f"depth {depth} means {depth - 1} convolutions and 1 linear layer")
            if n == 3:
                count = count_params(model)
                check.expect(round(count / 1e6, 2) == 0.27,
                             f"plain_net(3) has {count:,} parameters; Table 6 of the paper "
                             f"says 0.27M for depth 20")
            compare_modules(check, lambda: fn(n), lambda: plain(depth),
                            [torch.randn(2, 3, 32, 32)], what=what)

    return run_checks("Exercise: a plain network of depth 6n+2", body, answer=fn,
                      kind="function", seed=seed,
                      hint="count the layers first: 1 + 3 stages x 2n + 1. Which "
                           "convolutions halve the resolution, and what turns the last "
                           "feature map into 64 numbers?")
