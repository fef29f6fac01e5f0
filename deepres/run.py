"""Train a chapter's runs outside the notebook, into the run cache the book reads.

    python -m deepres.run --chapter 2 --budget paper            # one GPU (or the CPU)
    torchrun --nproc_per_node=4 -m deepres.run --chapter 2 --budget paper   # 4 GPUs

Each run is trained with ``deepres.train``, exactly as the page trains it, so the page
then loads it from the cache instead of training. Under ``torchrun`` (one process per
GPU, on one machine or many), every run is trained with PyTorch's
DistributedDataParallel: each process takes its share of every batch of the global batch
size, and the gradients are averaged, so the run is the single-process run of the same
batch size, to within float rounding (BatchNorm is synchronised across the processes
on GPUs). Process 0 writes the cache. Point ``DEEPRES_CACHE`` at a folder that every
machine sees, and at the book's ``_build/runcache`` (the default when run from the
book's folder) to build the book from it.
"""
import argparse
import os
import sys

import torch
import torch.distributed as dist

from .budget import PROFILES, get_budget, pick_device
from .experiments import chapter_runs
from .training import cache_dir, duration


def start_distributed():
    """Join the process group that ``torchrun`` describes (if any); returns the device
    this process trains on."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return pick_device()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        return torch.device("cuda", local_rank)
    dist.init_process_group("gloo")
    return torch.device("cpu")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m deepres.run", description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", type=int, required=True, choices=range(1, 8),
                        help="the chapter whose runs to train (1 to 7)")
    parser.add_argument("--budget", choices=list(PROFILES), default=None,
                        help="default: $DEEPRES_BUDGET, else gpu on CUDA, laptop elsewhere")
    args = parser.parse_args(argv)
    device = start_distributed()
    rank = dist.get_rank() if dist.is_initialized() else 0
    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    budget = get_budget(args.budget, device=device, verbose=rank == 0)
    if rank == 0:
        world = dist.get_world_size() if dist.is_initialized() else 1
        print(f"chapter {args.chapter}: training into {cache_dir()} on {world} "
              f"process(es)", flush=True)
    try:
        runs = chapter_runs(args.chapter, budget, device)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0:
        trained = [r for r in runs.values() if not r.cached]
        print(f"chapter {args.chapter}: {len(runs)} runs in the cache, {len(trained)} "
              f"trained now in {duration(sum(r.seconds for r in trained))}")
    return runs


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
