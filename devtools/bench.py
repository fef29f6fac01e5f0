"""make bench: how fast the course's training loop is, and how a busy machine slows it.

1. The loop against a minimal hand-written PyTorch loop, on the same model, data, batch
   size and optimiser: images per second of each, measured in one process, alternating,
   as the median of ``--repeats`` runs. The library's time is its training steps only
   (``Run.seconds - Run.eval_seconds``): its evaluations are reported apart.
2. Step time with 1 and with 2 threads, idle and beside another CPU-bound process (a
   matrix multiply on 2 threads), each in a fresh process.

Nothing is asserted: the figures are printed (and written as JSON with ``--json``).
Timings on these 2-core machines move by 2x between runs; run nothing else meanwhile.
"""
import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from deepres.course.budget import get_budget
from deepres.course.experiments import cifar_data, densenet_networks
from deepres.models import plain, resnet_cifar
from deepres.cpu import num_threads
from deepres.training import cpu_threads, train


def models(budget, data):
    """The laptop-size networks of the chapters: a plain net, a ResNet, a DenseNet."""
    c = data.shape[0]
    w = budget.resnet_widths
    return {"plain-20": lambda: plain(20, widths=w, in_channels=c),
            "ResNet-20": lambda: resnet_cifar(20, widths=w, in_channels=c),
            "DenseNet-BC-40": next(make for name, make in densenet_networks(budget, data).items()
                                   if name.startswith("DenseNet"))}   # chapter 6's


def raw_loop(make_model, data, steps, batch_size, lr=0.1, seed=0):
    """Images per second of the plainest loop: random batches, forward, loss, backward,
    SGD step. One untimed step first, as the library's estimate warms its own up."""
    torch.manual_seed(seed)
    model = make_model().train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    n = len(data.y_train)

    def step():
        idx = torch.randint(0, n, (batch_size,), generator=g)
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def library_loop(make_model, data, steps, batch_size, seed=0):
    """(images per second of the training steps, seconds of evaluation) of ``train``."""
    with contextlib.redirect_stdout(io.StringIO()):   # its own report of the run
        run = train(make_model, data, steps=steps, batch_size=batch_size, lr=0.1,
                    eval_every=steps, seed=seed, device="cpu", use_cache=False,
                    progress=False, name="bench")
    return steps * batch_size / (run.seconds - run.eval_seconds), run.eval_seconds


def compare(budget, steps, repeats):
    # a subset is enough to time steps: 5,000 training images (those each evaluation
    # measures) and 1,000 test images keep the evaluations, timed apart, short
    data = cifar_data(replace(budget, train_size=min(5000, budget.train_size or 5000),
                              test_size=min(1000, budget.test_size or 1000)))
    rows = []
    for name, make in models(budget, data).items():
        lib, raw, evals = [], [], []
        for _ in range(repeats):   # alternate, so a slow spell hits both
            speed, eval_seconds = library_loop(make, data, steps, budget.batch_size)
            lib.append(speed)
            evals.append(eval_seconds)
            with num_threads(cpu_threads()):   # the threads the library's loop had
                raw.append(raw_loop(make, data, steps, budget.batch_size))
        rows.append({"model": name, "library_images_per_s": statistics.median(lib),
                     "raw_images_per_s": statistics.median(raw),
                     "ratio": statistics.median(lib) / statistics.median(raw),
                     "ratios": [a / b for a, b in zip(lib, raw)],
                     "eval_seconds": statistics.median(evals)})
    return rows


STEP_TIMER = """
import statistics, sys, time, torch, torch.nn.functional as F
from dataclasses import replace
torch.set_num_threads({threads})
torch.set_flush_denormal(True)
from deepres.course.budget import get_budget
from deepres.course.experiments import cifar_data
from deepres.models import resnet_cifar
budget = get_budget("laptop", verbose=False)
data = cifar_data(replace(budget, train_size=budget.batch_size, test_size=1))  # one batch
torch.manual_seed(0)
model = resnet_cifar(20, widths=budget.resnet_widths, in_channels=data.shape[0])
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
x, y = data.x_train[:budget.batch_size], data.y_train[:budget.batch_size]
times = []
for i in range({steps} + 5):
    start = time.perf_counter()
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
    if i >= 5:
        times.append(time.perf_counter() - start)
print(loss.item())
print(statistics.median(times))
"""

COMPETITOR = """
import torch
torch.set_num_threads(2)
a = torch.randn(1024, 1024)
while True:
    a = torch.tanh(a @ a / 1024)
"""


def step_time(threads, steps):
    """(median step time, the loss after the last step) in a fresh process."""
    code = STEP_TIMER.format(threads=threads, steps=steps)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    loss, seconds = out.stdout.strip().splitlines()[-2:]
    return float(seconds), float(loss)


