import pytest
import torch

from deepres.budget import ENV_VAR, PROFILES, get_budget, pick_device, setup


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
    assert get_budget(device="cuda", verbose=False).name == "paper"


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
