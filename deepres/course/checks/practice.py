"""Checkers for the exercises of chapter 8 (pretrained networks and transfer)."""
import torch
import torchvision
from torch import nn

from ...models.cifar import resnet_cifar
from ...transfer import freeze
from .core import CRASHED, hint, run_checks  # noqa: F401


def _models(r):
    """Small networks with a ``fc`` head: a CIFAR ResNet and torchvision's ResNet-18."""
    torch.manual_seed(r.randrange(1000))
    yield "a CIFAR ResNet-8", resnet_cifar(8, widths=(4, 8, 16), in_channels=1), (2, 1, 12, 12)
    torch.manual_seed(r.randrange(1000))
    yield "torchvision's resnet18", torchvision.models.resnet18(), (2, 3, 32, 32)


def _tree(model):
    """{name: description} of every module outside the head, with its settings (a
    BatchNorm's momentum, a pooling's kind) and its training mode."""
    return {name: f"{m.extra_repr()} {type(m).__name__} training={m.training}"
            for name, m in model.named_modules()
            if name and name != "fc" and not name.startswith("fc.")}


def _switches(model):
    """Each parameter's requires_grad and each module's training mode."""
    return ({n: p.requires_grad for n, p in model.named_parameters()},
            {n: m.training for n, m in model.named_modules()})


def param_counts(fn, seed=None):
    """``fn(model)``: (total, trainable) parameters."""
    def body(check):
        r = check.random
        for what, model, _ in _models(r):
            for case in ("none frozen", "some frozen", "all frozen"):
                for i, p in enumerate(model.parameters()):
                    p.requires_grad_(case == "none frozen" or
                                     (case == "some frozen" and i % 3 == 0))
                params = list(model.parameters())
                want = (sum(p.numel() for p in params),
                        sum(p.numel() for p in params if p.requires_grad))
                label = f"param_counts(<{what}, {case}>)"
                switches = _switches(model)
                got = check.call(fn, model, label=label)
                if got is CRASHED:
                    continue
                check.expect(_switches(model) == switches,
                             f"{label} changed which parameters train, or the model's mode: "
                             f"counting must leave the model as it was")
                if not isinstance(got, (tuple, list)) or len(got) != 2:
                    check.fail(f"{label} returned {type(got).__name__} {got!r:.40}; "
                               f"expected a pair (total, trainable)")
                    continue
                total, trainable = (check.number(v, f"{label}[{i}]") for i, v in enumerate(got))
                if total is None or trainable is None:
                    continue
                if (total, trainable) == want:
                    check.expect(True, "")
                elif (trainable, total) == want:
                    check.fail(f"{label} = {tuple(got)}: the pair is (total, trainable), "
                               f"in that order")
                elif total == want[0]:
                    check.fail(f"{label}: trainable = {trainable:,}, expected {want[1]:,} "
                               f"(count only parameters with requires_grad set)")
                elif total == len(params):
                    check.fail(f"{label}: total = {total}, the number of parameter "
                               f"tensors; count their elements (p.numel())")
                elif total in (want[0] + sum(b.numel() for b in model.buffers()),
                               want[0] + sum(b.numel() for n, b in model.named_buffers()
                                             if "running" in n)):
                    check.fail(f"{label}: total = {total:,} counts BatchNorm's running "
                               f"statistics too; they are buffers (model.buffers()), not "
                               f"parameters")
                else:
                    check.fail(f"{label} = {tuple(got)}; expected {want}")

    return run_checks("Exercise: total and trainable parameters", body, answer=fn,
                      kind="function", seed=seed,
                      hint="model.parameters() gives tensors; p.numel() is how many "
                           "numbers a tensor holds, p.requires_grad whether it trains.")


