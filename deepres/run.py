"""Train chapters' runs outside the notebooks, into the run cache the book reads.

    python -m deepres.run --chapter 3 --budget paper          # in this process (a GPU or the CPU)
    python -m deepres.run --chapter 1 2 3 --jobs auto         # side by side: a process a core or a GPU
    torchrun --nproc_per_node=4 -m deepres.run --chapter 3    # each run over 4 GPUs

Each run is trained by ``deepres.train`` exactly as its page trains it, so the page then
loads it. On a CPU every run trains on one thread, as the book's runs do. CONTRIBUTING.md
says which way to use several cores, GPUs or machines.
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

from .course.budget import PROFILES, get_budget, pick_device
from .cpu import THREADS_ENV, num_threads
from .data import load_cifar10_raw, load_fashion_mnist_raw
from .course.experiments import CHAPTERS, chapter_runs, chapter_specs
from .measure import unit_seconds
from .course.planning import plan, share_out
from .runcache import CACHE_ENV, cache_dir, store_dir
from .timing import duration
from .specs import plan_specs, train_specs


def start_distributed():
    """Join the process group that ``torchrun`` describes (if any); returns the device
    this process trains on."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return pick_device()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        if local_rank >= gpus:
            sys.exit(f"deepres.run: this machine has {gpus} GPU(s), but torchrun started "
                     f"process {local_rank} on it (LOCAL_RANK counts from 0): run "
                     f"`torchrun --nproc_per_node={gpus} ...`, one process per GPU")
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        return torch.device("cuda", local_rank)
    dist.init_process_group("gloo")
    return torch.device("cpu")


def fetch_data(budget):
    """Find or download the budget's dataset once, before the processes that train read
    it: under ``torchrun`` process 0 of each machine does (``LOCAL_RANK`` 0), the others
    wait for it, so that no two processes unpack into the same folder at once."""
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        (load_cifar10_raw if budget.dataset == "cifar10" else load_fashion_mnist_raw)()
    if dist.is_initialized():
        dist.barrier()


def gpus():
    """The CUDA GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return [v.strip() for v in visible.split(",") if v.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def worker_env(i, device, folder):
    """The environment of ``--jobs``' process ``i``: the shared cache; on CUDA, one GPU
    of its own (the i-th visible one, in turn if there are more processes than GPUs)."""
    env = dict(os.environ, **{CACHE_ENV: str(folder.resolve())})
    if torch.device(device).type == "cuda":
        names = gpus()
        env["CUDA_VISIBLE_DEVICES"] = names[i % len(names)]
    return env


def cores():
    """The CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):   # Linux: what the process is allowed
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def train_in_processes(chapters, budget, jobs, device=torch.device("cpu"), reports=None):
    """Train the chapters' runs that are not stored in ``jobs`` processes (on a CPU, of one
    thread each; on CUDA, one GPU each), the runs that start from another's trained model
    in a second round; returns how many runs were trained. Each process's output goes to
    ``jobs-N.log`` in ``reports`` (a folder; default: a new temporary one), and what was
    done to ``jobs.json`` there (the book's Performance page shows it)."""
    reports = Path(reports or tempfile.mkdtemp(prefix="deepres-jobs-"))
    reports.mkdir(parents=True, exist_ok=True)
    names, on_cpu = " ".join(map(str, chapters)), device.type == "cpu"
    unit, used = None, 0   # the machine's speed (measured once there is work), processes
    start, trained, work = time.time(), 0, 0.0
    while True:
        with num_threads(1 if on_cpu else None):   # estimate each run as it will train
            todo, waiting, _ = plan(chapters, budget, device)
        if not todo:
            break
        if on_cpu and unit is None:
            unit = unit_seconds()
        n = min(jobs, len(todo))
        used = max(used, n)
        work += sum(todo.values()) / unit if on_cpu else 0.0
        size = (f"about {sum(todo.values()) / unit:,.0f} steps' work of the laptop "
                f"ResNet-56 on one thread (one takes {1000 * unit:.0f} ms here), in {n} "
                f"process(es) of one thread each" if on_cpu else f"in {n} process(es), "
                f"one GPU each")
        print(f"chapters {names}: {len(todo)} runs to train into {cache_dir()}: {size}: "
              f"about {duration(sum(todo.values()) / n)} by the estimates", flush=True)
        _run_workers(share_out(todo, n), chapters, budget, device, reports)
        trained += len(todo)
        if not waiting:
            break
    where = f"{cache_dir()} or {store_dir()}" if store_dir() else str(cache_dir())
    print(f"chapters {names}: {trained} runs trained in {duration(time.time() - start)}"
          if trained else f"chapters {names}: every run is in {where}: nothing to train",
          flush=True)
    (reports / "jobs.json").write_text(json.dumps(dict(
        chapters=list(chapters), budget=budget.name, runs=trained, jobs=used,
        seconds=time.time() - start, work=work, unit_ms=1000 * unit if unit else None)))
    return trained


