"""Pretrained networks and transfer learning.

* ``zoo``: torchvision's own records of its ImageNet weights (accuracy, parameters,
  GFLOPS), which ship inside the package: no download.
* ``load_pretrained``: a torchvision model with its ImageNet weights if they are on this
  machine or can be downloaded, else with random weights and a message saying so.
* ``freeze``, ``new_head``, ``count_trainable``: adapting a network to a new task.
* ``class_subset``: a task made of some classes of a dataset, with few labels.
* ``fit_linear_probe``: a logistic regression on a frozen network's features, fitted to
  convergence (what the features separate, whatever an SGD schedule would reach).
* ``for_weights``: CIFAR-10 prepared as ImageNet weights expect it (their transforms()).
"""
import copy
import os
from dataclasses import replace

import torch
import torchvision
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

ZOO = ("vgg16", "vgg19", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
       "resnext50_32x4d", "densenet121")


def zoo(names=ZOO):
    """One row per (model, ImageNet weights) from torchvision's metadata: ``dict(model,
    weights, top1, top5, params, gflops, megabytes)``. torchvision's "GFLOPS" count
    multiply-adds (one per multiply-add), as the papers do."""
    rows = []
    for name in names:
        for weights in torchvision.models.get_model_weights(name):
            metrics = weights.meta["_metrics"].get("ImageNet-1K", {})
            if not metrics or metrics["acc@1"] != metrics["acc@1"]:   # NaN: no classifier
                continue
            rows.append(dict(model=name, weights=weights.name, top1=metrics["acc@1"],
                             top5=metrics["acc@5"], params=weights.meta["num_params"],
                             gflops=weights.meta["_ops"],
                             megabytes=weights.meta["_file_size"]))
    return rows


