"""``make gpu-check``: the GPU learner's path, exercised on a GPU in one go, no network.

    python -m devtools.gpu_check [--out DIR]   # on a CUDA GPU: at most about 8 minutes
    python -m devtools.gpu_check --dry     # on the CPU, small: what the tests run

Sections (each one's failure is recorded and the others still run):

* ``data``: CIFAR-10's pickles and Fashion-MNIST's IDX files, written here with random
  pixels (``devtools.fixtures``), read by the real loaders;
* ``networks``: every network the chapters train on the `gpu` budget, for ``STEPS``
  steps each on random CIFAR-size images: ms a step, the library's estimate (timed steps)
  against the measured time, this tool's T4 roofline (``devtools/gpu_estimate.py``), CUDA's
  peak memory;
* ``syncs``: how often one training step makes the host wait for the GPU (PyTorch's sync
  debug mode; runs of N and 2N steps, so that the evaluation's waits cancel out);
* ``chapter 2``: chapter 2's measurements on a model trained on the GPU, fed CPU tensors;
* ``command line``: ``python -m deepres.run`` end to end, again from the cache, then with
  ``--jobs auto`` (one process a GPU);
* ``resume``: a run interrupted after a checkpoint, started again;
* ``ddp``: DistributedDataParallel with SyncBatchNorm in 2 processes on one GPU (gloo)
  against one process.

It writes ``gpu-check.json`` and ``gpu-check.md`` into ``--out`` (default
``_build/reports``). ``--dry`` runs every section on the CPU with the `smoke` budget's
networks and a few steps (the DDP section then uses a network without BatchNorm, which
CPU processes cannot synchronise), so the script is tested where there is no GPU.
"""
import argparse
import copy
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import torch
from torch import nn

import deepres.training as training
from deepres.course.budget import PROFILES
from deepres.data import Data, load
from deepres.measure import count_params, layer_grad_norms, output_stds
from deepres.models import plain
from deepres.training import train
from devtools import gpu_estimate
from devtools.fixtures import write_cifar_fixture, write_fashion_fixture

ROOT = Path(__file__).resolve().parent.parent

STEPS = 200   # per network on a GPU (dry: 3)

DDP_SCRIPT = """
import json, sys
import torch, torch.distributed as dist
from devtools.gpu_check import ddp_model, random_data
from deepres.training import train

dist.init_process_group("gloo")
device = {device!r}
run = train(lambda: ddp_model(device), random_data((3, 32, 32), 512, augment=False),
            steps=20, batch_size=32, lr=0.05, eval_every=10, seed=2, device=device,
            name="ddp", progress=False)
if dist.get_rank() == 0:
    json.dump(run.history, open(sys.argv[1], "w"))
dist.destroy_process_group()
"""


