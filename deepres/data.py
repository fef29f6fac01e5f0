"""Fashion-MNIST and CIFAR-10 as tensors in memory, found offline when possible.

Where the files are looked for, in order:

1. the ``root`` argument, or the environment variable ``DEEPRES_DATA``;
2. Fashion-MNIST only: ``/usr/share/datasets/fashion-mnist`` (Debian's
   ``dataset-fashion-mnist`` package);
3. torchvision's layout under ``~/.cache/deepres`` (``FashionMNIST/raw``,
   ``cifar-10-batches-py``);
4. only then a download through torchvision into that cache (works in Colab).

The files are read here, in their original formats (IDX for Fashion-MNIST, Python
pickles for CIFAR-10), so the same code reads every location.
"""
import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .cpu import num_threads

ENV_VAR = "DEEPRES_DATA"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
CACHE = Path.home() / ".cache" / "deepres"

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                 "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


class DataNotFound(RuntimeError):
    pass


@dataclass
class Data:
    """Images as float tensors (N, C, H, W), normalised; labels as int64 tensors (N,)."""
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple
    augment: bool  # random crops and flips while training (CIFAR-10, as He et al. 2016)
    spec: dict     # the arguments that made it (part of the run cache's key)

    @property
    def shape(self):
        return tuple(self.x_train.shape[1:])


