import copy
import dataclasses
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import deepres.training as train_module
from deepres.data import batches
from deepres.training import cache_dir, clear_cache, evaluate, learning_rate, train
from devtools.testing import lose_the_runtime_at_call, synthetic_data


def tiny_model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 10))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(train_module.CACHE_ENV, str(tmp_path / "runs"))
    monkeypatch.delenv(train_module.THREADS_ENV, raising=False)   # this process's threads
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


NOTEBOOK_CELL = """
import torch
from torch import nn

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 10))

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)){extra})
"""


def cell_class(extra):
    """A class as a notebook cell defines it: its module is ``__main__`` and Python cannot
    find its source (``inspect.getsource`` fails)."""
    namespace = {"__name__": "__main__"}
    exec(compile(NOTEBOOK_CELL.format(extra=extra), "<cell>", "exec"), namespace)
    return namespace["Block"]


def test_a_learner_class_whose_source_cannot_be_read_is_keyed_by_its_code(cache):
    import inspect
    first, changed = cell_class(""), cell_class(" * 2")   # only forward() differs
    with pytest.raises((OSError, TypeError)):
        inspect.getsource(first)
    data = synthetic_data()
    settings = dict(steps=4, batch_size=32, eval_every=4, progress=False)
    assert not train(first, data, **settings).cached
    assert train(cell_class(""), data, **settings).cached   # the same code: the same run
    assert not train(changed, data, **settings).cached     # a fix to forward: a new run


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


def test_the_cache_is_one_folder_for_the_whole_machine(tmp_path, monkeypatch):
    """Every clone of the book and every notebook share the runs they trained."""
    monkeypatch.delenv(train_module.CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "book" / "chapters").mkdir(parents=True)
    (tmp_path / "book" / "_config.yml").write_text("title: x\n")
    monkeypatch.chdir(tmp_path / "book" / "chapters")
    assert cache_dir() == tmp_path / ".cache" / "deepres" / "runs"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "deepres" / "runs"
    monkeypatch.setenv(train_module.CACHE_ENV, str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


@pytest.mark.parametrize("damage", ["truncated", "empty", "not a checkpoint"])
def test_an_unreadable_cache_entry_is_trained_again_with_a_message(cache, capsys, damage):
    data = synthetic_data()
    fresh = fit(data, use_cache=True)
    [entry] = cache.glob("*.pt")
    content = entry.read_bytes()
    entry.write_bytes({"truncated": content[:len(content) // 2], "empty": b"",
                       "not a checkpoint": b"hello"}[damage])
    capsys.readouterr()
    again = fit(data, use_cache=True)
    said = capsys.readouterr().out
    assert "could not be read" in said and "training again" in said
    assert not again.cached and again.history == fresh.history
    assert fit(data, use_cache=True).cached   # written whole this time


def test_an_unreadable_checkpoint_is_removed_and_the_run_starts_again(cache, capsys):
    data = synthetic_data()
    whole = fit(data)
    key_file = fit(data, use_cache=True)
    [entry] = cache.glob("*.pt")
    checkpoint = entry.with_name(entry.name.replace(".pt", ".checkpoint.pt"))
    entry.unlink()
    checkpoint.write_bytes(b"PK\x03\x04 cut short")
    capsys.readouterr()
    run = fit(data, use_cache=True)
    assert "could not be read" in capsys.readouterr().out
    assert run.history == whole.history == key_file.history
    assert not checkpoint.exists() and not list(cache.glob("*.tmp"))


def test_cpu_runs_are_keyed_by_the_kernels_that_ran_them(cache, monkeypatch):
    data = synthetic_data()
    fit(data, use_cache=True)
    assert fit(data, use_cache=True).cached
    monkeypatch.setattr(train_module, "kernels", lambda: ["AVX512", "ONEDNN_MAX_CPU_ISA="])
    assert not fit(data, use_cache=True).cached


def dropout_model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Dropout(0.3), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 10))


def test_an_interrupted_run_resumes_to_the_same_weights_and_history(cache, monkeypatch, capsys):
    """Stop a run mid-way with an exception (as a lost runtime would stop it), start it
    again: it resumes from its last checkpoint and ends bit for bit where an
    uninterrupted run ends. Augmentation and dropout make every random stream count."""
    monkeypatch.setattr(train_module, "CHECKPOINT_SECONDS", 1e9)  # at evaluations only
    data = dataclasses.replace(synthetic_data(), augment=True)
    settings = dict(steps=30, batch_size=32, lr=0.05, eval_every=10, seed=3, progress=False)
    whole = train(dropout_model, data, use_cache=False, **settings)

    put_back = lose_the_runtime_at_call(monkeypatch, train_module, 3)   # at step 20
    with pytest.raises(KeyboardInterrupt):
        train(dropout_model, data, **settings)
    assert [p.name.endswith(".checkpoint.pt") for p in cache.iterdir()] == [True]
    put_back()
    capsys.readouterr()
    resumed = train(dropout_model, data, **settings)
    assert "resuming from the checkpoint at step 10 of 30" in capsys.readouterr().out
    assert resumed.history == whole.history
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert [p.name.endswith(".checkpoint.pt") for p in cache.iterdir()] == [False]


