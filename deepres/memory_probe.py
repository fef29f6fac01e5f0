"""One model's peak memory and time for forward + backward passes, in a process of its own
(``deepres.measure.train_step_memory`` runs it): a fresh process, so that no other
model's memory is counted.

    python -m deepres.memory_probe MODEL_CODE "(N, C, H, W)" REPEATS DEVICE THREADS

``MODEL_CODE`` is a Python expression that builds the model, with everything in
``deepres.models`` in scope. Prints one line of JSON: ``peak_mb``, ``step_mb``,
``seconds``, ``device``.
"""
import ast
import json
import re
import resource
import sys
import time

import torch

from . import models


def memory(device):
    """(current, peak) bytes: on CUDA the allocator's; on the CPU the process's resident
    memory and its peak since the last reset (Linux), or its lifetime peak elsewhere."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device), torch.cuda.max_memory_allocated(device)
    try:
        status = open("/proc/self/status").read()
        return tuple(int(re.search(key + r":\s+(\d+) kB", status).group(1)) * 1024
                     for key in ("VmRSS", "VmHWM"))
    except OSError:  # not Linux: ru_maxrss, the peak over the process's life
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak *= 1 if sys.platform == "darwin" else 1024
        return peak, peak


def reset_peak(device):
    """Start the peak from here (the CUDA allocator's; Linux: the resident memory's)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        open("/proc/self/clear_refs", "w").write("5")
    except OSError:
        pass


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def probe(model_code, input_shape, repeats, device, threads):
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    device = torch.device(device)
    model = eval(model_code, {"torch": torch, **vars(models)}).to(device)
    x = torch.randn(*input_shape).to(device)
    reset_peak(device)
    before, _ = memory(device)
    times = []
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        sync(device)
        start = time.perf_counter()
        model(x).sum().backward()
        sync(device)
        times.append(time.perf_counter() - start)
    _, peak = memory(device)
    return dict(peak_mb=peak / 2**20, step_mb=(peak - before) / 2**20,
                seconds=sorted(times)[len(times) // 2],
                device=torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU")


if __name__ == "__main__":
    code, shape, repeats, device, threads = sys.argv[1:6]
    print(json.dumps(probe(code, ast.literal_eval(shape), int(repeats), device, int(threads))))