# The machine's speed in one figure: the median time of a training step of the laptop
# ResNet-56 (the deepest network of the book's runs) on one thread, as the book's runs
# train (deepres.measure.unit_seconds). The build's first step states its work in these
# steps, so that any two machines can be compared: a machine's time for that work is
# about the work times its figure, over its cores. NATIVE: the machine's own kernels instead of the pinned AVX2 ones (deepres/cpu.py).
NATIVE = {"DEEPRES_NATIVE_CPU": "1", "ATEN_CPU_CAPABILITY": "", "ONEDNN_MAX_CPU_ISA": "",
          "MKL_CBWR": ""}


def machine_speed(repeats=3):
    """{'pinned': ms, 'native': ms}: ``deepres.measure.unit_seconds`` (the laptop ResNet-56's
    one-thread step time) with the pinned AVX2 kernels and with the machine's own,
    medians of ``repeats`` fresh processes taken in turns."""
    code = "from deepres.measure import unit_seconds; print(unit_seconds())"
    times = {"pinned": [], "native": []}
    for _ in range(repeats):
        for kind, env in (("pinned", {}), ("native", NATIVE)):
            out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                 text=True, check=True,
                                 env={**os.environ, **env})
            times[kind].append(float(out.stdout.strip().splitlines()[-1]))
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def contention(steps):
    """Median step time of ResNet-20 (laptop size) per thread count, idle and beside a
    2-thread matrix multiply in another process."""
    rows = []
    for busy in (False, True):
        competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR]) if busy else None
        try:
            if busy:
                time.sleep(2)
            for threads in (1, 2):
                seconds, loss = step_time(threads, steps)
                rows.append({"threads": threads, "busy": busy, "step_seconds": seconds,
                             "final_loss": loss})
        finally:
            if competitor:
                competitor.kill()
                competitor.wait()
    return rows


def cpu_native():
    out = subprocess.run([sys.executable, "-c", "import torch; "
                          "print(torch.backends.cpu.get_cpu_capability())"],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, **NATIVE})
    return out.stdout.strip()


def for_the_book(path):
    """What the book's Performance page shows, measured once for its build, in a process
    set up as a chapter is (``deepres.setup``: the build's budget and thread count): the
    loop against the plain loop, a busy machine, the GPU estimate. Written to ``path``."""
    from deepres import setup
    from devtools import gpu_estimate
    _, budget = setup(verbose=False)
    smoke = budget.name == "smoke"   # the tests' budget: only checks that the page runs
    steps, repeats = (5, 1) if smoke else (20, 3)
    result = dict(budget=budget.name, steps=steps, repeats=repeats,
                  loop=compare(budget if smoke else get_budget("laptop", verbose=False),
                               steps, repeats),
                  contention=contention(2 if smoke else 5),
                  gpu=dict(tflops=gpu_estimate.reference_tflops(),
                           chapters=gpu_estimate.estimates("gpu")))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-contention", action="store_true")
    parser.add_argument("--book", type=Path, help="measure what the book's Performance page "
                        "shows, and write it here (the build does)")
    args = parser.parse_args(argv)
    if args.book:
        return for_the_book(args.book)
    torch.set_flush_denormal(True)   # as deepres.setup() does in every chapter
    budget = get_budget("laptop", verbose=False)
    speed = machine_speed()
    print(f"Machine speed: {speed['pinned']:.1f} ms a step of the laptop ResNet-56 on one "
          f"thread (the book's unit of work; AVX2 kernels, as the book trains)\n"
          f"  with this CPU's own kernels ({cpu_native()}): {speed['native']:.1f} ms, so "
          f"the pins cost {speed['pinned'] / speed['native']:.2f}x\n", flush=True)
    result = {"threads": torch.get_num_threads(), "torch": torch.__version__,
              "resnet56_ms": speed["pinned"], "resnet56_native_ms": speed["native"],
              "loop": compare(budget, args.steps, args.repeats)}
    print(f"Training loop against a raw PyTorch loop (laptop sizes, batch "
          f"{budget.batch_size}, {args.steps} steps, median of {args.repeats}, "
          f"{result['threads']} threads):")
    print(f"{'model':16} {'library img/s':>14} {'raw img/s':>10} {'ratio':>6}  "
          f"{'each repeat':20} {'eval (s)':>8}")
    for r in result["loop"]:
        each = " ".join(f"{x:.2f}" for x in r["ratios"])
        print(f"{r['model']:16} {r['library_images_per_s']:14.0f} "
              f"{r['raw_images_per_s']:10.0f} {r['ratio']:6.2f}  {each:20} "
              f"{r['eval_seconds']:8.2f}")
    if not args.no_contention:
        result["contention"] = contention(args.steps)
        print("\nResNet-20 (laptop size), median step time, each in a fresh process:")
        idle = {r["threads"]: r["step_seconds"] for r in result["contention"] if not r["busy"]}
        for r in result["contention"]:
            state = "beside a 2-thread matmul" if r["busy"] else "idle"
            print(f"  {r['threads']} thread(s), {state:25}: {1000 * r['step_seconds']:6.1f} ms "
                  f"({r['step_seconds'] / idle[2]:.2f}x the idle 2-thread time)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
