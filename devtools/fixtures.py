"""Small datasets in the real files' formats, written here: Fashion-MNIST's IDX files and
CIFAR-10's Python pickles, in the folder layouts the loaders of ``deepres.data`` search.
The tests and ``make gpu-check`` load them with the real loaders, with no network."""
import gzip
import pickle

import numpy as np


def write_idx(path, array, compress=True):
    """Write ``array`` (uint8) in the IDX format that (Fashion-)MNIST uses."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def write_fashion_fixture(folder, n_train=60, n_test=20, compress=True, seed=0):
    """A tiny Fashion-MNIST in its original file layout; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(n_train) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte": (np.arange(n_test) * 3) % 10}
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(folder / (name + (".gz" if compress else "")), array, compress)
    return arrays


def write_cifar_fixture(folder, per_batch=8, n_test=6, seed=0):
    """A tiny CIFAR-10 in the layout of torchvision's 'cifar-10-batches-py' folder."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "labels": [int(v) for v in rng.integers(0, 10, n)],
                 "batch_label": name, "filenames": [f"{name}_{i}.png" for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
        batches[name] = batch
    names = ["airplane", "automobile", "bird", "cat", "deer",
             "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch}, f)
    return batches