def _read_idx(path):
    """An IDX file (the MNIST format), gzipped or not, as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


def _find(directory, name):
    for candidate in (directory / name, directory / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _fashion_dirs(root):
    if root:
        yield Path(root)
        yield Path(root) / "FashionMNIST" / "raw"
    yield DEBIAN_FASHION
    yield CACHE / "FashionMNIST" / "raw"


def _cifar_dirs(root):
    if root:
        yield Path(root)
        yield Path(root) / "cifar-10-batches-py"
    yield CACHE / "cifar-10-batches-py"


def _locate(dirs, names):
    for d in dirs:
        found = [_find(d, n) for n in names]
        if all(found):
            return found
    return None


def _missing(what, tried, error):
    places = "\n  ".join(str(p) for p in tried)
    debian = ("on Debian/Ubuntu run `sudo apt-get install dataset-fashion-mnist`; or "
              if what == "Fashion-MNIST" else "")
    return DataNotFound(
        f"{what} is not on this machine and could not be downloaded ({error}).\n"
        f"Looked in:\n  {places}\n"
        f"Fix: {debian}copy the files into one of those folders; or point {ENV_VAR} at a "
        f"folder that has them; or run once with internet access so torchvision can "
        f"download them."
    )


def load_fashion_mnist_raw(root=None, download=True):
    """(x_train, y_train, x_test, y_test) as uint8/int64 numpy arrays."""
    root = root or os.environ.get(ENV_VAR)
    names = FASHION_FILES["train"] + FASHION_FILES["test"]
    found = _locate(_fashion_dirs(root), names)
    if found is None and download:
        try:
            from torchvision.datasets import FashionMNIST
            FashionMNIST(str(CACHE), train=True, download=True)
            FashionMNIST(str(CACHE), train=False, download=True)
        except Exception as error:  # no network, no torchvision, a full disk...
            raise _missing("Fashion-MNIST", list(_fashion_dirs(root)), error) from None
        found = _locate(_fashion_dirs(root), names)
    if found is None:
        raise _missing("Fashion-MNIST", list(_fashion_dirs(root)), "download=False")
    x_tr, y_tr, x_te, y_te = (_read_idx(p) for p in found)
    return x_tr[:, None], y_tr.astype(np.int64), x_te[:, None], y_te.astype(np.int64)


def load_cifar10_raw(root=None, download=True):
    """(x_train, y_train, x_test, y_test, classes) from the CIFAR-10 python pickles."""
    root = root or os.environ.get(ENV_VAR)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    found = _locate(_cifar_dirs(root), names)
    if found is None and download:
        try:
            from torchvision.datasets import CIFAR10
            CIFAR10(str(CACHE), train=True, download=True)
        except Exception as error:
            raise _missing("CIFAR-10", list(_cifar_dirs(root)), error) from None
        found = _locate(_cifar_dirs(root), names)
    if found is None:
        raise _missing("CIFAR-10", list(_cifar_dirs(root)), "download=False")
    batches = []
    for path in found:
        with open(path, "rb") as f:
            batches.append(pickle.load(f, encoding="latin1"))
    *data, meta = batches

    def stack(parts):
        x = np.concatenate([b["data"] for b in parts]).reshape(-1, 3, 32, 32)
        y = np.concatenate([np.asarray(b["labels"], dtype=np.int64) for b in parts])
        return x, y

    x_tr, y_tr = stack(data[:5])
    x_te, y_te = stack(data[5:])
    return x_tr, y_tr, x_te, y_te, tuple(meta["label_names"])


def _subset(n_total, n, seed):
    """Indices of a seeded random subset of size n (all, in order, for n=0)."""
    if not n or n >= n_total:
        return torch.arange(n_total)
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[:n].sort().values


def _prepare(x, mean, std, image_size):
    x = torch.as_tensor(np.ascontiguousarray(x)).float().div_(255)
    if image_size and image_size != x.shape[-1]:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear",
                          antialias=True, align_corners=False)
    return (x - mean) / std


def load(name="fashion-mnist", train_size=0, test_size=0, image_size=None, seed=0,
         root=None, download=True):
    """Load a dataset as normalised tensors, with deterministic subsets.

    ``train_size``/``test_size`` of 0 mean the whole split; ``image_size`` resizes
    (e.g. 14 to make Fashion-MNIST 4x cheaper).
    """
    key = name.lower().replace("_", "-")
    if key in ("fashion-mnist", "fashionmnist"):
        x_tr, y_tr, x_te, y_te = load_fashion_mnist_raw(root, download)
        classes, augment = FASHION_CLASSES, False
    elif key in ("cifar10", "cifar-10"):
        x_tr, y_tr, x_te, y_te, classes = load_cifar10_raw(root, download)
        augment = True
    else:
        raise ValueError(f"Unknown dataset {name!r}: use 'fashion-mnist' or 'cifar10'.")
    spec = dict(name=key, train_size=train_size, test_size=test_size,
                image_size=image_size, seed=seed)
    tr = _subset(len(y_tr), train_size, seed)
    te = _subset(len(y_te), test_size, seed + 1)
    x_tr, x_te = torch.as_tensor(x_tr)[tr], torch.as_tensor(x_te)[te]
    # on one thread: a sum split between threads ends in other last bits, and the data
    # must be the same on every machine (measured: the mean and the resizing differ)
    with num_threads(1):
        # per-channel statistics of the training images actually used
        pixels = x_tr.float().div(255).transpose(0, 1).reshape(x_tr.shape[1], -1)
        mean = pixels.mean(1).view(1, -1, 1, 1)
        std = pixels.std(1).view(1, -1, 1, 1)
        x_tr, x_te = _prepare(x_tr, mean, std, image_size), _prepare(x_te, mean, std, image_size)
    return Data(key, x_tr, torch.as_tensor(y_tr)[tr], x_te, torch.as_tensor(y_te)[te],
                classes, augment, spec)


def _crop_flip_draws(n, generator, padding=4):
    """The random numbers of one augmented batch, drawn where ``generator`` lives: crop
    offsets and which images flip."""
    device = generator.device
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    return dx, dy, torch.rand(n, generator=generator, device=device) < 0.5


def random_crop_flip(x, generator, padding=4):
    """He et al. (2016) CIFAR augmentation: pad 4, random crop, random horizontal flip.
    Everything is computed on ``x``'s device (``generator`` must live there too), so on a
    GPU the host never waits for it."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dx, dy, flip = _crop_flip_draws(n, generator, padding)
    arange = lambda k: torch.arange(k, device=x.device)   # noqa: E731
    rows = (dy[:, None] + arange(h))[:, None, :, None]  # (N, 1, H, 1)
    cols = (dx[:, None] + arange(w))[:, None, None, :]  # (N, 1, 1, W)
    out = padded[arange(n)[:, None, None, None], arange(c)[None, :, None, None], rows, cols]
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def batches(data, batch_size, steps, seed=0, start=0):
    """Yield training batches (x, y) number ``start + 1`` to ``steps``, reshuffling each
    epoch, seeded. The first ``start`` batches are skipped, but their random numbers are
    drawn all the same: a run resumed at ``start`` sees the batches it would have seen.

    The random numbers are drawn on the device the data lives on (a CUDA generator on a
    GPU), so the batches are picked and augmented there, with no copy to or from the host
    and no wait; on the CPU the numbers are those of a CPU generator, as they always were."""
    device = data.x_train.device
    g = torch.Generator(device=device).manual_seed(seed)
    n = len(data.y_train)
    order, pos = torch.randperm(n, generator=g, device=device), 0
    for step in range(steps):
        if pos + batch_size > n:
            order, pos = torch.randperm(n, generator=g, device=device), 0
        idx = order[pos: pos + batch_size]
        pos += batch_size
        if step < start:
            if data.augment:
                _crop_flip_draws(len(idx), g)
            continue
        x = data.x_train[idx]
        if data.augment:
            x = random_crop_flip(x, g)
        yield x, data.y_train[idx]


def ensure_fashion_mnist():
    """Find (or download) Fashion-MNIST and say so; exit with the reason if impossible."""
    try:
        x_train, _, x_test, _ = load_fashion_mnist_raw()
    except DataNotFound as error:
        raise SystemExit(str(error)) from None
    print(f"Fashion-MNIST: {len(x_train):,} training and {len(x_test):,} test images found.")