def replace_head(fn, seed=None):
    """``fn(model, n)``: model.fc becomes nn.Linear(model.fc.in_features, n)."""
    def body(check):
        r = check.random
        for what, model, shape in _models(r):
            if "resnet18" in what:   # a model as a learner has it mid-way: partly frozen, evaluating
                for name, p in model.named_parameters():
                    p.requires_grad_(not name.startswith(("conv1", "bn1", "layer1")))
                model.eval()
                what += ", layer1 frozen, in evaluation mode"
            n = r.choice((2, 3, 7, 37))
            tree = _tree(model)
            before = {k: v.clone() for k, v in model.state_dict().items()
                      if not k.startswith("fc.")}
            trains = {k: p.requires_grad for k, p in model.named_parameters()
                      if not k.startswith("fc.")}
            mode = model.training
            in_features = model.fc.in_features
            label = f"replace_head(<{what}>, {n})"
            got = check.call(fn, model, n, label=label)
            if got is CRASHED:
                continue
            if isinstance(got, nn.Linear):
                check.fail(f"{label} returned the new head itself; put it in place "
                           f"(model.fc = ...) and return the model")
                continue
            if not check.expect(isinstance(got, nn.Module),
                                f"{label} returned {type(got).__name__}; return the model"):
                continue
            check.expect(got.training == mode,
                         f"{label} switched the model to {'training' if got.training else 'evaluation'}"
                         f" mode; replacing the head should leave the mode as it was")
            frozen = [k for k, p in got.named_parameters()
                      if k in trains and trains[k] and not p.requires_grad]
            check.expect(not frozen,
                         f"{label} froze {len(frozen)} parameter tensors of the backbone "
                         f"({frozen[0] if frozen else ''}...): replacing the head changes "
                         f"only the head; freezing is another step")
            thawed = [k for k, p in got.named_parameters()
                      if k in trains and not trains[k] and p.requires_grad]
            check.expect(not thawed,
                         f"{label} made {len(thawed)} frozen parameter tensors of the "
                         f"backbone train again ({thawed[0] if thawed else ''}...): replacing "
                         f"the head leaves the rest as it was")
            after = _tree(got)
            changed = [name for name, text in after.items() if tree.get(name) != text]
            check.expect(not changed and after.keys() == tree.keys(),
                         f"{label} changed the network outside its head "
                         f"({', '.join(changed[:2]) or 'its modules'}): only model.fc may change")
            fc = getattr(got, "fc", None)
            if not check.expect(isinstance(fc, nn.Linear),
                                f"{label}: the model's fc is {type(fc).__name__}; expected "
                                f"an nn.Linear"):
                continue
            check.expect(fc.in_features == in_features,
                         f"{label}: the new head takes {fc.in_features} inputs; the "
                         f"features arriving there are {in_features} (model.fc.in_features)")
            check.expect(fc.out_features == n,
                         f"{label}: the new head has {fc.out_features} outputs; expected {n}")
            after = got.state_dict()
            check.expect(all(k in after and torch.equal(v, after[k]) for k, v in before.items()),
                         f"{label} changed weights other than the head's: only model.fc "
                         f"may change")
            if fc.in_features == in_features and fc.out_features == n:
                out = check.call(got.eval(), torch.randn(*shape), label=f"the model {label} "
                                 f"returned")
                if out is not CRASHED:
                    check.expect(isinstance(out, torch.Tensor) and tuple(out.shape) ==
                                 (shape[0], n), f"the model {label} returned outputs "
                                 f"{tuple(getattr(out, 'shape', ()))}; expected ({shape[0]}, {n})")

    return run_checks("Exercise: a new head", body, answer=fn, kind="function", seed=seed,
                      hint="read the old head's in_features before you replace it.")


def freeze_up_to(fn, seed=None):
    """``fn(model, up_to)``: stem and layer1..up_to frozen, everything else trains."""
    def body(check):
        r = check.random
        for up_to in ["layer2"] + r.sample(["layer1", "layer3", "layer4"], 2):
            torch.manual_seed(r.randrange(1000))
            model = torchvision.models.resnet18()
            last = int(up_to[-1])
            frozen = ("conv1", "bn1", *[f"layer{i}" for i in range(1, last + 1)])
            label = f"freeze_up_to(<resnet18>, {up_to!r})"
            weights = {k: v.clone() for k, v in model.state_dict().items()}
            modes = _switches(model)[1]
            got = check.call(fn, model, up_to, label=label)
            if got is CRASHED:
                continue
            if got is not None and got is not model:
                if not check.expect(isinstance(got, nn.Module),
                                    f"{label} returned {type(got).__name__}; return the model"):
                    continue
                shared = {id(p) for p in got.parameters()} & {id(p) for p in model.parameters()}
                if not shared:
                    after = got.state_dict()
                    same = after.keys() == weights.keys() and all(
                        torch.equal(v, after[k]) for k, v in weights.items())
                    check.fail(f"{label} returned {'a copy of the model' if same else 'another network'}"
                               f"; freeze the model it was given, in place (the caller's model "
                               f"is the one that will train){'' if same else ', keeping its weights'}")
                    continue
            check.expect(_switches(model)[1] == modes,
                         f"{label} changed the model's training or evaluation mode; this "
                         f"exercise freezes with requires_grad only")
            now = model.state_dict()
            check.expect(all(k in now and torch.equal(v, now[k]) for k, v in weights.items()),
                         f"{label} changed the model's weights; freezing only stops them "
                         f"from training")
            wrong_frozen = [n for n, p in model.named_parameters()
                            if not p.requires_grad and not n.startswith(frozen)]
            wrong_trains = [n for n, p in model.named_parameters()
                            if p.requires_grad and n.startswith(frozen)]
            if wrong_trains:
                stages = list(dict.fromkeys(n.split(".")[0] for n in wrong_trains))
                check.fail(f"{label}: {', '.join(stages)} still train{'s' if len(stages) == 1 else ''}"
                           f" ({len(wrong_trains)} parameter tensors); the stem and every "
                           f"stage up to and including {up_to} should be frozen")
            if wrong_frozen:
                stages = list(dict.fromkeys(n.split(".")[0] for n in wrong_frozen))
                check.fail(f"{label}: {', '.join(stages)} {'is' if len(stages) == 1 else 'are'}"
                           f" frozen too; only the stem and the stages up to {up_to} should be")
            if not wrong_trains and not wrong_frozen:
                check.expect(True, "")

    return run_checks("Exercise: freezing up to a stage", body, answer=fn, kind="function",
                      seed=seed, library=(freeze,),
                      hint="the first part of a parameter's name (name.split('.')[0]) says "
                           "where it lives: conv1, bn1, layer1 ... layer4, fc.")
