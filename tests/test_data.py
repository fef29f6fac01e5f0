import numpy as np
import pytest
import torch

import deepres.data as data_module
from deepres.data import DataNotFound, batches, load, random_crop_flip
from devtools.testing import write_cifar_fixture, write_fashion_fixture


@pytest.fixture
def no_system_data(monkeypatch, tmp_path):
    """Pretend the machine has no Fashion-MNIST, no cache and no network."""
    monkeypatch.setattr(data_module, "DEBIAN_FASHION", tmp_path / "no-debian")
    monkeypatch.setattr(data_module, "CACHE", tmp_path / "no-cache")
    monkeypatch.delenv(data_module.ENV_VAR, raising=False)

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    import torchvision.datasets
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_from_an_explicit_folder(tmp_path, no_system_data, compress):
    arrays = write_fashion_fixture(tmp_path / "fm", compress=compress)
    data = load("fashion-mnist", root=tmp_path / "fm")
    assert data.x_train.shape == (60, 1, 28, 28) and data.x_test.shape == (20, 1, 28, 28)
    assert data.y_train.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert data.y_train.dtype == torch.int64
    # normalised with the training images' own statistics
    assert abs(data.x_train.mean().item()) < 1e-5
    assert abs(data.x_train.std().item() - 1) < 1e-2
    # the pixels are the ones written, in order
    raw = torch.tensor(arrays["train-images-idx3-ubyte"][3], dtype=torch.float32)
    assert torch.corrcoef(torch.stack([raw.flatten(), data.x_train[3].flatten()]))[0, 1] > 0.999
    assert data.augment is False and len(data.classes) == 10


def test_fashion_mnist_in_torchvision_layout_via_environment(tmp_path, monkeypatch, no_system_data):
    write_fashion_fixture(tmp_path / "root" / "FashionMNIST" / "raw")
    monkeypatch.setenv(data_module.ENV_VAR, str(tmp_path / "root"))
    assert len(load("fashion-mnist").y_test) == 20


def test_debian_location_is_used(tmp_path, monkeypatch, no_system_data):
    write_fashion_fixture(tmp_path / "debian")
    monkeypatch.setattr(data_module, "DEBIAN_FASHION", tmp_path / "debian")
    assert len(load("fashion-mnist").y_train) == 60


def test_missing_data_offline_gives_one_clear_message(no_system_data):
    with pytest.raises(DataNotFound) as error:
        load("fashion-mnist")
    message = str(error.value)
    assert "network is unreachable" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert data_module.ENV_VAR in message
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_missing_cifar_offline(no_system_data):
    with pytest.raises(DataNotFound, match="CIFAR-10"):
        load("cifar10")


def test_cifar10_from_its_pickles(tmp_path, no_system_data):
    batches_written = write_cifar_fixture(tmp_path / "cifar-10-batches-py")
    data = load("cifar10", root=tmp_path)
    assert data.x_train.shape == (40, 3, 32, 32) and data.x_test.shape == (6, 3, 32, 32)
    labels = sum((batches_written[f"data_batch_{i}"]["labels"] for i in range(1, 6)), [])
    assert data.y_train.tolist() == labels
    assert data.classes[0] == "airplane" and data.augment is True
    # channel-first: the first 1024 bytes of a row are the red channel
    first = batches_written["data_batch_1"]["data"][0].reshape(3, 32, 32)
    red = torch.tensor(first[0], dtype=torch.float32).flatten()
    assert torch.corrcoef(torch.stack([red, data.x_train[0, 0].flatten()]))[0, 1] > 0.999


def test_subsets_are_seeded_and_resizing_works(tmp_path, no_system_data):
    write_fashion_fixture(tmp_path / "fm")
    a = load("fashion-mnist", train_size=10, test_size=5, seed=3, root=tmp_path / "fm", image_size=14)
    b = load("fashion-mnist", train_size=10, test_size=5, seed=3, root=tmp_path / "fm", image_size=14)
    c = load("fashion-mnist", train_size=10, test_size=5, seed=4, root=tmp_path / "fm", image_size=14)
    assert a.x_train.shape == (10, 1, 14, 14)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_train, c.y_train)
    assert a.spec != c.spec


def test_unknown_dataset():
    with pytest.raises(ValueError, match="fashion-mnist"):
        load("imagenet")


def test_random_crop_flip_is_seeded_and_keeps_content():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    a = random_crop_flip(x, torch.Generator().manual_seed(0))
    b = random_crop_flip(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    # with no padding, a crop is the image itself, possibly mirrored
    c = random_crop_flip(x, torch.Generator().manual_seed(1), padding=0)
    for i in range(2):
        assert torch.equal(c[i], x[i]) or torch.equal(c[i], x[i].flip(-1))


def test_batches_cover_an_epoch_and_are_seeded():
    from devtools.testing import synthetic_data
    data = synthetic_data(n_train=40)
    first = [y.tolist() for _, y in batches(data, 10, 4, seed=0)]
    again = [y.tolist() for _, y in batches(data, 10, 4, seed=0)]
    assert first == again
    assert sorted(sum(first, [])) == sorted(data.y_train.tolist())  # 4 x 10 = one epoch


def test_batches_are_the_ones_the_book_was_trained_on():
    """The batches and their augmentation, drawn on the data's device since issue 19, are
    on the CPU bit for bit those of the earlier code (its digest, recorded before the
    change): the CPU runs keep their numbers."""
    import hashlib
    torch.manual_seed(0)
    x, y = torch.randn(300, 3, 8, 8), torch.arange(300) % 10
    for augment, expected in ((True, "77a502c40c88878e"), (False, "a95b4d8e636218ee")):
        data = data_module.Data("t", x, y, x[:10], y[:10], tuple("abcdefghij"), augment, {})
        h = hashlib.sha256()
        for xb, yb in batches(data, 64, 13, seed=3, start=2):
            h.update(xb.numpy().tobytes())
            h.update(yb.numpy().tobytes())
        assert h.hexdigest()[:16] == expected, f"augment={augment}: other batches than before"


def test_no_download_when_told_not_to(no_system_data):
    with pytest.raises(DataNotFound, match="download=False"):
        data_module.load_fashion_mnist_raw(download=False)
