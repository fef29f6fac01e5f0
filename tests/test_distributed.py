"""Training outside the notebook: ``python -m deepres.run`` and DistributedDataParallel.

The DDP test runs ``torchrun`` with 2 CPU processes (the gloo backend): a run with global
batch B must be the single-process run with batch B and the same seed, to within float
rounding (the processes sum their gradients in another order), and the cache entry it
writes must be the one a single process then loads.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import deepres.training as train_module
from deepres.course.budget import get_budget
from deepres.course.experiments import chapter_runs
from deepres.training import train
from devtools.testing import no_bn_model, synthetic_data

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-5   # largest difference allowed in a loss, error or weight (measured: 2.4e-7)

SCRIPT = """
import json, sys
import torch, torch.distributed as dist
from devtools.testing import no_bn_model, synthetic_data
from deepres.training import train

dist.init_process_group("gloo")
run = train(no_bn_model, synthetic_data(), steps=30, batch_size=32, lr=0.05,
            eval_every=10, seed=2, device="cpu", name="ddp", progress=False)
if dist.get_rank() == 0:
    json.dump(run.history, open(sys.argv[1], "w"))
dist.destroy_process_group()
"""


def env_with_cache(cache):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env[train_module.CACHE_ENV] = str(cache)
    return env


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(train_module.CACHE_ENV, str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_ddp_on_two_processes_is_the_single_process_run(cache, tmp_path, monkeypatch):
    monkeypatch.setenv(train_module.THREADS_ENV, "1")   # as each process (a CPU run's key)
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    out = tmp_path / "history.json"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc_per_node=2", str(script), str(out)],
        capture_output=True, text=True, timeout=600, env=env_with_cache(cache))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    ddp = json.loads(out.read_text())
    assert len(list(cache.glob("*.pt"))) == 1   # one entry, written by process 0

    settings = dict(steps=30, batch_size=32, lr=0.05, eval_every=10, seed=2,
                    device="cpu", progress=False)
    single = train(no_bn_model, synthetic_data(), use_cache=False, **settings)
    for key in ("loss", "error", "train_loss", "test_loss", "test_error"):
        worst = max(abs(a - b) for a, b in zip(ddp[key], single.history[key]))
        print(f"DDP against one process, largest difference in {key}: {worst:.3g}")
        assert worst <= TOLERANCE, f"{key}: DDP differs from one process by {worst:.2g}"
    assert ddp["step"] == single.history["step"]

    loaded = train(no_bn_model, synthetic_data(), use_cache=True, **settings)
    assert loaded.cached, "the book would not load what the distributed run wrote"
    assert loaded.history == ddp
    worst = max((a - b).abs().max().item() for a, b in
                zip(loaded.model.state_dict().values(), single.model.state_dict().values()))
    print(f"DDP against one process, largest difference in a weight: {worst:.3g}")
    assert worst <= TOLERANCE


DECIDE_SCRIPT = """
import json, os, sys
import torch.distributed as dist
rank = int(os.environ["RANK"])
os.environ["DEEPRES_CACHE"] = os.path.join(sys.argv[1], f"rank{rank}")   # its own view
from devtools.testing import no_bn_model, synthetic_data
from deepres.training import train

dist.init_process_group("gloo")
run = train(no_bn_model, synthetic_data(), steps=30, batch_size=32, lr=0.05,
            eval_every=10, seed=2, device="cpu", name="ddp", progress=False)
json.dump(dict(cached=run.cached, history=run.history),
          open(os.path.join(sys.argv[1], f"out{rank}.json"), "w"))
