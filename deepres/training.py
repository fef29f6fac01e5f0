"""One training loop, and a run cache so that the same run is never trained twice.

``train(make_model, data, ...)`` seeds everything, builds the model, and loads its run
(``deepres.runcache``) or trains it with a progress bar, checkpointing as it goes: an
interrupted run resumes and ends as if it had never stopped. The same loop runs on a
GPU without waiting for it, and under ``torchrun`` as DistributedDataParallel.
"""
import copy
import math
import os
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .cpu import THREADS_ENV, flush_denormal as flushing, kernels, num_threads
from .data import batches
from .runcache import CACHE_ENV, cache_dir, clear_cache, find, load, run_key, save  # noqa: F401
from .timing import duration, timed

TRAIN_EVAL_SIZE = 5000  # training images evaluated (in eval mode) at each evaluation
CHECKPOINT_SECONDS = 60  # a running run saves its state at least this often

@dataclass
class Run:
    """What a training run produced. ``history`` holds plain lists:

    per step: ``step``, ``loss``, ``error`` (on the training batch, in training mode);
    per evaluation: ``eval_step``; ``train_loss`` and ``train_error``, measured in
    evaluation mode on a fixed subset of the training set (the first
    ``TRAIN_EVAL_SIZE`` images), exactly as ``test_loss`` and ``test_error`` are on the
    test set, so the two can be compared; and ``running_error``, the mean of ``error``
    over the steps since the last evaluation. The running error is measured in training
    mode, on weights that were still changing, with dropout and batch statistics: it is
    what the progress bar shows, not a fair comparison with the test error.
    """
    name: str
    model: torch.nn.Module  # None for a book's run kept without weights (deepres.course.book_runs)
    history: dict
    seconds: float          # wall time of the training itself (of the original run if cached)
    device: str
    cached: bool = False
    config: dict = field(default_factory=dict)
    estimate: float = float("nan")  # what estimate_seconds predicted for the training
    eval_seconds: float = 0.0       # of ``seconds``, the part spent evaluating
    key: str = ""                   # its name in the run cache (deepres.runcache.run_key)

    @property
    def test_error(self):
        return self.history["test_error"][-1]

    @property
    def train_error(self):
        return self.history["train_error"][-1]


