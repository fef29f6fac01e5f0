import pytest
import torch

from deepres.course.budget import ENV_VAR, PROFILES, get_budget, pick_device, setup


def test_unknown_budget_names_the_choices(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(ValueError) as error:
        get_budget("huge")
    message = str(error.value)
    assert "huge" in message and ENV_VAR in message
    assert all(name in message for name in PROFILES)


def test_unknown_budget_in_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "laptpo")
    with pytest.raises(ValueError, match="laptpo"):
        get_budget()


def test_environment_overrides_the_device_default(monkeypatch, capsys):
    monkeypatch.setenv(ENV_VAR, "Smoke")
    assert get_budget(device="cuda").name == "smoke"
    assert "budget: smoke" in capsys.readouterr().out


def test_device_default(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert get_budget(device="cpu", verbose=False).name == "laptop"
    assert get_budget(device="cuda", verbose=False).name == "gpu"
    assert get_budget(device="mps", verbose=False).name == "laptop"


def test_fields_can_be_overridden(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert get_budget("smoke", steps=3, verbose=False).steps == 3


def test_cpu_without_gpu(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device().type == "cpu"
    assert "device: cpu" in capsys.readouterr().out


def test_gpu_is_preferred(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "Fake GPU")
    assert pick_device(verbose=False).type == "cuda"


def test_setup_prints_both(monkeypatch, capsys):
    monkeypatch.setenv(ENV_VAR, "smoke")
    device, budget = setup()
    out = capsys.readouterr().out
    assert "device:" in out and "budget: smoke" in out
    assert budget is not None and device.type in ("cpu", "cuda", "mps")


def test_paper_profile_is_paper_scale():
    paper = PROFILES["paper"]
    assert paper.dataset == "cifar10" and paper.steps == 64000 and paper.batch_size == 128


def test_a_mocked_cuda_device_gets_the_gpu_budget(monkeypatch, capsys):
    """No GPU here: the whole choice, from setup() on, with CUDA mocked."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "Tesla T4")
    device, budget = setup()
    out = capsys.readouterr().out
    assert device.type == "cuda" and budget.name == "gpu"
    assert "Tesla T4" in out and "budget: gpu" in out and 'setup("laptop")' in out


def test_the_argument_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "smoke")
    assert setup("laptop", verbose=False)[1].name == "laptop"
    assert setup(verbose=False)[1].name == "smoke"


def test_gpu_budget_is_cifar_at_the_papers_widths_with_a_shorter_schedule():
    gpu, paper = PROFILES["gpu"], PROFILES["paper"]
    assert gpu.dataset == paper.dataset == "cifar10"
    assert gpu.resnet_widths == paper.resnet_widths == (16, 32, 64)
    assert gpu.resnet_image_size == paper.resnet_image_size == 0  # CIFAR's own 32x32
    assert gpu.steps < paper.steps and gpu.batch_size == paper.batch_size
