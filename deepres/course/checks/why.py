"""Checkers for the exercises of chapter 7 (why residual networks train)."""
import copy
import math

import numpy as np
import torch
from torch import nn

from ...landscape import filter_normalized_direction
from ...lesion import deletable_blocks, delete_blocks, keeps_shape, path_length_counts
from ...models.cifar import plain, resnet_cifar
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
            if isinstance(got, (torch.Tensor, np.ndarray)):   # the numbers, however held
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
                      library=(path_length_counts,),
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
            for indices in ([], [0], [shape_keeping[-1]],   # and some in no order:
                            r.sample(shape_keeping, min(3, len(shape_keeping)))):
                label = f"remove_blocks(<{kind}-{depth}>, {indices})"
                before = {k: v.clone() for k, v in model.state_dict().items()}
                structure = repr(model)
                x = torch.randn(3, 1, 12, 12)
                want = delete_blocks(model, indices).eval()(x)
                given = copy.deepcopy(model)   # an answer may change it: the next case must not see it
                got = check.call(fn, given, list(indices), label=label)
                if got is CRASHED:
                    continue
                unchanged = (repr(given) == structure and all(
                    torch.equal(before[k], v) for k, v in given.state_dict().items()))
                check.expect(unchanged, f"{label} changed the model it was given: work on a "
                                        f"copy (copy.deepcopy(model)) and return that")
                if not check.expect(isinstance(got, nn.Module),
                                    f"{label} returned {type(got).__name__}; expected the "
                                    f"copied nn.Module"):
                    continue
                check.expect(got is not given, f"{label} returned the model it was given; "
                                               f"return a copy")
                if not check.expect(type(got) is type(model),
                                    f"{label} returned a {type(got).__name__}; expected a "
                                    f"copy of the whole model (a {type(model).__name__})"):
                    continue
                out = check.call(got.eval(), x, label=f"the model {label} returned")
                if out is CRASHED or check.tensor(out, f"the model {label} returned",
                                                  want) is None:
                    continue
                if not torch.allclose(out, want, atol=1e-5):
                    if _lesioned_gives(out, model, [i + 1 for i in indices], x):
                        check.fail(f"{label} deleted the blocks after the ones listed: "
                                   f"indices count from 0, as model.blocks[i] does")
                    elif _lesioned_gives(out, model, [i - 1 for i in indices], x):
                        check.fail(f"{label} deleted the blocks before the ones listed "
                                   f"(i - 1): the indices already count from 0, as "
                                   f"model.blocks[i] does; use them as they are")
                    else:
                        check.fail(f"the model {label} returned computes something else "
                                   f"than the model with exactly blocks {indices} replaced "
                                   f"by nn.Identity()")
                else:
                    check.expect(True, "")
            # one model, two calls: an answer that keeps a copy per model and reuses it
            # returns the first call's lesions again
            twice, x = copy.deepcopy(model), torch.randn(3, 1, 12, 12)
            label = f"remove_blocks(<{kind}-{depth}>, []) after remove_blocks(it, [0])"
            check.call(fn, twice, [0], label=label)
            got = check.call(fn, twice, [], label=label)
            if isinstance(got, nn.Module):
                out = check.call(got.eval(), x, label=f"the model {label} returned")
                want = model.eval()(x)
                if out is not CRASHED and check.tensor(out, label, want) is not None:
                    check.expect(torch.allclose(out, want, atol=1e-5),
                                 f"{label} still has block 0 removed: make a new copy at "
                                 f"every call")

    return run_checks("Exercise: deleting blocks", body, answer=fn, kind="function",
                      seed=seed, library=(delete_blocks,),
                      hint="copy first, then replace model.blocks[i] (an nn.Sequential "
                           "accepts item assignment) for each listed i.")


def _lesioned_gives(out, model, indices, x):
    """Whether ``out`` is the output for ``x`` of ``model`` with blocks ``indices``
    deleted (False if there are none, or one of them cannot be deleted)."""
    if not indices or not all(0 <= i < len(model.blocks) and keeps_shape(model.blocks[i])
                              for i in indices):
        return False
    return torch.allclose(out, delete_blocks(model, indices).eval()(x), atol=1e-5)


