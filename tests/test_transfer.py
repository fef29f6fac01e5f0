"""Chapter 8's tools: the zoo from torchvision's metadata, loading weights offline,
freezing, new heads, few-label tasks and the four transfer variants."""
import os
import urllib.error
from types import SimpleNamespace

import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from deepres.data import Data
from deepres.models.cifar import resnet_cifar
from deepres.transfer import (ZOO, class_subset, count_trainable, freeze, load_pretrained,
                              new_head, transfer_variants, weights_file, zoo)


def test_the_zoo_is_read_offline_from_torchvision_metadata():
    rows = zoo()
    assert {r["model"] for r in rows} == set(ZOO)
    r50 = {r["weights"]: r for r in rows if r["model"] == "resnet50"}
    assert set(r50) == {"IMAGENET1K_V1", "IMAGENET1K_V2"}
    assert r50["IMAGENET1K_V1"]["params"] == 25_557_032
    assert all(0 < r["top1"] < 100 and r["gflops"] > 0 for r in rows)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_without_weights_and_without_download_it_says_so_and_goes_on(torch_home, capsys):
    model, loaded = load_pretrained("resnet18", download=False)
    assert not loaded and isinstance(model, torchvision.models.ResNet)
    out = capsys.readouterr().out
    assert "no pretrained weights" in out and "downloading is off" in out


def test_a_failed_download_says_why_and_goes_on(torch_home, capsys, monkeypatch):
    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torchvision.models.ResNet18_Weights, "get_state_dict", offline)
    model, loaded = load_pretrained("resnet18", download=True)
    assert not loaded and "could not be loaded (URLError" in capsys.readouterr().out


def test_weights_already_on_the_machine_are_loaded(torch_home):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18()
    path = weights_file(torchvision.models.ResNet18_Weights.IMAGENET1K_V1)
    assert path.startswith(str(torch_home))
    os.makedirs(os.path.dirname(path))
    torch.save(reference.state_dict(), path)
    model, loaded = load_pretrained("resnet18", weights="IMAGENET1K_V1", download=False)
    assert loaded
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                reference.state_dict().values()))