dist.destroy_process_group()
"""


def test_process_0_decides_for_all_what_is_in_the_cache(tmp_path, monkeypatch):
    """Each process sees a cache of its own, as on a file system that shows processes
    different files: only process 0's holds the run. Both must load it (process 1 must
    not start training alone and wait for process 0 for ever)."""
    monkeypatch.setenv(train_module.THREADS_ENV, "1")
    monkeypatch.setenv(train_module.CACHE_ENV, str(tmp_path / "rank0"))
    train(no_bn_model, synthetic_data(), steps=30, batch_size=32, lr=0.05, eval_every=10,
          seed=2, device="cpu", name="one", progress=False)
    script = tmp_path / "decide.py"
    script.write_text(DECIDE_SCRIPT)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc_per_node=2", str(script), str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env_with_cache(tmp_path / "unused"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    out = [json.loads((tmp_path / f"out{r}.json").read_text()) for r in (0, 1)]
    assert out[0]["cached"] and out[1]["cached"]
    assert out[0]["history"] == out[1]["history"]
    assert not list((tmp_path / "rank1").glob("*.pt"))   # process 1 wrote nothing


def test_the_command_line_fills_the_cache_the_chapter_reads(cache, monkeypatch):
    result = subprocess.run(
        [sys.executable, "-m", "deepres.run", "--chapter", "2", "--budget", "smoke"],
        capture_output=True, text=True, timeout=600, env=env_with_cache(cache), cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "chapter 2: 4 runs in the cache, 4 trained now" in result.stdout
    # the chapter as the book's build runs it (_ext/prefill.py): one thread a run
    monkeypatch.setenv(train_module.THREADS_ENV, "1")
    runs = chapter_runs(2, get_budget("smoke", verbose=False), "cpu")
    assert len(runs) == 4 and all(r.cached for r in runs.values())
    monkeypatch.setenv(train_module.THREADS_ENV, "2")   # threads decide the numbers: a new run
    assert not any(r.cached for r in chapter_runs(2, get_budget("smoke", verbose=False),
                                                    "cpu").values())


def test_the_command_line_refuses_an_unknown_chapter_or_budget(cache):
    for args in (["--chapter", "9"], ["--chapter", "2", "--budget", "huge"]):
        result = subprocess.run([sys.executable, "-m", "deepres.run", *args],
                                capture_output=True, text=True, env=env_with_cache(cache),
                                cwd=ROOT)
        assert result.returncode == 2 and "invalid choice" in result.stderr


def test_every_chapter_that_trains_is_known_to_the_command_line():
    from deepres.course.experiments import CHAPTERS, chapter_specs
    assert list(CHAPTERS) == list(range(1, 9))
    with pytest.raises(ValueError, match="1 to 8"):
        chapter_specs(9, get_budget("smoke", verbose=False))


def test_share_out_gives_the_longest_runs_first_to_the_least_loaded_process():
    from deepres.course.planning import share_out
    todo = {"a": 5.0, "b": 4.0, "c": 3.0, "d": 3.0, "e": 1.0}
    shares = share_out(todo, 2)
    assert sorted(k for s in shares for k in s) == sorted(todo)   # each run once
    assert shares == [["a", "d"], ["b", "c", "e"]]                  # loads 8 and 8
    assert share_out(todo, 1) == [["a", "b", "c", "d", "e"]]


def test_jobs_share_the_runs_out_and_give_the_numbers_of_one_process(tmp_path):
    """Chapters 2 and 3 share 4 of their 8 runs: each is trained once, by one of the
    processes, and the numbers are those of one process training them all (one thread
    per run in both cases), as the book's chapters then load them."""
    out = {}
    for jobs in ("2", "1"):
        cache = tmp_path / f"jobs{jobs}"
        reports = tmp_path / f"reports{jobs}"
        result = subprocess.run(
            [sys.executable, "-m", "deepres.run", "--chapter", "2", "3", "--budget", "smoke",
             "--jobs", jobs, "--reports", str(reports)], capture_output=True, text=True,
            timeout=600, env=env_with_cache(cache), cwd=ROOT)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        assert f"8 runs to train into {cache}: about" in result.stdout
        assert f"steps' work of the laptop ResNet-56 on one thread" in result.stdout
        assert f"in {jobs} process(es) of one thread each" in result.stdout
        report = json.loads((reports / "jobs.json").read_text())
        assert report["runs"] == 8 and report["work"] > 0 and report["unit_ms"] > 0
        assert "chapter 3: 8 runs in the cache, 0 trained now" in result.stdout
        assert len(list(reports.glob("jobs-*.log"))) == int(jobs)
        assert not list(cache.glob("*.log")) and not list(cache.glob("*.json"))   # runs only
        out[jobs] = {p.name: torch.load(p, weights_only=True) for p in cache.glob("*.pt")}
    assert len(out["2"]) == 8 and out["2"].keys() == out["1"].keys()
    for name, stored in out["2"].items():
        assert stored["history"] == out["1"][name]["history"], name
    again = subprocess.run(
        [sys.executable, "-m", "deepres.run", "--chapter", "3", "--budget", "smoke",
         "--jobs", "2"], capture_output=True, text=True, timeout=600,
        env=env_with_cache(tmp_path / "jobs2"), cwd=ROOT)
    assert "chapters 3: every run is in" in again.stdout