def _excess_kurtosis(values):
    z = values - values.mean()
    return (z.pow(4).mean() / z.pow(2).mean().pow(2) - 3).item()


def random_direction(fn, seed=None):
    """``fn(model, generator)``: a filter-normalised random direction (Li et al.): for each
    parameter of two or more dimensions, Gaussian noise drawn from ``generator``, each
    filter rescaled to the norm of the same filter of the weights; zero for the others.
    Any floating dtype is accepted (the exercise names none)."""
    def body(check):
        r = check.random
        for kind, depth in (("resnet", 8), ("plain", 8)):
            model = _net(kind, depth, r.randrange(1000))
            label = f"random_direction(<{kind}-{depth}>, generator)"
            before = {k: v.clone() for k, v in model.state_dict().items()}
            draw = r.randrange(1000)
            torch.manual_seed(r.randrange(1000))   # the global seed must not matter
            got = check.call(fn, model, torch.Generator().manual_seed(draw), label=label)
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
            directions = {}
            for name, p in params.items():
                value = got[name]
                if isinstance(value, torch.Tensor) and value.is_floating_point():
                    value = value.to(p.dtype)   # float64 is fine too
                d = check.tensor(value, f"{label}['{name}']", p.detach())
                if d is not None:
                    directions[name] = d.detach()
            if len(directions) == len(params):
                _filter_rules(check, label, params, directions)
                _randomness_rules(check, fn, model, label, directions, draw, r)

    return run_checks("Exercise: a filter-normalised direction", body, answer=fn,
                      kind="function", seed=seed, library=(filter_normalized_direction,),
                      hint="for a weight p of shape (C_out, ...), d[i] is a filter: multiply "
                           "it by p[i].norm() / d[i].norm(). Which parameters have only one "
                           "dimension?")


def _filter_rules(check, label, params, directions):
    """Zero for one-dimensional parameters; each filter at its weight filter's norm; noise,
    not the weights, and not one noise filter repeated."""
    for name, p in params.items():
        d, w = directions[name], p.detach()
        if p.dim() <= 1:
            check.expect(not d.any(), f"{label}['{name}'] is not zero: leave one-dimensional "
                                      f"parameters (biases, BatchNorm's) unperturbed")
            continue
        filters, targets = d.flatten(1).norm(dim=1), w.flatten(1).norm(dim=1)
        if p.dim() > 2:
            slices = d.flatten(2).norm(dim=2)   # one norm per (filter, input channel)
            one_norm = slices.mean(dim=1, keepdim=True).expand_as(slices)  # slices equalised
            per_channel = any(torch.allclose(slices, norms, rtol=1e-4, atol=1e-6) for norms in (
                w.flatten(2).norm(dim=2), targets[:, None].expand_as(slices), one_norm))
            if per_channel and d.shape[1] > 1:
                check.fail(f"{label}['{name}']: you normalised each input channel's slice "
                           f"(d[i, j]) on its own; Li et al. normalise each filter d[i], all "
                           f"its input channels together")
                continue
        if not torch.allclose(filters, targets, rtol=1e-4, atol=1e-6):
            if torch.allclose(d.norm(), w.norm(), rtol=1e-4):
                check.fail(f"{label}['{name}'] has the norm of the whole weight tensor, but "
                           f"not each filter the norm of its own filter: normalise filter by "
                           f"filter (d[i] for each i)")
            else:
                check.fail(f"{label}['{name}']: the norms of its filters (d[i]) are not those "
                           f"of the weight's filters (p[i])")
            continue
        noise = d.flatten(1) / filters.clamp(min=1e-12)[:, None]
        weights = w.flatten(1) / targets.clamp(min=1e-12)[:, None]
        if torch.allclose(noise, weights, atol=1e-4) or torch.allclose(noise, -weights,
                                                                         atol=1e-4):
            check.fail(f"{label}['{name}'] points along the weights themselves (or against "
                       f"them); draw Gaussian noise and only rescale it")
        elif len(noise) > 1 and torch.allclose(noise, noise[:1].expand_as(noise), atol=1e-6):
            check.fail(f"{label}['{name}']: every filter has the same noise; draw noise for "
                       f"the whole tensor (torch.randn(p.shape, generator=...))")
        else:
            check.expect(True, "")


