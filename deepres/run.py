"""Train chapters' runs outside the notebooks, into the run cache the book reads.

    python -m deepres.run --chapter 2 --budget paper            # one GPU (or the CPU)
    python -m deepres.run --chapter 1 2 3 --budget gpu --jobs auto  # every GPU: runs side by side
    torchrun --nproc_per_node=4 -m deepres.run --chapter 2 --budget paper   # 4 GPUs, one run
    python -m deepres.run --chapter 1 2 3 4 5 6 7 --jobs auto   # every core of a CPU

Which way to use several GPUs: the chapters train 4 to 26 independent runs each, so
``--jobs`` (one process a GPU, each training whole runs) is close to N times as fast on
one machine. ``torchrun`` splits every batch of 128 over the GPUs and synchronises
BatchNorm at every layer: worth it only for one long run that must finish sooner.

Each run is trained with ``deepres.train``, exactly as the page trains it, so the page
then loads it from the cache instead of training. Under ``torchrun`` (one process per
GPU, on one machine or many), every run is trained with PyTorch's
DistributedDataParallel: each process takes its share of every batch of the global batch
size, and the gradients are averaged, so the run is the single-process run of the same
batch size, to within float rounding (BatchNorm is synchronised across the processes
on GPUs). Process 0 writes the cache. Point ``DEEPRES_CACHE`` at a folder that every
machine sees; by default every process of one machine shares ``~/.cache/deepres/runs``,
so the book build loads what this command trained.

On a CPU, small networks use two cores poorly (measured here: a laptop-size ResNet-56
step took 1.5x as long on one thread as on two), so ``--jobs N`` trains whole runs side
by side instead: N processes of one thread each, the longest runs first. A run's numbers
depend on the thread count (the sums are split differently), not on the number of
processes: with one thread per run they are the same on any number of cores. Building
the book does this first (``_ext/prefill.py``), with ``--jobs auto``: one process per core.
On CUDA GPUs ``--jobs`` starts one process per GPU (``auto``: every GPU it may use), each
seeing one GPU, with PyTorch's own thread count.

The dataset is found or downloaded once, before any other process starts (under
``torchrun``: by process 0 of each machine, while the others wait).
"""
import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
import torch.distributed as dist

from . import training
from .budget import BOOK_BUDGET, PROFILES, get_budget, pick_device
from .data import load_cifar10_raw, load_fashion_mnist_raw
from .experiments import CHAPTERS, chapter_runs
from .cpu import num_threads
from .runcache import cache_dir, store_dir
from .timing import duration


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
    env = dict(os.environ, DEEPRES_CACHE=str(folder.resolve()))
    if torch.device(device).type == "cuda":
        names = gpus()
        env["CUDA_VISIBLE_DEVICES"] = names[i % len(names)]
    return env


