"""Checkers for the exercises of chapter 7 (why residual networks train)."""
import math

import torch
from torch import nn

from ..lesion import deletable_blocks, delete_blocks, keeps_shape
from ..models.cifar import plain, resnet_cifar
from .core import CRASHED, hint, no_modules, run_checks  # noqa: F401


def path_counts(fn, seed=None):
    """``fn(n_blocks)``: the number of paths through k residual branches, k = 0..n."""
    exercise = "Exercise: counting paths"

    def body(check):
        r = check.random
        for n in [3, 1, 0] + r.sample(range(4, 40), 3):
            label = f"path_counts({n})"
            want = [math.comb(n, k) for k in range(n + 1)]
            with no_modules(exercise):
                got = check.call(fn, n, label=label)
            if got is CRASHED:
                continue
            if isinstance(got, torch.Tensor):
                got = got.tolist()
            if not isinstance(got, (list, tuple)):
                check.fail(f"{label} returned {type(got).__name__} {got!r:.40}; expected a "
                           f"list of {n + 1} numbers")
                continue
            shares = [c / 2 ** n for c in want]
            if (n > 0 and len(got) == n + 1 and all(isinstance(v, float) for v in got)
                    and all(math.isclose(v, w) for v, w in zip(got, shares))):
                check.fail(f"{label} returned shares of the paths; return how many paths")
                continue
            numbers = []
            for k, v in enumerate(got):
                numbers.append(check.number(v, f"{label}[{k}]"))
                if numbers[-1] is None:
                    break
            if None in numbers:
                continue
            if len(numbers) != n + 1:
                check.fail(f"{label} has {len(numbers)} items; expected {n + 1}, one for "
                           f"each k from 0 to {n} (a path can skip every block)"
                           if len(numbers) == n else
                           f"{label} has {len(numbers)} items; expected {n + 1}")
            elif numbers == want:
                check.expect(True, "")
            elif sum(numbers) != 2 ** n:
                check.fail(f"{label} = {numbers[:6]}{'...' if n > 5 else ''}: the counts "
                           f"add up to {sum(numbers)}, but there are 2**{n} = {2 ** n} "
                           f"paths in all")
            else:
                check.fail(f"{label} = {numbers[:6]}{'...' if n > 5 else ''}; expected "
                           f"{want[:6]}{'...' if n > 5 else ''}")

    return run_checks(exercise, body, answer=fn, kind="function", seed=seed,
                      hint="a path chooses, at each block, the branch or the shortcut. In "
                           "how many ways can it choose k branches out of n?")


def _net(kind, depth, seed):
    torch.manual_seed(seed)
    build = plain if kind == "plain" else resnet_cifar
    return build(depth, widths=(4, 8, 16), in_channels=1).eval()


def remove_blocks(fn, seed=None):
    """``fn(model, indices)``: a copy of the model with those blocks made identities."""
    def body(check):
        r = check.random
        for kind, depth in (("resnet", 20), ("plain", 14), ("resnet", 14)):
            model = _net(kind, depth, r.randrange(1000))
            shape_keeping = deletable_blocks(model)
            for indices in ([], [0], [shape_keeping[-1]],
                            sorted(r.sample(shape_keeping, min(3, len(shape_keeping))))):
                label = f"remove_blocks(<{kind}-{depth}>, {indices})"
                before = {k: v.clone() for k, v in model.state_dict().items()}
                structure = repr(model)
                got = check.call(fn, model, list(indices), label=label)
                if got is CRASHED:
                    continue
                unchanged = (repr(model) == structure and all(
                    torch.equal(before[k], v) for k, v in model.state_dict().items()))
                check.expect(unchanged, f"{label} changed the model it was given: work on a "
                                        f"copy (copy.deepcopy(model)) and return that")
                if not check.expect(isinstance(got, nn.Module),
                                    f"{label} returned {type(got).__name__}; expected the "
                                    f"copied nn.Module"):
                    continue
                check.expect(got is not model, f"{label} returned the model it was given; "
                                               f"return a copy")
                if not check.expect(type(got) is type(model),
                                    f"{label} returned a {type(got).__name__}; expected a "
                                    f"copy of the whole model (a {type(model).__name__})"):
                    continue
                x = torch.randn(3, 1, 12, 12)
                want = delete_blocks(model, indices).eval()(x)
                out = check.call(got.eval(), x, label=f"the model {label} returned")
                if out is CRASHED or check.tensor(out, f"the model {label} returned",
                                                  want) is None:
                    continue
                if not torch.allclose(out, want, atol=1e-5):
                    off_by_one = [i + 1 for i in indices if i + 1 < len(model.blocks)]
                    if (indices and len(off_by_one) == len(indices)
                            and all(keeps_shape(model.blocks[i]) for i in off_by_one)
                            and torch.allclose(out, delete_blocks(model, off_by_one)(x),
                                               atol=1e-5)):
                        check.fail(f"{label} deleted the blocks after the ones listed: "
                                   f"indices count from 0, as model.blocks[i] does")
                    else:
                        check.fail(f"the model {label} returned computes something else "
                                   f"than the model with exactly blocks {indices} replaced "
                                   f"by nn.Identity()")
                else:
                    check.expect(True, "")

    return run_checks("Exercise: deleting blocks", body, answer=fn, kind="function",
                      seed=seed,
                      hint="copy first, then replace model.blocks[i] (an nn.Sequential "
                           "accepts item assignment) for each listed i.")