def _randomness_rules(check, fn, model, label, directions, draw, r):
    """The noise is Gaussian, and comes from the generator given, nothing else: the same
    generator seed gives the same direction whatever the global seed; another, another."""
    noise = torch.cat([(d.flatten(1) / d.flatten(1).norm(dim=1, keepdim=True).clamp(min=1e-12)
                        * d[0].numel() ** 0.5).flatten()
                       for d in directions.values() if d.dim() > 1])
    if noise.numel() > 1000 and noise.std() > 0:
        flat = noise.flatten().double()
        kurtosis = _excess_kurtosis(flat)
        centred = flat - flat.mean()
        skew = ((centred ** 3).mean() / centred.pow(2).mean() ** 1.5).item()
        positive = (flat > 0).double().mean().item()
        distinct = torch.unique(flat).numel()
        check.expect(abs(kurtosis) < 0.6 and abs(skew) < 0.3 and 0.4 < positive < 0.6
                     and distinct > flat.numel() // 2,
                     f"{label}: the noise does not look Gaussian (excess kurtosis "
                     f"{kurtosis:.2f} and skewness {skew:.2f}, where Gaussian noise has 0 "
                     f"and 0; {positive:.0%} of it positive, where Gaussian noise has half; "
                     f"{distinct:,} distinct values of {flat.numel():,}): draw it with "
                     f"torch.randn")
        weights = [p for p in model.parameters() if p.dim() > 1]
        cosines = torch.stack([torch.nn.functional.cosine_similarity(
            d.flatten(1).double(), w.detach().flatten(1).double(), dim=1).mean()
            for d, w in zip((d for d in directions.values() if d.dim() > 1), weights)])
        check.expect(cosines.mean().abs() < 0.2,
                     f"{label}: the direction points along the weights (mean cosine "
                     f"{cosines.mean().item():.2f} with them, where random noise has about "
                     f"0): draw new noise, do not perturb the weights themselves")
    torch.manual_seed(r.randrange(1000) + 1000)
    again = check.call(fn, model, torch.Generator().manual_seed(draw), label=label)
    other = check.call(fn, model, torch.Generator().manual_seed(draw + 1), label=label)
    if again is CRASHED or other is CRASHED or not isinstance(again, dict) \
            or not isinstance(other, dict):
        return
    same = all(isinstance(again.get(n), torch.Tensor) and again[n].shape == d.shape
               and torch.allclose(again[n].to(d.dtype), d) for n, d in directions.items())
    if not check.expect(same, f"{label}: called twice with generators of the same seed, it "
                              f"gave two different directions: draw the noise from the "
                              f"generator given (torch.randn(..., generator=generator)), "
                              f"not from torch's global random state"):
        return
    varied = any(isinstance(other.get(n), torch.Tensor) and other[n].shape == d.shape
                 and d.any() and not torch.allclose(other[n].to(d.dtype), d)
                 for n, d in directions.items())
    check.expect(varied, f"{label}: generators of different seeds gave the same direction: "
                         f"the direction must be random, drawn from the generator given")
    # one generator, two calls (chapter 7 draws its two directions so): two directions
    generator = torch.Generator().manual_seed(draw)
    first = check.call(fn, model, generator, label=label)
    second = check.call(fn, model, generator, label=label)
    if isinstance(first, dict) and isinstance(second, dict):
        check.expect(any(isinstance(first.get(n), torch.Tensor) and
                         isinstance(second.get(n), torch.Tensor) and
                         first[n].shape == second[n].shape and d.any() and
                         not torch.allclose(first[n], second[n]) for n, d in directions.items()),
                     f"{label}: called twice with one generator, it gave the same direction "
                     f"twice: draw from the generator as it is (it moves on with every draw); "
                     f"do not re-seed it or make a new one")