def _run_workers(shares, chapters, budget, device, reports):
    """One ``--worker`` process for each list of keys in ``shares``; report progress."""
    folder, todo, start = cache_dir(), [k for share in shares for k in share], time.time()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as logs:
        workers = []
        for i, keys in enumerate(shares):
            keys_file = Path(tmp) / f"keys-{i}.json"
            keys_file.write_text(json.dumps(keys))
            log = logs.enter_context(open(reports / f"jobs-{i + 1}.log", "w"))
            command = [sys.executable, "-m", "deepres.run", "--budget", budget.name,
                       "--chapter", *map(str, chapters), "--worker", str(keys_file)]
            workers.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL,
                                            env=worker_env(i, device, folder)))
        done = 0
        while any(w.poll() is None for w in workers):
            time.sleep(2)
            now = sum((folder / f"{key}.pt").is_file() for key in todo)
            if now != done:
                done = now
                print(f"  {done} of {len(todo)} runs trained "
                      f"({duration(time.time() - start)})", flush=True)
    failed = [i + 1 for i, w in enumerate(workers) if w.returncode]
    if failed:
        logs = ", ".join(str(reports / f"jobs-{i}.log") for i in failed)
        raise RuntimeError(f"training process(es) {failed} failed: see {logs}")


def work(chapters, budget, device, keys_file):
    """A ``--jobs`` process: train the chapters' runs whose keys ``keys_file`` lists."""
    mine = set(json.loads(Path(keys_file).read_text()))
    for chapter in chapters:
        specs = chapter_specs(chapter, budget)
        planned = plan_specs(specs, device)
        train_specs({label: spec for label, spec in specs.items()
                     if planned[label][0] in mine}, device)


def train_here(chapters, budget, device, rank):
    """Train (or load) the chapters' runs in this process (under ``torchrun``, in all
    its processes at once): {chapter: {label: Run}}."""
    runs = {}
    world = dist.get_world_size() if dist.is_initialized() else 1
    for chapter in chapters:
        if rank == 0:
            print(f"chapter {chapter}: training into {cache_dir()} on {world} "
                  f"process(es)", flush=True)
        runs[chapter] = chapter_runs(chapter, budget, device)
        if rank == 0:
            trained = [r for r in runs[chapter].values() if not r.cached]
            print(f"chapter {chapter}: {len(runs[chapter])} runs in the cache, "
                  f"{len(trained)} trained now in "
                  f"{duration(sum(r.seconds for r in trained))}", flush=True)
    return runs


def _jobs(value):
    """``--jobs``' value: a positive number, or "auto"."""
    if value != "auto" and not (value.isdigit() and int(value) > 0):
        raise argparse.ArgumentTypeError(
            f"must be a number of processes or 'auto', not {value!r}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m deepres.run", description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", type=int, nargs="+", required=True, choices=CHAPTERS,
                        metavar="N", help="the chapter(s) whose runs to train (1 to 8)")
    parser.add_argument("--budget", choices=list(PROFILES), default=None,
                        help="default: $DEEPRES_BUDGET, else gpu on CUDA, laptop elsewhere")
    parser.add_argument("--jobs", type=_jobs, default=None,
                        help="train the runs side by side in this many processes: on a CPU of "
                             "one thread each ('auto': one per core), on CUDA of one GPU each "
                             "('auto': one per GPU). Default: in this process")
    parser.add_argument("--reports", default=None,
                        help="with --jobs: a folder for the processes' logs and jobs.json "
                             "(what was trained, for the book's Performance page)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # used by --jobs
    args = parser.parse_args(argv)
    device = start_distributed()
    rank = dist.get_rank() if dist.is_initialized() else 0
    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    quiet = rank != 0 or args.worker is not None
    budget = get_budget(args.budget, device=device, verbose=not quiet)
    if args.worker is not None:
        if device.type == "cpu":
            torch.set_num_threads(1)
        return work(args.chapter, budget, device, args.worker)
    if device.type == "cpu":   # one thread a run, as the book's runs (deepres.training)
        os.environ.setdefault(THREADS_ENV, "1")
    if dist.is_initialized() or args.jobs is not None:   # other processes will read it
        fetch_data(budget)
    if args.jobs is not None and dist.is_initialized():
        if rank == 0:
            print(f"--jobs is for one process, not under torchrun: training on {device} "
                  f"in these processes", flush=True)
    elif args.jobs is not None and device.type in ("cpu", "cuda"):
        auto = cores() if device.type == "cpu" else len(gpus())
        train_in_processes(args.chapter, budget, auto if args.jobs == "auto"
                           else int(args.jobs), device, args.reports)
    try:
        train_here(args.chapter, budget, device, rank)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