def test_jobs_train_runs_that_start_from_a_source_in_a_second_round(tmp_path):
    """Chapter 8: the source network first, then, once it is stored and so their keys are
    known, its 16 transfer runs; the chapter then loads all 17."""
    cache = tmp_path / "cache"
    result = subprocess.run(
        [sys.executable, "-m", "deepres.run", "--chapter", "8", "--budget", "smoke",
         "--jobs", "2"], capture_output=True, text=True, timeout=600,
        env=env_with_cache(cache), cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert f"1 runs to train into {cache}" in result.stdout
    assert f"16 runs to train into {cache}" in result.stdout
    assert "chapter 8: 17 runs in the cache, 0 trained now" in result.stdout


def test_the_command_line_refuses_a_wrong_number_of_jobs(cache):
    for jobs in ("0", "two", "-1"):
        result = subprocess.run(
            [sys.executable, "-m", "deepres.run", "--chapter", "2", "--jobs", jobs],
            capture_output=True, text=True, env=env_with_cache(cache), cwd=ROOT)
        assert result.returncode == 2 and "must be a number of processes" in result.stderr, jobs


def test_the_book_build_trains_first_unless_it_executes_nothing(monkeypatch, tmp_path):
    import importlib.util
    from types import SimpleNamespace
    spec = importlib.util.spec_from_file_location("prefill", ROOT / "_ext" / "prefill.py")
    prefill = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prefill)
    calls, warnings = [], []
    answer = SimpleNamespace(returncode=0)
    from devtools import build
    monkeypatch.setattr(build.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or answer)
    monkeypatch.setattr(build.logger, "warning", warnings.append)
    monkeypatch.delenv("DEEPRES_PREFILL", raising=False)
    # prefill sets the variable for the build's whole process: set it here first, so that
    # the test's undo removes it again afterwards
    monkeypatch.setenv(train_module.THREADS_ENV, "unset by the test")
    monkeypatch.delenv(train_module.THREADS_ENV)

    monkeypatch.setenv(prefill.REPORTS_ENV, "unset by the test")
    monkeypatch.delenv(prefill.REPORTS_ENV)

    def app(mode):
        return SimpleNamespace(config=SimpleNamespace(nb_execution_mode=mode), srcdir=ROOT,
                               outdir=str(tmp_path / "_build" / "html"))

    prefill.prefill(app("off"))
    assert calls == []
    assert os.environ[train_module.THREADS_ENV] == "1"   # the kernels train on one thread
    prefill.prefill(app("force"))
    reports = tmp_path / "_build" / "reports"   # the build's reports: not the run cache
    assert calls[-1][1:] == ["-m", "deepres.run", "--chapter", *map(str, range(1, 9)),
                             "--jobs", "auto", "--reports", str(reports)]
    assert os.environ[prefill.REPORTS_ENV] == str(reports) and reports.is_dir()
    assert warnings == []
    answer.returncode = 1              # it failed: the build says so, and goes on
    prefill.prefill(app("force"))
    assert len(calls) == 2 and "failed (exit code 1)" in warnings[0]
    monkeypatch.setenv("DEEPRES_PREFILL", "0")
    prefill.prefill(app("force"))
    assert len(calls) == 2


def test_the_build_measures_the_performance_page_once_alone(monkeypatch, tmp_path):
    """_ext/performance.py: the Performance page's figures are measured by a build step
    into _build/reports/performance.json (a stale one removed first), not in the page."""
    import importlib.util
    from types import SimpleNamespace
    from devtools import build
    spec = importlib.util.spec_from_file_location("performance", ROOT / "_ext" / "performance.py")
    performance = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(performance)
    calls = []
    monkeypatch.setattr(build.subprocess, "run",
                        lambda cmd, **kw: calls.append(cmd) or SimpleNamespace(returncode=0))
    monkeypatch.delenv("DEEPRES_PERFORMANCE", raising=False)
    report = tmp_path / "_build" / "reports" / "performance.json"
    report.parent.mkdir(parents=True)
    report.write_text("{}")   # an old build's

    def app(mode):
        return SimpleNamespace(config=SimpleNamespace(nb_execution_mode=mode), srcdir=ROOT,
                               outdir=str(tmp_path / "_build" / "html"))

    performance.measure(app("off"))
    assert calls == [] and not report.exists()
    performance.measure(app("force"))
    assert calls[-1][1:] == ["-m", "devtools.bench", "--book", str(report)]
    monkeypatch.setenv("DEEPRES_PERFORMANCE", "0")
    performance.measure(app("force"))
    assert len(calls) == 1


def test_the_unit_of_work_is_a_one_thread_step_and_leaves_the_threads_as_they_were():
    from deepres.measure import unit_seconds
    threads = torch.get_num_threads()
    seconds = unit_seconds(repeats=1)
    assert 0 < seconds < 60 and torch.get_num_threads() == threads


def test_more_processes_than_gpus_is_refused_with_what_to_do(monkeypatch):
    from deepres import run
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(SystemExit, match=r"2 GPU\(s\).*--nproc_per_node=2"):
        run.start_distributed()


def test_jobs_on_gpus_give_each_process_one_gpu_of_its_own(monkeypatch, tmp_path):
    from deepres.run import worker_env
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    seen = [worker_env(i, "cuda", tmp_path)["CUDA_VISIBLE_DEVICES"] for i in range(3)]
    assert seen == ["2", "5", "2"]           # in turn when there are more processes
    cpu = worker_env(0, "cpu", tmp_path)
    assert cpu["CUDA_VISIBLE_DEVICES"] == "2,5" and cpu[train_module.CACHE_ENV] == str(tmp_path)


def test_only_the_first_process_of_a_machine_fetches_the_data(monkeypatch):
    import deepres.run as run_module
    fetched = []
    monkeypatch.setattr(run_module, "load_fashion_mnist_raw", lambda: fetched.append("f"))
    monkeypatch.setattr(run_module, "load_cifar10_raw", lambda: fetched.append("c"))
    for local_rank, budget in (("1", "laptop"), ("0", "laptop"), ("0", "gpu")):
        monkeypatch.setenv("LOCAL_RANK", local_rank)
        run_module.fetch_data(get_budget(budget, verbose=False))
    assert fetched == ["f", "c"]