def cores():
    """The CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):   # Linux: what the process is allowed
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def plan(chapters, budget, device):
    """The runs of these chapters that are not in the cache: {cache key: estimated
    seconds}. Nothing is trained."""
    return _plan(chapters, budget, device)[0]


def _plan(chapters, budget, device):
    """(the runs not in the cache: {cache key: estimated seconds}, how many runs in all)."""
    todo, total = {}, 0

    def note(key, estimate, config):
        if key not in todo:          # chapters share runs: each is planned once
            todo[key] = estimate()
        return False

    training.claim = note
    try:
        with contextlib.redirect_stdout(io.StringIO()):   # the cached runs' summaries
            for chapter in chapters:
                total += len(chapter_runs(chapter, budget, device))
    finally:
        training.claim = None
    return todo, total


def preview(chapter, budget, device, book_runs=False):
    """Say, before a chapter trains anything, what it will train and about how long that
    takes here: the sum of the estimates (from a few timed steps) of its runs that are not
    in the run cache (it prints; it returns nothing, so that a notebook cell shows only
    the text). With ``book_runs``, the book's own runs are put in the run cache first
    (``deepres.book_runs.use``): nothing is left to train."""
    if book_runs:
        from .book_runs import use
        added = use(chapter, budget, device)
        print(f"BOOK_RUNS = True: {added} of this chapter's runs were copied from the book's "
              f"runs into your run cache (the book's numbers, trained on a CPU).")
    todo, total = _plan([chapter], budget, device)
    if not todo:
        print(f"This chapter's {total} training runs ({budget.name} budget) are all in the "
              f"run cache: they load in seconds.")
    else:
        print(f"This chapter trains {total} runs ({budget.name} budget): "
              f"{total - len(todo)} are in the run cache, {len(todo)} to train on "
              f"{torch.device(device).type}, about {duration(sum(todo.values()))} here (the "
              f"sum of their estimates from timed steps; your exercises' runs not counted). "
              f"No time for that? Set BOOK_RUNS = True in this cell: the chapter then loads "
              f"the book's own runs ({BOOK_BUDGET} budget) instead of training them.",
              flush=True)


def unit_seconds(repeats=9):
    """The machine's speed, and the unit the build's work is stated in: the median time of
    one training step (forward and backward, batch 128) of the laptop ResNet-56 on one
    thread, here and now. ``make bench`` prints the same figure."""
    from .measure import step_seconds
    from .models.cifar import resnet_cifar
    with num_threads(1):
        torch.manual_seed(0)
        model = resnet_cifar(56, widths=PROFILES["laptop"].resnet_widths, in_channels=1)
        [seconds] = step_seconds([model], torch.randn(128, 1, 14, 14), repeats=repeats)
    return seconds


def share_out(todo, jobs):
    """Longest runs first, each to the process with the least work so far: a list of
    ``jobs`` lists of cache keys."""
    shares, load = [[] for _ in range(jobs)], [0.0] * jobs
    for key in sorted(todo, key=todo.get, reverse=True):
        i = load.index(min(load))
        shares[i].append(key)
        load[i] += todo[key]
    return shares


def train_in_processes(chapters, budget, jobs, device=torch.device("cpu")):
    """Train the chapters' runs that are not cached in ``jobs`` processes (on a CPU, of one
    thread each; on CUDA, one GPU each); returns how many runs were trained. The
    processes' output goes to ``prefill-N.log`` in the cache folder; this process reports
    progress."""
    folder, names = cache_dir(), " ".join(map(str, chapters))
    on_cpu = device.type == "cpu"
    with num_threads(1 if on_cpu else None):   # estimate each run as it will be trained
        todo = plan(chapters, budget, device)
    if not todo:
        where = f"{folder} or {store_dir()}" if store_dir() else str(folder)
        print(f"chapters {names}: every run is in {where}: nothing to train")
        report(folder, chapters, budget, 0, 0, 0.0)
        return 0
    jobs = min(jobs, len(todo))
    unit = unit_seconds() if on_cpu else None
    work = sum(todo.values()) / unit if on_cpu else 0.0
    size = (f"about {work:,.0f} steps' work of the laptop ResNet-56 on one thread (one "
            f"takes {1000 * unit:.0f} ms here), in {jobs} process(es) of one thread each"
            if on_cpu else f"in {jobs} process(es), one GPU each")
    print(f"chapters {names}: {len(todo)} runs to train into {folder}: {size}: about "
          f"{duration(sum(todo.values()) / jobs)} by the estimates", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    start, workers = time.time(), []
    with tempfile.TemporaryDirectory() as tmp:
        for i, keys in enumerate(share_out(todo, jobs)):
            keys_file = os.path.join(tmp, f"keys-{i}.json")
            with open(keys_file, "w") as f:
                json.dump(keys, f)
            log = open(folder / f"prefill-{i + 1}.log", "w")
            command = [sys.executable, "-m", "deepres.run", "--budget", budget.name,
                       "--chapter", *map(str, chapters), "--worker", keys_file]
            workers.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL,
                                             env=worker_env(i, device, folder)), log))
        done = 0
        while any(w.poll() is None for w, _ in workers):
            time.sleep(2)
            now = sum((folder / f"{key}.pt").is_file() for key in todo)
            if now != done:
                done = now
                print(f"  {done} of {len(todo)} runs trained "
                      f"({duration(time.time() - start)})", flush=True)
    for _, log in workers:
        log.close()
    failed = [i + 1 for i, (w, _) in enumerate(workers) if w.returncode]
    if failed:
        logs = ", ".join(str(folder / f"prefill-{i}.log") for i in failed)
        raise RuntimeError(f"training process(es) {failed} failed: see {logs}")
    print(f"chapters {names}: {len(todo)} runs trained in "
          f"{duration(time.time() - start)} by {jobs} process(es)", flush=True)
    report(folder, chapters, budget, len(todo), jobs, time.time() - start,
           work=work, unit_ms=1000 * unit if on_cpu else None)
    return len(todo)


def report(folder, chapters, budget, runs, jobs, seconds, work=0.0, unit_ms=None):
    """What the last ``--jobs`` did, for the book's Performance page: ``prefill.json``
    (``work``: in one-thread steps of the laptop ResNet-56, which took ``unit_ms``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prefill.json").write_text(json.dumps(dict(
        chapters=list(chapters), budget=budget.name, runs=runs, jobs=jobs,
        seconds=seconds, work=work, unit_ms=unit_ms)))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m deepres.run", description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", type=int, nargs="+", required=True, choices=CHAPTERS,
                        metavar="N", help="the chapter(s) whose runs to train (1 to 7)")
    parser.add_argument("--budget", choices=list(PROFILES), default=None,
                        help="default: $DEEPRES_BUDGET, else gpu on CUDA, laptop elsewhere")
    parser.add_argument("--jobs", default=None,
                        help="train the runs side by side in this many processes: on a CPU of "
                             "one thread each ('auto': one per core), on CUDA of one GPU each "
                             "('auto': one per GPU). Default: in this process")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # used by --jobs
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs != "auto" and not args.jobs.isdigit() \
            or args.jobs == "0":
        parser.error(f"--jobs must be a number of processes or 'auto', not {args.jobs!r}")
    device = start_distributed()
    rank = dist.get_rank() if dist.is_initialized() else 0
    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    quiet = rank != 0 or args.worker is not None
    budget = get_budget(args.budget, device=device, verbose=not quiet)
    if args.worker is not None:      # one of --jobs' processes: train the runs it was given
        if device.type == "cpu":
            torch.set_num_threads(1)
        with open(args.worker) as f:
            mine = set(json.load(f))
        training.claim = lambda key, estimate, config: key in mine
        for chapter in args.chapter:
            chapter_runs(chapter, budget, device)
        return {}
    if device.type == "cpu":   # one thread a run, as the book's runs (deepres.training)
        os.environ.setdefault(training.THREADS_ENV, "1")
    if dist.is_initialized() or args.jobs is not None:   # other processes will read it
        fetch_data(budget)
    if args.jobs is not None and device.type in ("cpu", "cuda") and not dist.is_initialized():
        auto = cores() if device.type == "cpu" else len(gpus())
        jobs = auto if args.jobs == "auto" else int(args.jobs)
        train_in_processes(args.chapter, budget, jobs, device)
    elif args.jobs is not None and rank == 0:
        print(f"--jobs is for CPUs and CUDA GPUs, not under torchrun: training on {device} "
              f"in this process", flush=True)
    runs = {}
    try:
        for chapter in args.chapter:
            if rank == 0:
                world = dist.get_world_size() if dist.is_initialized() else 1
                print(f"chapter {chapter}: training into {cache_dir()} on {world} "
                      f"process(es)", flush=True)
            runs[chapter] = chapter_runs(chapter, budget, device)
            if rank == 0:
                trained = [r for r in runs[chapter].values() if not r.cached]
                print(f"chapter {chapter}: {len(runs[chapter])} runs in the cache, "
                      f"{len(trained)} trained now in "
                      f"{duration(sum(r.seconds for r in trained))}", flush=True)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return runs


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
