"""The run key follows the numbers: what decides a run is in its key, and a change that
alters any trained number cannot go unnoticed.

A run's key holds ``NUMERICS_VERSION`` instead of a hash of the library's source
(``deepres/runcache.py``). Two tests keep that honest:

* the differential test trains short runs of every family of network the book trains
  (VGG, plain, residual with shortcut options A and B, pre-activation, bottleneck, grouped
  convolution, DenseNet-BC, a frozen transfer network), a resumed run, the batches and
  their augmentation, both datasets' loaders and chapter 8's data preparation, and
  requires every bit to be what ``tests/numerics.json`` recorded for the current
  version. A change that moves a number fails it until the version is bumped and the
  digests recorded again (``DEEPRES_RECORD_NUMERICS=1 pytest tests/test_numerics.py``),
  which then retrains every run of the book (``make runs``);
* the key-coverage test changes each thing that decides a run, one at a time, and
  requires a new key.

The digests are those of one thread, the library's CPU pins and the pinned torch: the
same on every x86-64 CPU with AVX2, Intel or AMD (``tests/test_reproducible.py``).
"""
import dataclasses
import hashlib
import json
import os
import platform
import struct
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import deepres.training as training
from deepres import runcache, specs
from deepres.data import batches, load
from devtools.fixtures import write_cifar_fixture, write_fashion_fixture
from deepres.models import VGG, PreActBlock, densenet_bc_cifar
from deepres.models.cifar import plain, resnet_cifar
from deepres.transfer import class_subset, for_weights, transfer_variants
from devtools.testing import lose_the_runtime_at_call

RECORDED = Path(__file__).with_name("numerics.json")
RECORD_ENV = "DEEPRES_RECORD_NUMERICS"
TORCH = "2.14.1"   # the pinned torch (requirements.txt): the digests are its numbers

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64")
    or torch.__version__.split("+")[0] != TORCH,
    reason=f"the digests are those of x86-64 CPUs with torch {TORCH} (requirements.txt)")


