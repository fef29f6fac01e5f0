"""Counting parameters and FLOPs, layer by layer.

FLOPs are counted by ``torch.utils.flop_counter``, which counts one multiply-add as 2
FLOPs and counts only matrix multiplications and convolutions (not ReLU, pooling or
BatchNorm). Papers often quote multiply-adds and call them FLOPs: check before comparing.
"""
import os

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .timing import sync   # wait for a GPU before reading the clock


def count_params(model):
    """Number of parameters (all of them trainable in this course's models)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model, x):
    """FLOPs of one forward pass of ``model`` on the batch ``x``."""
    with FlopCounterMode(display=False) as counter:
        model.eval()(x)
    return counter.get_total_flops()


@torch.no_grad()
def layer_costs(model, x, kinds=(nn.Conv2d, nn.Linear)):
    """One row per layer of the given kinds, in forward order:
    ``dict(name, kind, params, flops, out_shape)``."""
    shapes, order = {}, []
    layers = {m: name for name, m in model.named_modules() if isinstance(m, kinds)}

    def hook(module, inputs, output):
        order.append(layers[module])
        shapes[layers[module]] = tuple(output.shape[1:])

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        with FlopCounterMode(display=False) as counter:
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    counts = counter.get_flop_counts()
    prefix = type(model).__name__ + "."
    modules = dict(model.named_modules())
    rows = []
    for name in order:
        flops = sum(counts.get(prefix + name, {}).values())
        rows.append(dict(name=name, kind=type(modules[name]).__name__,
                         params=count_params(modules[name]), flops=flops,
                         out_shape=shapes[name]))
    return rows


def on_model_device(model, *tensors):
    """``tensors`` moved to the device of ``model``'s parameters (a trained model may be
    on a GPU while the data that measures it is on the CPU)."""
    device = next(model.parameters(), torch.empty(0)).device
    moved = tuple(t.to(device) for t in tensors)
    return moved if len(moved) > 1 else moved[0]


def layer_grad_norms(model, x, y):
    """The L2 norm of the loss gradient with respect to the weight of each convolution
    and fully connected layer, in the order ``model.modules()`` lists them (the forward
    order, for this course's models). The loss is the cross-entropy on the batch (x, y);
    the model is left in training mode, as during training.

    The norms are computed in float64: for gradients of about 1e-20 and below, the
    squares that a float32 norm sums are smaller than float32 can hold (about 1e-38), and
    the norm would come out as 0 although the gradient is not zero."""
    x, y = on_model_device(model, x, y)
    model.train()
    model.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    norms = [m.weight.grad.double().norm().item() for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.zero_grad(set_to_none=True)
    return norms


@torch.no_grad()
def output_stds(model, x, modules=None):
    """The standard deviation of the output of each module in ``modules`` (default:
    every convolution and linear layer of ``model``, in the order ``model.modules()``
    lists them) for one forward pass of ``x`` in training mode: the scale of the
    forward signal, layer by layer."""
    if modules is None:
        modules = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    stds = {}
    handles = [m.register_forward_hook(
        lambda module, inputs, output: stds.__setitem__(module, output.double().std().item()))
        for m in modules]
    try:
        model.train()(on_model_device(model, x))
    finally:
        for h in handles:
            h.remove()
    return [stds[m] for m in modules]


def saved_bytes(model, x):
    """Bytes of the tensors that a forward pass of ``model`` on ``x`` keeps for the
    backward pass (autograd's saved tensors, each storage counted once, the parameters
    not counted): what training holds in memory between the two passes, whatever the
    allocator does."""
    storages = {}
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def keep(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        model(x)
    return sum(storages.values())


def train_step_memory(model_code, input_shape, repeats=3, device="cpu"):
    """Peak memory and time of forward + backward passes on ``device``, measured in a
    fresh Python process (``python -m deepres.memory_probe``). On the CPU: the process's resident memory (tracemalloc does not
    see torch's memory); on Linux its peak is reset just before the passes, elsewhere it
    is the lifetime peak. On a CUDA GPU: the CUDA allocator's peak, reset just before the
    passes, and times with the GPU synchronised (``peak_mb`` then counts the GPU memory
    the process holds once the model and the batch are there).

    ``model_code`` is a Python expression that builds the model, with everything in
    ``deepres.models`` in scope, e.g. ``"densenet_bc_cifar(40)"``, or a model itself
    (saved to a temporary file that the fresh process loads). Returns
    ``dict(peak_mb, step_mb, seconds, device)``: the peak memory, the part of it added by
    the passes, the median time of one pass (the first pass is slower: to compare times,
    prefer :func:`step_seconds`, which measures in one process), and what measured.
    """
    import json
    import subprocess
    import sys
    import tempfile

    if isinstance(model_code, nn.Module):
        with tempfile.NamedTemporaryFile(suffix=".pt", delete=False) as f:
            torch.save(model_code, f)
        try:
            return train_step_memory(f"torch.load({f.name!r}, weights_only=False)",
                                     input_shape, repeats, device)
        finally:
            os.unlink(f.name)
    try:  # a few seconds on a laptop; ten minutes means the process hangs
        command = [sys.executable, "-m", "deepres.memory_probe", model_code,
                   repr(tuple(input_shape)), str(repeats), str(torch.device(device)),
                   str(torch.get_num_threads())]
        result = subprocess.run(command, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=600)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"the measurement process did not finish in {e.timeout:.0f} s; "
                           f"what it printed:\n{(e.stderr or '')[-2000:]}") from None
    if result.returncode != 0:
        raise RuntimeError(f"the measurement process failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def step_seconds(models, x, repeats=3):
    """Median time of one forward + backward pass of each model on ``x``, measured in
    this process on the device each model is on (``x`` is copied there first; on a GPU
    the clock waits for the device), the models taking turns (so that a change in the
    machine's load affects all of them alike), after one untimed pass each."""
    import time

    def step(model):
        xm = on_model_device(model, x)
        model.zero_grad(set_to_none=True)
        sync(xm.device)
        start = time.perf_counter()
        model(xm).sum().backward()
        sync(xm.device)
        return time.perf_counter() - start

    for model in models:
        step(model.train())
    times = [[step(model) for model in models] for _ in range(repeats)]
    return [sorted(column)[len(column) // 2] for column in zip(*times)]


def default_init(model):
    """Re-initialise every convolution and linear layer with PyTorch's default
    (weights with variance 1/(3 fan_in): about sqrt(6) times smaller than He et al.'s,
    not corrected for ReLUs). Returns the model."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.reset_parameters()
    return model


def unit_seconds(repeats=9):
    """The machine's speed, the unit the build's work is stated in: the median time of one
    training step (forward and backward, batch 128) of the laptop budget's ResNet-56
    (widths 8, 16, 32; 14x14 inputs of one channel) on one thread, here and now."""
    from .cpu import num_threads
    from .models.cifar import resnet_cifar
    with num_threads(1):
        torch.manual_seed(0)
        model = resnet_cifar(56, widths=(8, 16, 32), in_channels=1)
        [seconds] = step_seconds([model], torch.randn(128, 1, 14, 14), repeats=repeats)
    return seconds