def test_batches_can_start_part_way():
    data = dataclasses.replace(synthetic_data(), augment=True)
    everything = list(batches(data, 48, 12, seed=5))
    tail = list(batches(data, 48, 12, seed=5, start=7))
    assert len(tail) == 5
    for (x, y), (x2, y2) in zip(everything[7:], tail):
        assert torch.equal(x, x2) and torch.equal(y, y2)


def test_the_estimate_is_said_before_training_and_disturbs_nothing(cache, capsys):
    data = synthetic_data()
    torch.manual_seed(0)
    model = dropout_model()
    before = copy.deepcopy(model.state_dict())
    rng = torch.get_rng_state()
    seconds = train_module.estimate_seconds(model, data, steps=100, batch_size=32,
                                            eval_every=50, device="cpu")
    assert seconds > 0
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    run = fit(data, use_cache=True)
    out = capsys.readouterr().out
    assert "not in the run cache; training 30 steps of batch 32 on cpu should take about" in out
    assert run.estimate > 0
    assert fit(data, use_cache=True).estimate == run.estimate  # kept in the cache


@pytest.mark.parametrize("seconds, shown", [(4.4, "4 s"), (200, "3 min 20 s"),
                                            (7500, "2 h 05 min")])
def test_duration(seconds, shown):
    assert train_module.duration(seconds) == shown


def test_evaluations_counted_like_the_loop():
    assert train_module.n_evaluations(30, 10) == 3
    assert train_module.n_evaluations(35, 10) == 4


def test_history_is_the_step_by_step_reference_loop(cache):
    """The loop keeps each step's loss and error on the device and copies them at each
    evaluation (no wait for a GPU at every step): on the CPU the numbers are those of a
    plain loop that reads them after every step."""
    data = dataclasses.replace(synthetic_data(), augment=True)
    settings = dict(steps=25, batch_size=32, lr=0.05, eval_every=10, seed=4)
    run = fit(data, **settings)
    torch.manual_seed(4)
    model = tiny_model().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    losses, errors = [], []
    for step, (x, y) in enumerate(batches(data, 32, 25, seed=4)):
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, 25, 0.05)
        logits = model(x)
        loss = nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        errors.append((logits.argmax(1) != y).float().mean().item())
        # (the library evaluates every 10 steps in eval mode: that changes no weight)
    assert run.history["loss"] == losses and run.history["error"] == errors
    assert run.history["step"] == list(range(1, 26))


def test_evaluation_time_is_kept_apart(cache):
    run = fit(synthetic_data(), steps=20, eval_every=5)
    assert 0 < run.eval_seconds < run.seconds
    again = fit(synthetic_data(), steps=20, eval_every=5, use_cache=True)
    cached = fit(synthetic_data(), steps=20, eval_every=5, use_cache=True)
    assert cached.cached and cached.eval_seconds == again.eval_seconds


def test_divergence_names_the_first_bad_step(cache):
    with pytest.raises(FloatingPointError, match=r"at step \d+\. The learning rate"):
        fit(synthetic_data(), lr=1e6)


def test_a_distributed_cpu_run_refuses_batchnorm():
    with pytest.raises(ValueError, match="SyncBatchNorm"):
        train_module._distribute(tiny_model(), torch.device("cpu"))


def test_cpu_runs_train_on_deepres_threads_and_are_keyed_by_it(cache, monkeypatch):
    data = synthetic_data()
    threads = torch.get_num_threads()
    seen = []
    real_step = torch.optim.SGD.step

    def step(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    monkeypatch.setenv(train_module.THREADS_ENV, "1")
    one = fit(data, use_cache=True)
    assert set(seen) == {1} and torch.get_num_threads() == threads   # restored
    assert one.config["threads"] == 1 and fit(data, use_cache=True).cached
    monkeypatch.setenv(train_module.THREADS_ENV, "2")
    assert not fit(data, use_cache=True).cached


def test_a_class_changed_in_a_notebook_cell_trains_again(tmp_path):
    """As a learner does it, in a Jupyter kernel: define a block in a cell, train, fix
    only its forward() in the cell and run it again, train again: a new run, with its
    own numbers, not the old one from the cache (Python 3.11+ cannot read the source of
    a class defined in a cell)."""
    import nbformat
    from nbclient import NotebookClient
    setup = ("import os, sys\n"
             f"os.environ['DEEPRES_CACHE'] = {str(tmp_path / 'cache')!r}\n"
             "from devtools.testing import lose_the_runtime_at_call, synthetic_data\n"
             "from deepres import train\n"
             "data = synthetic_data()\n"
             "settings = dict(steps=4, batch_size=32, eval_every=4, progress=False)")
    trained = ("run = train(Block, data, **settings)\n"
               "print('cached:', run.cached, run.history['loss'])")
    cells = [setup, NOTEBOOK_CELL.format(extra=""), trained,
             NOTEBOOK_CELL.format(extra=""), trained,            # the same code again
             NOTEBOOK_CELL.format(extra=" * 2"), trained]        # only forward() changed
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    said = [re.search(r"^cached: (\w+) (.*)$", "".join(o.get("text", "") for o in
                                                   notebook.cells[i].outputs), re.M).groups()
            for i in (2, 4, 6)]
    (first, losses), (again, same_losses), (changed, new_losses) = said
    assert (first, again, changed) == ("False", "True", "False")
    assert same_losses == losses and new_losses != losses