def random_data(shape, n, augment=True, seed=0):
    """Random images of ``shape`` with random labels: for timing, not for learning."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g)
    return Data("random", x, y, x[: n // 5], y[: n // 5], tuple(map(str, range(10))), augment,
                dict(name="random", shape=list(shape), n=n, seed=seed))


def ddp_model(device):
    """A small CIFAR net with BatchNorm on a GPU (SyncBatchNorm); without it on the CPU."""
    if torch.device(device).type == "cuda":
        return plain(8, widths=(8, 16, 32))
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(32, 10))


class Report:
    def __init__(self):
        self.sections = {}

    def section(self, name, fn):
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            result = dict(ok=True, **(fn() or {}))
        except Exception:
            result = dict(ok=False, error=traceback.format_exc()[-3000:])
            print(result["error"], flush=True)
        result["seconds"] = round(time.perf_counter() - start, 1)
        self.sections[name] = result


def check_data(tmp):
    write_cifar_fixture(tmp / "cifar" / "cifar-10-batches-py", per_batch=200, n_test=200)
    write_fashion_fixture(tmp / "fashion", n_train=1200, n_test=600)
    cifar = load("cifar10", root=tmp / "cifar", download=False)
    fashion = load("fashion-mnist", root=tmp / "fashion", download=False)
    assert cifar.x_train.shape == (1000, 3, 32, 32) and cifar.augment
    assert fashion.x_train.shape == (1200, 1, 28, 28)
    return dict(cifar10=list(cifar.x_train.shape), fashion_mnist=list(fashion.x_train.shape))


def check_networks(device, budget, steps):
    tflops = gpu_estimate.reference_tflops()
    seen, rows = set(), []
    for chapter, runs in gpu_estimate.recorded_runs(budget).items():
        if chapter == 8:   # chapter 3's ResNet-20 with a five-class head: nothing new
            continue
        for model, shape, _, batch_size, _, name in runs:
            name = name.split(", seed")[0]
            if repr(model) in seen:
                continue
            seen.add(repr(model))
            data = random_data(shape, max(2 * batch_size, 1000), augment=shape[0] == 3)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            run = train(lambda: copy.deepcopy(model), data, steps=steps, batch_size=batch_size,
                        eval_every=steps, device=device, use_cache=False, progress=False,
                        name=f"chapter {chapter}: {name}")
            roofline = gpu_estimate.run_seconds(model, shape, steps, batch_size, steps, tflops)
            rows.append(dict(
                chapter=chapter, network=run.name, params=count_params(model),
                ms_per_step=1000 * (run.seconds - run.eval_seconds) / steps,
                estimate_s=run.estimate, measured_s=run.seconds,
                estimate_over_measured=run.estimate / run.seconds,
                t4_roofline_ms_per_step=1000 * roofline[1] / steps,
                peak_mb=torch.cuda.max_memory_allocated(device) / 2**20
                if device.type == "cuda" else None))
            print(f"  {run.name:<32} {rows[-1]['ms_per_step']:7.2f} ms/step, estimate/"
                  f"measured {rows[-1]['estimate_over_measured']:.2f}", flush=True)
    return dict(steps=steps, networks=rows)


def check_syncs(device, budget, steps):
    """Host waits in ``steps`` and ``2 * steps`` steps of the gpu budget's ResNet-20."""
    if device.type != "cuda":
        return dict(per_step=None, note="no CUDA device: nothing to count")
    model = plain(20, widths=budget.resnet_widths)
    data = random_data((3, 32, 32), 2000)
    counts = []
    for n in (steps, 2 * steps):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                train(lambda: copy.deepcopy(model), data, steps=n, batch_size=128,
                      eval_every=10 ** 9, device=device, use_cache=False, progress=False)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        counts.append(sum("synchroniz" in str(w.message) for w in caught))
    per_step = (counts[1] - counts[0]) / steps
    assert per_step == 0, f"{per_step:.2f} host synchronisations a training step"
    return dict(per_step=per_step, counts=counts, steps=[steps, 2 * steps])


def check_chapter2(device, budget):
    data = random_data((3, 32, 32), 512, augment=False)
    run = train(lambda: plain(20, widths=budget.resnet_widths), data, steps=5, batch_size=64,
                eval_every=5, device=device, use_cache=False, progress=False, name="plain-20")
    x, y = data.x_train[:128], data.y_train[:128]          # on the CPU, as in the chapter
    norms, stds = layer_grad_norms(run.model, x, y), output_stds(run.model, x)
    assert all(map(torch.isfinite, torch.tensor(norms + stds)))
    return dict(model_device=str(next(run.model.parameters()).device), layers=len(norms))


