"""Reading the clock around work that may run on a GPU, and saying how long it took."""
import time


def sync(device):
    """Wait until ``device`` has finished its queued work (a CUDA GPU runs ahead of Python)."""
    import torch
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    """Seconds that ``fn()`` takes, the device's queued work included."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def duration(seconds):
    """'45 s', '3 min 20 s', '2 h 05 min'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