def digest(*values):
    """sha256 (16 hex digits) of tensors, floats and nested lists/dicts of them, bit for bit."""
    h = hashlib.sha256()

    def add(v):
        if isinstance(v, torch.Tensor):
            h.update(str((v.dtype, tuple(v.shape))).encode())
            h.update(v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(v, float):
            h.update(struct.pack("<d", v))
        elif isinstance(v, dict):
            for k in sorted(v, key=str):
                h.update(str(k).encode())
                add(v[k])
        elif isinstance(v, (list, tuple)):
            for item in v:
                add(item)
        else:
            h.update(repr(v).encode())

    for v in values:
        add(v)
    return h.hexdigest()[:16]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    """The two datasets in their real formats, written here (the same bytes everywhere)."""
    root = tmp_path_factory.mktemp("data")
    write_fashion_fixture(root / "fashion", n_train=96, n_test=32)
    write_cifar_fixture(root / "cifar" / "cifar-10-batches-py", per_batch=20, n_test=32)
    fashion = load("fashion-mnist", image_size=14, root=root / "fashion", download=False)
    fashion28 = load("fashion-mnist", root=root / "fashion", download=False)
    cifar = load("cifar10", root=root / "cifar", download=False)
    return dict(root=root, fashion=fashion, fashion28=fashion28, cifar=cifar)


def data_digest(data):
    return digest(data.x_train, data.y_train, data.x_test, data.y_test, data.spec)


W = (4, 8, 16)   # small widths: the families' code paths, in seconds


def families(c, classes=10):
    vgg = [W[0], W[0], "M", W[1], "M", W[2], "M"]
    return {
        "vgg": lambda: VGG(vgg, num_classes=classes, in_channels=c, batch_norm=True,
                           hidden=16, pool_size=3, kernel_size=3),
        "plain": lambda: plain(8, widths=W, in_channels=c),
        "resnet (option A)": lambda: resnet_cifar(8, widths=W, in_channels=c),
        "resnet (option B)": lambda: resnet_cifar(8, widths=W, in_channels=c, shortcut="B"),
        "pre-activation": lambda: resnet_cifar(8, widths=W, in_channels=c,
                                               block=PreActBlock, final_norm=True),
        "bottleneck": lambda: resnet_cifar(11, widths=W, in_channels=c, bottleneck=True,
                                           shortcut="B"),
        "grouped convolution": lambda: resnet_cifar(11, widths=W, in_channels=c,
                                                    bottleneck=True, shortcut="B", groups=2,
                                                    width_per_group=32),
        "densenet-bc": lambda: densenet_bc_cifar(16, growth_rate=4, in_channels=c),
    }


def short_run(make, data, **kwargs):
    settings = dict(steps=8, batch_size=16, eval_every=4, seed=3, use_cache=False,
                    progress=False, threads=1)
    return training.train(make, data, **{**settings, **kwargs})


def run_digest(run):
    return digest(run.history, run.model.state_dict())


def computed(fixtures):
    """Every digest of the differential test, by name."""
    fashion, fashion28, cifar = fixtures["fashion"], fixtures["fashion28"], fixtures["cifar"]
    out = {"load fashion-mnist (14x14)": data_digest(fashion),
           "load fashion-mnist (28x28)": data_digest(fashion28),
           "load cifar10": data_digest(cifar),
           "batches with crop and flip": digest(list(batches(cifar, 16, 5, seed=2))),
           "batches without augmentation": digest(list(batches(fashion, 16, 8, seed=2))),
           "class_subset": data_digest(class_subset(cifar, [1, 3, 5], per_class=2, seed=1)),
           "for_weights": data_digest(for_weights(
               torchvision.models.ResNet18_Weights.DEFAULT, root=fixtures["root"] / "cifar",
               download=False))}
    for name, make in families(1).items():
        data = fashion28 if name == "vgg" else fashion
        out[f"train {name} (fashion-mnist)"] = run_digest(short_run(make, data))
    out["train resnet (cifar10, augmented)"] = run_digest(
        short_run(families(3)["resnet (option A)"], cifar))
    out["train densenet-bc (cifar10, augmented)"] = run_digest(
        short_run(families(3)["densenet-bc"], cifar))
    torch.manual_seed(0)
    source = families(1, classes=5)["resnet (option A)"]()
    target = class_subset(fashion, [5, 6, 7, 8, 9], per_class=4, seed=0)
    for name, make in transfer_variants(source, 5, ["conv", "bn", "blocks.0"]).items():
        out[f"transfer: {name}"] = run_digest(short_run(make, target, lr=0.01))
    out["train with warmup, momentum 0.5, weight decay 5e-4"] = run_digest(short_run(
        families(1)["plain"], fashion, warmup=2, momentum=0.5, weight_decay=5e-4))
    out["train without flushing denormals"] = run_digest(short_run(
        families(1)["plain"], fashion, flush_denormal=False))
    return out


def test_trained_numbers_are_those_recorded_for_this_numerics_version(fixtures):
    got = computed(fixtures)
    recorded = json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
    version = str(runcache.NUMERICS_VERSION)
    if os.environ.get(RECORD_ENV):
        assert version not in recorded, (
            f"numerics version {version} is recorded already: bump NUMERICS_VERSION in "
            "deepres/runcache.py to record new numbers")
        recorded[version] = got
        RECORDED.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    assert version in recorded, (
        f"no digests are recorded for numerics version {version}: record them with "
        f"{RECORD_ENV}=1 pytest tests/test_numerics.py")
    moved = {k: (v, recorded[version].get(k)) for k, v in got.items()
             if recorded[version].get(k) != v}
    assert not moved, (
        f"these numbers differ from those recorded for NUMERICS_VERSION {version}: {moved}. "
        "If the change is meant to alter trained numbers, bump NUMERICS_VERSION in "
        f"deepres/runcache.py, record the digests ({RECORD_ENV}=1 pytest "
        "tests/test_numerics.py) and retrain the book's runs (make runs); if not, the "
        "change moved a number it should not have.")
    assert sorted(recorded[version]) == sorted(got), "the recorded cases are not these"


def test_a_resumed_run_ends_bit_for_bit_where_an_uninterrupted_one_ends(
        fixtures, tmp_path, monkeypatch):
    monkeypatch.setenv(runcache.CACHE_ENV, str(tmp_path / "runs"))
    monkeypatch.setattr(training, "CHECKPOINT_SECONDS", 1e9)   # at evaluations only
    make, data = families(3)["resnet (option A)"], fixtures["cifar"]
    whole = short_run(make, data)
    put_back = lose_the_runtime_at_call(monkeypatch, training, 3)   # at step 8
    with pytest.raises(KeyboardInterrupt):
        short_run(make, data, use_cache=True)
    put_back()
    resumed = short_run(make, data, use_cache=True)
    assert run_digest(resumed) == run_digest(whole)


# --- the key: everything that decides a run changes it -------------------------------------

def key_of(make, data, **kwargs):
    """The key ``train`` gives this run, from an empty cache, training nothing."""
    spec = specs.RunSpec(make, data, {**dict(steps=8, batch_size=16, eval_every=4,
                                                 seed=0, progress=False, threads=1), **kwargs})
    [(key, _)] = specs.plan_specs({0: spec}, "cpu").values()
    return key


@pytest.fixture
def empty(tmp_path, monkeypatch):
    monkeypatch.setenv(runcache.CACHE_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv(runcache.STORE_ENV, "")


CHANGES = {"steps": 9, "batch_size": 8, "lr": 0.05, "momentum": 0.8, "weight_decay": 5e-4,
           "warmup": 2, "eval_every": 2, "seed": 1, "threads": 2, "flush_denormal": False}


def test_every_argument_of_train_that_decides_a_run_changes_its_key(fixtures, empty):
    make, data = families(1)["plain"], fixtures["fashion"]
    base = key_of(make, data)
    assert key_of(make, data) == base
    assert key_of(make, data, name="another name", progress=True) == base   # not numbers
    import inspect
    decided = set(inspect.signature(training.train).parameters) - {
        "make_model", "data", "device", "name", "use_cache", "progress"}
    assert decided == set(CHANGES), "a new argument of train(): add it to CHANGES"
    for argument, value in CHANGES.items():
        assert key_of(make, data, **{argument: value}) != base, argument


def test_the_data_the_model_the_pins_the_torch_and_the_version_change_the_key(
        fixtures, empty, monkeypatch):
    make, fashion, cifar = families(1)["plain"], fixtures["fashion"], fixtures["cifar"]
    base = key_of(make, fashion)
    other_data = [fixtures["fashion28"],
                  load("fashion-mnist", image_size=14, train_size=50,
                       root=fixtures["root"] / "fashion", download=False),
                  class_subset(fashion, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
                  class_subset(fashion, [5, 6], per_class=2, seed=0),
                  class_subset(fashion, [5, 6], per_class=2, seed=1),
                  dataclasses.replace(fashion, augment=True)]
    keys = {key_of(make, d) for d in other_data}
    assert base not in keys and len(keys) == len(other_data)
    a = for_weights(torchvision.models.ResNet18_Weights.DEFAULT,
                    root=fixtures["root"] / "cifar", download=False)
    b = for_weights(torchvision.models.ResNet50_Weights.DEFAULT,
                    root=fixtures["root"] / "cifar", download=False)
    assert key_of(families(3)["plain"], a) != key_of(families(3)["plain"], b)
    assert key_of(families(3)["plain"], a) != key_of(families(3)["plain"], cifar)
    assert key_of(lambda: plain(8, widths=(4, 8, 8), in_channels=1), fashion) != base
    for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR"):
        with monkeypatch.context() as m:
            m.setenv(name, "something else")
            assert key_of(make, fashion) != base, name
    with monkeypatch.context() as m:
        m.setattr(torch, "__version__", "2.99.0")
        assert key_of(make, fashion) != base
    with monkeypatch.context() as m:
        m.setattr(runcache, "NUMERICS_VERSION", runcache.NUMERICS_VERSION + 1)
        assert key_of(make, fashion) != base
    assert key_of(make, fashion) == base


def test_what_train_keys_is_what_it_sets(fixtures, empty, monkeypatch):
    """The threads and the denormal switch a run trains with are those of its key,
    whatever the caller left set, and the caller's are put back."""
    seen = []
    real_step = torch.optim.SGD.step

    def step(self, *args, **kwargs):
        from deepres.cpu import flushing_denormal
        seen.append((torch.get_num_threads(), flushing_denormal()))
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    threads = torch.get_num_threads()
    torch.set_flush_denormal(False)
    try:
        run = short_run(families(1)["plain"], fixtures["fashion"], steps=2, threads=1)
        assert set(seen) == {(1, True)}
        assert run.config["threads"] == 1 and run.config["flush_denormal"] is True
        from deepres.cpu import flushing_denormal
        assert torch.get_num_threads() == threads and not flushing_denormal()
    finally:
        torch.set_flush_denormal(True)


def test_the_data_are_the_same_on_any_number_of_threads(fixtures):
    """The loader's mean, standard deviation and resizing are sums: on two threads they
    would end in other last bits than on one, so the loader computes them on one."""
    from deepres.cpu import num_threads
    root = fixtures["root"] / "fashion"
    with num_threads(2):
        two = load("fashion-mnist", image_size=14, root=root, download=False)
    with num_threads(1):
        one = load("fashion-mnist", image_size=14, root=root, download=False)
    assert data_digest(one) == data_digest(two) == data_digest(fixtures["fashion"])