def check_command_line(device, tmp):
    env = dict(os.environ, DEEPRES_DATA=str(tmp / "fashion"),
               DEEPRES_CACHE=str(tmp / "cache"), PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "deepres.run", "--budget", "smoke", "--chapter"]
    outputs = []
    for args in (["2"], ["2"], ["3", "--jobs", "auto" if device.type == "cuda" else "1"]):
        result = subprocess.run(command + args, capture_output=True, text=True, env=env,
                                cwd=ROOT, timeout=600, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        outputs.append(result.stdout)
    assert "4 runs in the cache, 4 trained now" in outputs[0], outputs[0][-1000:]
    assert "4 runs in the cache, 0 trained now" in outputs[1], outputs[1][-1000:]
    assert "8 runs in the cache, 0 trained now" in outputs[2], outputs[2][-1000:]
    return dict(last_lines=[o.strip().splitlines()[-1] for o in outputs])


def check_resume(device, tmp):
    os.environ[training.CACHE_ENV] = str(tmp / "resume-cache")
    data = random_data((3, 32, 32), 1000)
    settings = dict(steps=30, batch_size=64, lr=0.05, eval_every=10, seed=3, device=device,
                    progress=False, name="resume")
    make = lambda: plain(8, widths=(8, 16, 32))   # noqa: E731
    whole = train(make, data, use_cache=False, **settings)
    real, calls = training.evaluate, []

    def lost_at_step_20(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("the runtime was lost")
        return real(*args, **kwargs)

    training.evaluate = lost_at_step_20
    try:
        train(make, data, **settings)
        raise AssertionError("the interruption did not happen")
    except KeyboardInterrupt:
        pass
    finally:
        training.evaluate = real
    resumed = train(make, data, **settings)
    assert resumed.history["step"] == whole.history["step"]
    worst = max(abs(a - b) for a, b in zip(resumed.history["loss"], whole.history["loss"]))
    if device.type == "cpu":
        assert worst == 0, f"the resumed run's losses differ by {worst}"
    return dict(largest_loss_difference=worst)


def check_ddp(device, tmp):
    where = "cuda:0" if device.type == "cuda" else "cpu"
    script = tmp / "ddp.py"
    script.write_text(DDP_SCRIPT.format(device=where))
    out = tmp / "ddp.json"
    env = dict(os.environ, OMP_NUM_THREADS="1",
               DEEPRES_CACHE=str(tmp / "ddp-cache"))
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc_per_node=2", str(script), str(out)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    ddp = json.loads(out.read_text())
    single = train(lambda: ddp_model(where), random_data((3, 32, 32), 512, augment=False),
                   steps=20, batch_size=32, lr=0.05, eval_every=10, seed=2, device=where,
                   use_cache=False, progress=False, name="one process")
    worst = max(abs(a - b) for key in ("loss", "test_loss")
                for a, b in zip(ddp[key], single.history[key]))
    assert worst < 1e-2, f"DDP differs from one process by {worst:.2g} in a loss"
    return dict(largest_loss_difference=worst)


def commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return ""


def write(report, out, meta):
    out.mkdir(parents=True, exist_ok=True)
    data = dict(meta, sections=report.sections)
    (out / "gpu-check.json").write_text(json.dumps(data, indent=1))
    lines = [f"# GPU check: {meta['device_name']}", "",
             f"{meta['date']}, commit {meta['commit'][:10]}, torch {meta['torch']}"
             f"{', dry run on the CPU' if meta['dry'] else ''}", "",
             "| section | result | seconds |", "|---|---|---|"]
    lines += [f"| {name} | {'ok' if s['ok'] else 'FAILED'} | {s['seconds']} |"
              for name, s in report.sections.items()]
    networks = report.sections.get("networks", {}).get("networks", [])
    if networks:
        lines += ["", "| network | params | ms/step | estimate / measured | T4 roofline ms/step "
                  "| peak MB |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['network']} | {r['params']:,} | {r['ms_per_step']:.2f} | "
                  f"{r['estimate_over_measured']:.2f} | {r['t4_roofline_ms_per_step']:.1f} | "
                  f"{'' if r['peak_mb'] is None else format(r['peak_mb'], '.0f')} |"
                  for r in networks]
    syncs = report.sections.get("syncs", {})
    lines += ["", f"Host synchronisations a training step: {syncs.get('per_step')}"]
    (out / "gpu-check.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true",
                        help="on the CPU, small (what the tests run)")
    parser.add_argument("--out", default=str(ROOT / "_build" / "reports"))
    args = parser.parse_args(argv)
    if not args.dry and not torch.cuda.is_available():
        sys.exit("gpu-check: no CUDA GPU here. On a GPU machine run `make gpu-check`; to "
                 "try the script on the CPU: python -m devtools.gpu_check --dry")
    device = torch.device("cpu" if args.dry else "cuda")
    budget = PROFILES["smoke" if args.dry else "gpu"]
    steps = 3 if args.dry else STEPS
    started = time.perf_counter()
    report = Report()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ[training.CACHE_ENV] = str(tmp / "runs")
        report.section("data", lambda: check_data(tmp))
        report.section("networks", lambda: check_networks(device, budget, steps))
        report.section("syncs", lambda: check_syncs(device, budget, 20))
        report.section("chapter 2", lambda: check_chapter2(device, budget))
        report.section("command line", lambda: check_command_line(device, tmp))
        report.section("resume", lambda: check_resume(device, tmp))
        report.section("ddp", lambda: check_ddp(device, tmp))
    meta = dict(device_name=torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU",
                date=datetime.date.today().isoformat(), commit=commit(),
                torch=torch.__version__, dry=args.dry,
                seconds=round(time.perf_counter() - started, 1))
    write(report, Path(args.out), meta)
    failed = [name for name, s in report.sections.items() if not s["ok"]]
    print(f"gpu-check: {len(report.sections) - len(failed)} of {len(report.sections)} "
          f"sections ok in {meta['seconds']:.0f} s; report in {args.out}/gpu-check.md"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