def test_freeze_stops_gradients_and_batchnorm_statistics():
    model = freeze(torchvision.models.resnet18(), ["conv1", "bn1", "layer1"])
    for name, p in model.named_parameters():
        assert p.requires_grad == (name.split(".")[0] not in ("conv1", "bn1", "layer1")), name
    assert isinstance(model.bn1, FrozenBatchNorm2d)
    assert isinstance(model.layer1[1].bn2, FrozenBatchNorm2d)
    assert isinstance(model.layer2[0].bn1, nn.BatchNorm2d)
    before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("layer1")}
    model.train()(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_freeze_keeps_the_function_in_evaluation_mode():
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        assert torch.allclose(freeze(model, ["conv1", "bn1", "layer1"])(x), expected,
                              atol=1e-5)


def test_a_new_head_and_the_counts():
    model = new_head(torchvision.models.resnet50(), 2)
    assert (model.fc.in_features, model.fc.out_features) == (2048, 2)
    total, trainable = count_trainable(freeze(model, ["conv1", "bn1", "layer1", "layer2",
                                                      "layer3", "layer4"]))
    assert trainable == 2048 * 2 + 2 and total == 23_512_130


def _data():
    g = torch.Generator().manual_seed(0)
    y_train, y_test = torch.arange(10).repeat(30), torch.arange(10).repeat(5)
    return Data("toy", torch.randn(300, 1, 8, 8, generator=g), y_train,
                torch.randn(50, 1, 8, 8, generator=g), y_test, tuple("abcdefghij"),
                augment=False, spec={"name": "toy"})


def test_class_subset_relabels_and_draws_per_class():
    data = _data()
    task = class_subset(data, [5, 6, 7], per_class=4, seed=1)
    assert task.classes == ("f", "g", "h")
    assert sorted(task.y_train.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    assert len(task.y_test) == 15 and set(task.y_test.tolist()) == {0, 1, 2}
    assert task.spec["per_class"] == 4 and task.spec["classes"] == [5, 6, 7]
    again = class_subset(data, [5, 6, 7], per_class=4, seed=1)
    assert torch.equal(task.x_train, again.x_train)
    assert not torch.equal(task.x_train, class_subset(data, [5, 6, 7], 4, seed=2).x_train)
    with pytest.raises(ValueError, match="only 30 training images"):
        class_subset(data, [5], per_class=31)


def test_the_four_variants_train_what_they_say():
    torch.manual_seed(0)
    pretrained = resnet_cifar(8, widths=(4, 8, 16), in_channels=1, num_classes=5)
    variants = transfer_variants(pretrained, 3, ["conv", "bn", "blocks.0"])
    trains = {name: {n for n, p in make().named_parameters() if p.requires_grad}
              for name, make in variants.items()}
    everything = {n for n, _ in pretrained.named_parameters()}
    assert trains["from scratch"] == trains["fine-tune all"] == everything
    assert trains["linear probe"] == {"fc.weight", "fc.bias"}
    assert trains["fine-tune, early layers frozen"] == {
        n for n in everything if not n.startswith(("conv.", "bn.", "blocks.0."))}
    scratch, fine = variants["from scratch"](), variants["fine-tune all"]()
    assert fine.fc.out_features == 3
    assert torch.equal(fine.conv.weight, pretrained.conv.weight)
    assert not torch.equal(scratch.conv.weight, pretrained.conv.weight)
    reprs = {repr(make()) for make in variants.values()}   # the run cache tells them apart
    assert len(reprs) == 3  # scratch and fine-tune all differ in their initial weights


def test_the_gpu_path_imagenet_to_cifar_runs_on_a_cpu(tmp_path, monkeypatch, capsys):
    """Chapter 8's GPU cell, on a tiny CIFAR-10 in the layout torchvision writes, with no
    weights on the machine and downloading off: it says so and trains both variants."""
    from devtools.fixtures import write_cifar_fixture

    from deepres.course.budget import get_budget
    from deepres.course.experiments import imagenet_to_cifar

    write_cifar_fixture(tmp_path / "cifar-10-batches-py", per_batch=20)
    monkeypatch.setenv("DEEPRES_DATA", str(tmp_path))
    monkeypatch.setenv("DEEPRES_CACHE", str(tmp_path / "runs"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    budget = get_budget("smoke", verbose=False, steps=8, batch_size=4)
    runs, loaded = imagenet_to_cifar(budget, "cpu", download=False, per_class=1, size=48)
    assert not loaded and "no pretrained weights" in capsys.readouterr().out
    assert set(runs) == {"linear probe", "fine-tune all"}
    for run in runs.values():
        assert run.history["step"][-1] == 2 and 0 <= run.test_error <= 1  # 8 // 4 steps
    probe = runs["linear probe"].model
    assert {n for n, p in probe.named_parameters() if p.requires_grad} == {"1.fc.weight",
                                                                           "1.fc.bias"}


def test_cifar_for_imagenet_weights_is_normalised_as_their_transforms_say(tmp_path):
    import torchvision

    from devtools.fixtures import write_cifar_fixture

    from deepres.transfer import for_weights
    written = write_cifar_fixture(tmp_path / "cifar-10-batches-py", per_batch=4)
    weights = torchvision.models.ResNet18_Weights.DEFAULT
    data = for_weights(weights, root=tmp_path, download=False)
    first = torch.as_tensor(written["data_batch_1"]["data"][0].reshape(3, 32, 32)).float() / 255
    mean = torch.tensor(weights.transforms().mean).view(3, 1, 1)
    std = torch.tensor(weights.transforms().std).view(3, 1, 1)
    assert torch.allclose(data.x_train[0], (first - mean) / std)
    assert data.x_train.shape == (20, 3, 32, 32) and data.augment


def test_a_converged_linear_probe_fits_what_its_features_separate():
    """Features that separate the classes linearly: the fitted probe makes no training
    error, whatever the scale of the features (an SGD schedule might not get there)."""
    from deepres.transfer import fit_linear_probe
    torch.manual_seed(0)

    class Backbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(100 * x.flatten(1))   # large, unnormalised features

    y = torch.arange(60) % 3
    x = torch.nn.functional.one_hot(y, 4).float() + 0.1 * torch.randn(60, 4)
    data = SimpleNamespace(x_train=x.view(60, 1, 2, 2), y_train=y,
                           x_test=x.view(60, 1, 2, 2), y_test=y, classes=("a", "b", "c"))
    result = fit_linear_probe(Backbone(), data)
    assert result["train_error"] == 0 and result["test_error"] == 0


def test_the_main_transfer_runs_keep_learning_curves_and_the_exercises_runs_do_not():
    """Chapter 8's head start is read from evenly spaced test evaluations of its main
    runs; the exercise's runs are evaluated once, at the end (as before: their keys, and
    so the book's stored runs, did not change)."""
    from deepres.course.budget import PROFILES
    from deepres.course.experiments import CURVE_POINTS, chapter_specs, transfer_specs
    from deepres.training import n_evaluations
    from devtools.gpu_estimate import placeholder_data
    for name in ("smoke", "laptop", "gpu"):
        budget = PROFILES[name]
        data = placeholder_data(budget, budget.resnet_image_size)
        specs = chapter_specs(8, budget, data)
        source = specs.pop("source")
        steps = budget.steps // 4
        assert len(specs) == 4 * 2 * len(budget.seeds)
        for spec in specs.values():
            assert spec.options["steps"] == steps
            assert n_evaluations(steps, spec.options["eval_every"]) == min(CURVE_POINTS, steps)
        exercise = transfer_specs(source, data, budget, 10, [0])
        assert {n_evaluations(steps, s.options["eval_every"]) for s in exercise.values()} == {1}
