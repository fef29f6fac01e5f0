import pytest
import torch
from torch import nn

import deepres.training as train_module
from deepres.training import cache_dir, clear_cache, evaluate, learning_rate, train
from helpers import synthetic_data


def tiny_model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 10))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(train_module.CACHE_ENV, str(tmp_path / "runs"))
    return tmp_path / "runs"


def fit(data, **kwargs):
    settings = dict(steps=30, batch_size=32, lr=0.05, eval_every=10, seed=0,
                    progress=False, use_cache=False)
    settings.update(kwargs)
    return train(tiny_model, data, **settings)


def test_training_is_deterministic(cache):
    data = synthetic_data()
    a, b = fit(data), fit(data)
    assert a.history == b.history
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(),
                                                  b.model.state_dict().values()))
    c = fit(data, seed=1)
    assert c.history["loss"] != a.history["loss"]


def test_training_learns_and_records_history(cache):
    run = fit(synthetic_data(), steps=60)
    h = run.history
    assert h["step"] == list(range(1, 61)) and len(h["loss"]) == 60
    assert h["eval_step"] == [10, 20, 30, 40, 50, 60]
    assert len(h["test_error"]) == len(h["train_error"]) == 6
    assert run.test_error < 0.5  # chance is 0.9
    assert run.seconds > 0 and run.device == "cpu" and not run.cached


def test_training_error_is_measured_in_eval_mode_on_a_fixed_subset(cache):
    """With dropout, the running error (train mode) is not the training error: that one is
    evaluated like the test error, on the first TRAIN_EVAL_SIZE training images."""
    data = synthetic_data()

    def with_dropout():
        return nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(data.x_train[0].numel(), 10))

    run = train(with_dropout, data, steps=40, batch_size=32, lr=0.05, eval_every=20,
                progress=False, use_cache=False)
    n = train_module.TRAIN_EVAL_SIZE
    loss, error = evaluate(run.model, data.x_train[:n], data.y_train[:n], torch.device("cpu"))
    assert run.train_error == error and run.history["train_loss"][-1] == loss
    assert len(run.history["running_error"]) == len(run.history["train_error"]) == 2
    assert run.history["running_error"] != run.history["train_error"]


def test_cache_hit_gives_the_same_numbers(cache, capsys):
    data = synthetic_data()
    fresh = fit(data, use_cache=True)
    assert len(list(cache.glob("*.pt"))) == 1
    again = fit(data, use_cache=True)
    assert again.cached and "cached" in capsys.readouterr().out
    assert again.history == fresh.history
    x = data.x_test[:8]
    with torch.no_grad():
        assert torch.equal(fresh.model.eval()(x), again.model.eval()(x))


def test_cache_key_follows_the_configuration(cache):
    data = synthetic_data()
    fit(data, use_cache=True)
    assert not fit(data, use_cache=True, lr=0.02).cached
    assert not fit(data, use_cache=True, seed=5).cached
    assert not fit(synthetic_data(seed=1), use_cache=True).cached
    assert len(list(cache.glob("*.pt"))) == 4
    assert clear_cache() == 4 and not list(cache.glob("*.pt"))


def test_cache_key_follows_the_model(cache):
    data = synthetic_data()
    fit(data, use_cache=True)
    wider = lambda: nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 10))
    assert not train(wider, data, steps=30, batch_size=32, eval_every=10,
                     progress=False).cached


def test_divergence_is_reported_clearly(cache):
    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(synthetic_data(), lr=1e6)


def test_learning_rate_schedule_follows_he_et_al():
    steps = 64000
    assert learning_rate(0, steps, 0.1) == 0.1
    assert learning_rate(31999, steps, 0.1) == 0.1
    assert learning_rate(32000, steps, 0.1) == pytest.approx(0.01)
    assert learning_rate(48000, steps, 0.1) == pytest.approx(0.001)
    assert learning_rate(10, steps, 0.1, warmup=400) == pytest.approx(0.01)


def test_cache_dir_finds_the_book(tmp_path, monkeypatch):
    monkeypatch.delenv(train_module.CACHE_ENV, raising=False)
    (tmp_path / "_config.yml").write_text("title: x\n")
    (tmp_path / "_toc.yml").write_text("root: x\n")
    (tmp_path / "chapters").mkdir()
    monkeypatch.chdir(tmp_path / "chapters")
    assert cache_dir() == tmp_path / "_build" / "runcache"