@torch.no_grad()
def evaluate(model, x, y, device, batch_size=500):
    """(mean loss, error rate) of ``model`` on tensors ``x``, ``y``."""
    model.eval()
    loss, wrong = 0.0, 0
    for i in range(0, len(y), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        with _autocast(device):
            logits = model(_memory_format(xb, device))
        loss += F.cross_entropy(logits.float(), yb, reduction="sum").item()
        wrong += (logits.argmax(1) != yb).sum().item()
    model.train()
    return loss / len(y), wrong / len(y)


def n_evaluations(steps, eval_every):
    """How many evaluations a run makes: every ``eval_every`` steps, and at the end."""
    return steps // eval_every + (steps % eval_every != 0)


def estimate_seconds(model, data, *, steps, batch_size, eval_every, device, repeats=3):
    """How long training ``model`` should take on ``device``: the median of ``repeats``
    timed training steps of a copy of it (after one untimed step), times ``steps``, plus
    the evaluations, each timed as forward passes of ``evaluate``'s batches of 500. The
    model and the random number generators are left as they were. Not counted: data
    augmentation and the progress bar (small), and the warm-up of a process's first run
    (its first steps set up kernels, so it can take longer than its estimate)."""
    device = torch.device(device)
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    timed_copy = copy.deepcopy(model).to(device).train()
    opt = torch.optim.SGD(timed_copy.parameters(), lr=0.0)
    x = _memory_format(data.x_train[:batch_size].to(device), device)
    y = data.y_train[:batch_size].to(device)

    def step():
        with _autocast(device):
            loss = F.cross_entropy(timed_copy(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    per_step = sorted(timed(step, device) for _ in range(repeats))[repeats // 2]
    x_eval = _memory_format(data.x_test[:500].to(device), device)
    with torch.no_grad(), _autocast(device):
        timed_copy.eval()
        timed_copy(x_eval)  # the first pass at a new batch size sets up its kernels: untimed
        per_batch = timed(lambda: timed_copy(x_eval), device) * 500 / len(x_eval)
    torch.set_rng_state(rng)
    if cuda_rng is not None:
        torch.cuda.set_rng_state(cuda_rng, device)
    images = len(data.y_test) + min(TRAIN_EVAL_SIZE, len(data.y_train))
    return steps * per_step + n_evaluations(steps, eval_every) * math.ceil(images / 500) * per_batch


def _autocast(device):
    # mixed precision only where it pays and is safe: CUDA
    return torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda")


def _channels_last(device):
    # channels_last speeds up convolutions on CUDA (tensor cores); on this course's CPUs
    # it made the laptop-size plain net and ResNet slower (measured with devtools/bench.py)
    return device.type == "cuda"


def _memory_format(x, device):
    return x.contiguous(memory_format=torch.channels_last) \
        if x.dim() == 4 and _channels_last(device) else x


def learning_rate(step, steps, lr, warmup=0):
    """He et al. (2016) schedule: lr/10 after 50% and again after 75% of training
    (32k and 48k of 64k iterations), with ``warmup`` steps at lr/10 first."""
    if step < warmup:
        return lr / 10
    return lr * (0.1 ** ((step >= steps // 2) + (step >= 3 * steps // 4)))


def cpu_threads(threads=None):
    """The CPU threads a run trains on: ``threads``, else ``$DEEPRES_THREADS`` (1 where
    the numbers must be those of any machine), else PyTorch's current count."""
    return threads or int(os.environ.get(THREADS_ENV) or 0) or torch.get_num_threads()


def train(make_model, data, *, steps, batch_size=128, lr=0.1, momentum=0.9,
          weight_decay=1e-4, warmup=0, eval_every=100, seed=0, device="cpu",
          name="run", use_cache=True, progress=True, threads=None, flush_denormal=True):
    """Train ``make_model()`` on ``data`` with SGD; returns a :class:`Run`.

    The model is built after seeding, so ``seed`` fixes the initial weights, the batch
    order and the augmentation. A run with the same key (``deepres.runcache.run_key``:
    the configuration, the model, the numerics version) is loaded from the run cache, or
    from the runs committed with the book, instead of trained again. On a CPU the run
    trains on ``threads`` threads (default: :func:`cpu_threads`) with denormals flushed to
    zero or not: both decide the last bits, so both are set here, for the run only, and
    are part of its key.
    """
    device = torch.device(device)
    threads = cpu_threads(threads) if device.type == "cpu" else None
    with num_threads(threads), flushing(flush_denormal):
        config = _config(data, device, threads, flush_denormal, steps=steps,
                         batch_size=batch_size, lr=lr, momentum=momentum,
                         weight_decay=weight_decay, warmup=warmup, eval_every=eval_every,
                         seed=seed)
        return _train(make_model, data, config, device=device, name=name,
                      use_cache=use_cache, progress=progress)


def _config(data, device, threads, flush_denormal, **recipe):
    """What a run's key holds besides its model: the recipe, the data, the device, the
    torch version and, on a CPU, what decides the last bits."""
    config = dict(recipe, device=device.type, data=data.spec, augment=data.augment,
                  torch=torch.__version__)
    if device.type == "cpu":   # the kernels, the threads and denormals decide the last bits
        config.update(cpu_kernels=kernels(), threads=threads, flush_denormal=flush_denormal)
    return config


def _train(make_model, data, config, *, device, name, use_cache, progress):
    """Build the model (seeded), then load its run or train it."""
    rank, world = _process()
    if config["batch_size"] % world:
        raise ValueError(f"the batch size ({config['batch_size']}) must split evenly over "
                         f"the {world} processes")
    torch.manual_seed(config["seed"])
    model = make_model()
    key = run_key(config, model)
    stored = _from_process_0(rank, world, lambda: find(key, name) if use_cache else None)
    if stored is not None:
        if stored["state_dict"] is None:   # a book's run kept without its weights
            model = None
        else:
            model.load_state_dict(stored["state_dict"])
            model = model.to(device)
        run = Run(name, model, stored["history"], stored["seconds"],
                  stored["device"], cached=True, config=config,
                  estimate=stored.get("estimate", float("nan")),
                  eval_seconds=stored.get("eval_seconds", 0.0), key=key)
        if rank == 0:   # (not flushed: a check cell that loads a run shows one output)
            print(_summary(run))
        return run
    return _fit(model, data, config, key, device=device, name=name, use_cache=use_cache,
                progress=progress)


HISTORY = ("step", "loss", "error", "eval_step", "running_error", "train_loss", "train_error",
           "test_loss", "test_error")


class _Training:
    """One run while it trains: the model, its optimiser, the history, and the losses and
    errors of the steps since the last copy from the device."""

    def __init__(self, model, data, config, device, name):
        self.model, self.config, self.device, self.name = model, config, device, name
        self.rank, self.world = _process()
        model.to(device)
        if device.type == "cuda":   # the batches' shape never changes: time cuDNN once
            torch.backends.cudnn.benchmark = True
        if _channels_last(device):
            model.to(memory_format=torch.channels_last)
        self.net = _distribute(model, device) if self.world > 1 else model   # what trains
        self.data = _on_device(data, device)
        # fused on CUDA: one kernel, and GradScaler's infinity check stays on the device
        self.opt = torch.optim.SGD(model.parameters(), lr=config["lr"],
                                   momentum=config["momentum"],
                                   weight_decay=config["weight_decay"],
                                   fused=device.type == "cuda" or None)
        self.scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
        self.history = {k: [] for k in HISTORY}
        self.losses, self.errors = [], []   # still on the device
        self.done, self.seconds_before, self.eval_seconds = 0, 0.0, 0.0

    def step(self, step, x, y):
        """One SGD step on the batch ``x``, ``y`` (the global batch: this process trains
        on its share)."""
        if self.world > 1:   # every process drew the same global batch: take this one's share
            per_process = len(y) // self.world
            own = slice(self.rank * per_process, (self.rank + 1) * per_process)
            x, y = x[own], y[own]
        for group in self.opt.param_groups:
            group["lr"] = learning_rate(step - 1, self.config["steps"], self.config["lr"],
                                        self.config["warmup"])
        x = _memory_format(x.to(self.device, non_blocking=True), self.device)
        y = y.to(self.device)
        with _autocast(self.device):
            logits = self.net(x)
            loss = F.cross_entropy(logits.float(), y)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.losses.append(loss.detach())
        self.errors.append((logits.argmax(1) != y).float().mean())

    def flush(self):
        """Copy the steps since the last flush into the history (one transfer); stop at
        the first non-finite loss."""
        losses, history = self.losses, self.history
        if not losses:
            return
        values = torch.stack(losses + self.errors).float()
        if self.world > 1:   # the global batch's loss and error: the mean over the processes
            dist.all_reduce(values)
            values /= self.world
        values = values.tolist()
        first = history["step"][-1] + 1 if history["step"] else 1
        for i, loss in enumerate(values[:len(losses)]):
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"{self.name}: the loss became {loss} at step {first + i}. The learning "
                    f"rate ({self.config['lr']}) is probably too high for this model; try a "
                    "smaller one or a warmup.")
        history["step"].extend(range(first, first + len(losses)))
        history["loss"].extend(values[:len(losses)])
        history["error"].extend(values[len(losses):])
        losses.clear()
        self.errors.clear()

    def evaluate(self, step):
        """Measure the training subset and the test set (in evaluation mode) after ``step``."""
        self.flush()
        recent = self.history["error"][-self.config["eval_every"]:]
        start = time.perf_counter()
        train_loss, train_error = evaluate(self.model, self.data.x_fit, self.data.y_fit,
                                           self.device)
        test_loss, test_error = evaluate(self.model, self.data.x_test, self.data.y_test,
                                         self.device)
        self.eval_seconds += time.perf_counter() - start
        for name, value in zip(HISTORY[3:], (step, sum(recent) / len(recent), train_loss,
                                             train_error, test_loss, test_error)):
            self.history[name].append(value)

    def checkpoint(self, step, seconds):
        """Everything a resumed run needs, after ``step`` and ``seconds`` of training."""
        self.flush()
        state = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                 "scaler": self.scaler.state_dict(), "rng": torch.get_rng_state(),
                 "history": self.history, "step": step, "seconds": seconds}
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def resume(self, state):
        """Go on from a checkpoint: the weights, the optimiser, the random numbers."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.history, self.done = state["history"], state["step"]
        self.seconds_before = state["seconds"]


def _fit(model, data, config, key, *, device, name, use_cache, progress):
    """Train ``model`` (resuming from its checkpoint if there is one) and store the run."""
    steps, batch_size, eval_every = config["steps"], config["batch_size"], config["eval_every"]
    run = _Training(model, data, config, device, name)
    rank, world = run.rank, run.world
    estimate = estimate_seconds(model, run.data, steps=steps, batch_size=batch_size,
                                eval_every=eval_every, device=device)
    path = cache_dir() / f"{key}.pt"
    checkpoint = path.with_name(f"{key}.checkpoint.pt")
    state = _from_process_0(rank, world, lambda: load(checkpoint, name) if use_cache else None)
    if state is not None:
        run.resume(state)
        estimate = estimate * (steps - run.done) / steps
        _say(rank, f"{name}: resuming from the checkpoint at step {run.done:,} of {steps:,}; "
                   f"the rest should take about {duration(estimate)} on {device.type}")
    else:
        where = f"{world} processes on {device.type}" if world > 1 else device.type
        _say(rank, f"{name}: not in the run cache; training {steps:,} steps of batch "
                   f"{batch_size} on {where} should take about {duration(estimate)}")
    start = last_saved = time.perf_counter()
    bar = tqdm(batches(run.data, batch_size, steps, config["seed"], start=run.done),
               total=steps, initial=run.done, desc=name,
               disable=not progress or rank != 0, mininterval=1.0)
    run.net.train()
    for step, (x, y) in enumerate(bar, start=run.done + 1):
        run.step(step, x, y)
        if step % eval_every == 0 or step == steps:
            run.evaluate(step)
            bar.set_postfix(train_err=f"{run.history['train_error'][-1]:.3f}",
                            test_err=f"{run.history['test_error'][-1]:.3f}")
        # (by the clock only in one process: the processes must flush at the same steps)
        if use_cache and step < steps and (step % eval_every == 0 or world == 1 and
                                           time.perf_counter() - last_saved > CHECKPOINT_SECONDS):
            state = run.checkpoint(step, run.seconds_before + time.perf_counter() - start)
            if rank == 0:
                save(state, checkpoint)
            last_saved = time.perf_counter()
    bar.close()
    run.flush()
    seconds = run.seconds_before + time.perf_counter() - start
    model.to(memory_format=torch.contiguous_format)
    if use_cache and rank == 0:
        weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        save({"history": run.history, "state_dict": weights, "seconds": seconds,
              "device": device.type, "estimate": estimate,
              "eval_seconds": run.eval_seconds}, path)
        checkpoint.unlink(missing_ok=True)
    if world > 1:
        dist.barrier()   # the others return once process 0 has written the cache
    done = Run(name, model, run.history, seconds, device.type, cached=False, config=config,
               estimate=estimate, eval_seconds=run.eval_seconds, key=key)
    _say(rank, _summary(done))
    return done


def _process():
    """(rank, world size) of this process in torch.distributed's group, or (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _from_process_0(rank, world, read):
    """``read()`` done by process 0, its result sent to every process: one decision for all
    (two processes reading the cache by themselves could disagree, and then wait for each
    other for ever in a collective)."""
    if world == 1:
        return read()
    sent = [read() if rank == 0 else None]
    dist.broadcast_object_list(sent, src=0)
    return sent[0]


def _say(rank, text):
    if rank == 0:
        print(text, flush=True)


def _distribute(model, device):
    """DistributedDataParallel, with BatchNorm synchronised over the processes (GPUs)."""
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[device.index])
    if has_bn:
        raise ValueError(
            "a distributed run on CPUs cannot synchronise BatchNorm (PyTorch supports "
            "SyncBatchNorm only on GPUs), so it would not be the single-process run: "
            "run it in one process, or on GPUs")
    return DistributedDataParallel(model)


def _on_device(data, device):
    """``data`` with its tensors on a CUDA device if they fit in a quarter of its free
    memory (batches, augmentation and evaluation then run there), else as it is; and
    ``x_fit``/``y_fit``, the fixed training subset that each evaluation measures."""
    moved = copy.copy(data)
    tensors = ("x_train", "y_train", "x_test", "y_test")
    size = sum(getattr(data, t).nbytes for t in tensors)
    if device.type == "cuda" and size < torch.cuda.mem_get_info(device)[0] / 4:
        for t in tensors:
            setattr(moved, t, getattr(data, t).to(device))
    moved.x_fit, moved.y_fit = moved.x_train[:TRAIN_EVAL_SIZE], moved.y_train[:TRAIN_EVAL_SIZE]
    return moved


def _summary(run):
    cached = ", cached" if run.cached else ""
    return (f"{run.name}: {run.history['step'][-1]} steps in {run.seconds:.0f} s "
            f"({run.device}{cached}); error: train {run.train_error:.2%}, "
            f"test {run.test_error:.2%}")