def weights_file(weights):
    """Where torch.hub keeps the file of ``weights`` (a torchvision weights enum)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))


def load_pretrained(name, weights="DEFAULT", download=False):
    """``(model, loaded)``: torchvision's model ``name`` with the ImageNet ``weights``
    (an enum member's name, or "DEFAULT"), ``loaded=True``; or, when the weights are not
    on this machine and ``download`` is off or fails, the same model with random weights
    (``weights=None``), ``loaded=False``, after a message saying so."""
    enum = torchvision.models.get_model_weights(name)
    chosen = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
    model = torchvision.models.get_model(name, weights=None)
    path = weights_file(chosen)
    reason = None
    if not os.path.isfile(path) and not download:
        reason = (f"they are not in {os.path.dirname(path)} and downloading is off "
                  f"(in Colab, on a GPU budget, or with download=True, they are downloaded)")
    else:
        try:
            state = chosen.get_state_dict(progress=False, check_hash=True)
            model.load_state_dict(state)
            print(f"{name}: loaded the {chosen.name} weights ({path})")
            return model, True
        except Exception as error:   # offline, a broken file, a firewall...
            reason = f"they could not be loaded ({type(error).__name__}: {error})"
    print(f"{name}: no pretrained weights - {reason}. Going on with random weights "
          f"(weights=None): every step below works, but the numbers are not those of a "
          f"pretrained network.")
    return model, False


def frozen_copy(bn):
    """A FrozenBatchNorm2d with the statistics and affine parameters of ``bn``."""
    frozen = FrozenBatchNorm2d(bn.num_features, eps=bn.eps)
    for key in ("weight", "bias", "running_mean", "running_var"):
        getattr(frozen, key).copy_(getattr(bn, key).detach())
    return frozen


def freeze(model, prefixes):
    """Freeze every parameter whose name starts with one of ``prefixes`` (e.g.
    ``["conv1", "bn1", "layer1"]``): no gradient, no update. The BatchNorm layers among
    them become ``FrozenBatchNorm2d``: they normalise with their stored statistics in
    training too (a BatchNorm in training mode would renormalise with each batch and
    overwrite its running statistics, even with ``requires_grad=False``). Returns the
    model (changed in place)."""
    prefixes = tuple(prefixes)

    def inside(name):
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    for name, module in list(model.named_modules()):
        if name and inside(name) and isinstance(module, nn.BatchNorm2d):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child,
                    frozen_copy(module))
    for name, p in model.named_parameters():
        if inside(name):
            p.requires_grad_(False)
    return model


def new_head(model, num_classes):
    """Replace the last fully connected layer (``fc`` of a ResNet or of this course's
    CIFAR networks) by a new, randomly initialised one with ``num_classes`` outputs."""
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def count_trainable(model):
    """(total, trainable) numbers of parameters. A ``FrozenBatchNorm2d`` keeps its
    weight and bias as buffers, not parameters; they count in the total (frozen), so the
    total does not change when a network is frozen."""
    params = list(model.parameters())
    frozen_bn = sum(m.weight.numel() + m.bias.numel() for m in model.modules()
                    if isinstance(m, FrozenBatchNorm2d))
    return (sum(p.numel() for p in params) + frozen_bn,
            sum(p.numel() for p in params if p.requires_grad))


def class_subset(data, classes, per_class=0, seed=0):
    """A task made of ``classes`` of ``data``, relabelled 0, 1, ...: every test image of
    those classes, and ``per_class`` training images of each (all of them for 0), drawn
    with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    keep = []
    for c in classes:
        index = (data.y_train == c).nonzero().flatten()
        if per_class:
            if per_class > len(index):
                raise ValueError(f"class {c} has only {len(index)} training images, "
                                 f"fewer than per_class={per_class}")
            index = index[torch.randperm(len(index), generator=generator)[:per_class]]
        keep.append(index)
    train_index = torch.cat(keep).sort().values
    test_index = torch.isin(data.y_test, torch.tensor(classes)).nonzero().flatten()
    relabel = torch.full((int(max(data.y_train.max(), data.y_test.max())) + 1,), -1)
    relabel[torch.tensor(classes)] = torch.arange(len(classes))
    return replace(data, x_train=data.x_train[train_index],
                   y_train=relabel[data.y_train[train_index]],
                   x_test=data.x_test[test_index], y_test=relabel[data.y_test[test_index]],
                   classes=tuple(data.classes[c] for c in classes),
                   spec={**data.spec, "classes": list(classes), "per_class": per_class,
                         "subset_seed": seed})


def transfer_variants(pretrained, num_classes, frozen_prefixes):
    """The four ways of training on the target task, as model builders: from scratch
    (the architecture, new random weights), a linear probe (only a new head trains),
    fine-tuning everything, and fine-tuning with ``frozen_prefixes`` frozen."""
    def scratch():
        model = copy.deepcopy(pretrained)
        for m in model.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        for m in model.modules():  # He initialisation, as the course's networks
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        return new_head(model, num_classes)

    def probe():
        model = new_head(copy.deepcopy(pretrained), num_classes)
        return freeze(model, [n for n, _ in model.named_children() if n != "fc"])

    def fine_tune():
        return new_head(copy.deepcopy(pretrained), num_classes)

    def fine_tune_frozen():
        return freeze(new_head(copy.deepcopy(pretrained), num_classes), frozen_prefixes)

    return {"from scratch": scratch, "linear probe": probe, "fine-tune all": fine_tune,
            "fine-tune, early layers frozen": fine_tune_frozen}


@torch.no_grad()
def _features(backbone, x, device, batch_size=500):
    """The inputs of ``backbone``'s last layer (``fc``) for the images ``x``, in
    evaluation mode, on the CPU."""
    body = copy.deepcopy(backbone).to(device).eval()
    body.fc = nn.Identity()
    return torch.cat([body(x[i:i + batch_size].to(device)).float().cpu()
                      for i in range(0, len(x), batch_size)])


def fit_linear_probe(backbone, data, device="cpu", weight_decay=1e-4, max_iter=500):
    """A linear probe fitted to convergence: a logistic regression (one linear layer,
    cross-entropy, L2 penalty ``weight_decay``) on the frozen features of ``backbone`` (its
    ``fc`` input, in evaluation mode), full-batch with L-BFGS. Returns
    ``dict(train_error, test_error)``: the first says whether the features can separate
    the training images at all, the second what they give on new ones."""
    f_train = _features(backbone, data.x_train, device)
    f_test = _features(backbone, data.x_test, device)
    torch.manual_seed(0)
    head = nn.Linear(f_train.shape[1], len(data.classes))
    optimiser = torch.optim.LBFGS(head.parameters(), max_iter=max_iter,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-9,
                                  tolerance_change=1e-12)

    def loss():
        optimiser.zero_grad()
        value = nn.functional.cross_entropy(head(f_train), data.y_train) \
            + weight_decay / 2 * head.weight.pow(2).sum()
        value.backward()
        return value

    optimiser.step(loss)
    with torch.no_grad():
        return dict(train_error=(head(f_train).argmax(1) != data.y_train).float().mean().item(),
                    test_error=(head(f_test).argmax(1) != data.y_test).float().mean().item())


def for_weights(weights, root=None, download=True):
    """CIFAR-10 prepared as ``weights`` (a torchvision weights enum member) expect their
    input: scaled to [0, 1] and normalised with the mean and standard deviation of their
    own ``transforms()`` (ImageNet's), not CIFAR-10's. (Their resize to 256 and crop to
    224 are left to the model: see ``deepres.course.experiments.imagenet_to_cifar``.)"""
    from .data import Data, load_cifar10_raw
    preprocess = weights.transforms()
    mean = torch.tensor(preprocess.mean).view(1, -1, 1, 1)
    std = torch.tensor(preprocess.std).view(1, -1, 1, 1)
    x_tr, y_tr, x_te, y_te, classes = load_cifar10_raw(root, download)

    def prepare(x):
        return (torch.as_tensor(x).float() / 255 - mean) / std

    return Data("cifar10", prepare(x_tr), torch.as_tensor(y_tr), prepare(x_te),
                torch.as_tensor(y_te), classes, True,
                dict(name="cifar10", normalised_as=weights.name))