def random_direction(fn, seed=None):
    """``fn(model, generator)``: a filter-normalised random direction (Li et al.)."""
    def body(check):
        r = check.random
        for kind, depth in (("resnet", 8), ("plain", 8)):
            model = _net(kind, depth, r.randrange(1000))
            label = f"random_direction(<{kind}-{depth}>, generator)"
            before = {k: v.clone() for k, v in model.state_dict().items()}
            got = check.call(fn, model, torch.Generator().manual_seed(r.randrange(1000)),
                             label=label)
            if got is CRASHED:
                continue
            check.expect(all(torch.equal(before[k], v) for k, v in model.state_dict().items()),
                         f"{label} changed the model's weights; a direction is a new tensor "
                         f"for each parameter, the model stays as it is")
            if not check.expect(isinstance(got, dict), f"{label} returned "
                                f"{type(got).__name__}; expected a dict {{name: tensor}}"):
                continue
            params = dict(model.named_parameters())
            missing = [n for n in params if n not in got]
            if not check.expect(not missing, f"{label} has no tensor for "
                                f"{', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}: "
                                f"one per name of model.named_parameters()"):
                continue
            for name, p in params.items():
                d = check.tensor(got[name], f"{label}['{name}']", p.detach())
                if d is None:
                    continue
                d = d.detach()
                if p.dim() <= 1:
                    check.expect(not d.any(), f"{label}['{name}'] is not zero: leave "
                                              f"one-dimensional parameters (biases, "
                                              f"BatchNorm's) unperturbed")
                    continue
                filters, targets = d.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1)
                if torch.allclose(filters, targets, rtol=1e-4, atol=1e-6):
                    noise = d.flatten(1) / filters.clamp(min=1e-12)[:, None]
                    weights = p.detach().flatten(1) / targets.clamp(min=1e-12)[:, None]
                    check.expect(not torch.allclose(noise, weights, atol=1e-4),
                                 f"{label}['{name}'] points along the weights themselves; "
                                 f"draw Gaussian noise and only rescale it")
                elif torch.allclose(d.norm(), p.detach().norm(), rtol=1e-4):
                    check.fail(f"{label}['{name}'] has the norm of the whole weight tensor, "
                               f"but not each filter the norm of its own filter: normalise "
                               f"filter by filter (d[i] for each i)")
                else:
                    check.fail(f"{label}['{name}']: the norms of its filters (d[i]) are not "
                               f"those of the weight's filters (p[i])")

    return run_checks("Exercise: a filter-normalised direction", body, answer=fn,
                      kind="function", seed=seed,
                      hint="for a weight p of shape (C_out, ...), d[i] is a filter: multiply "
                           "it by p[i].norm() / d[i].norm(). Which parameters have only one "
                           "dimension?")
