"""grid_search.py --backend ray: the same rows as sequential, a crashed trial retried from its last.pth,
a killed driver resumed without repeats. Skipped when Ray is not installed (requirements-ray.txt)."""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import grid_search
from caltech.grid import ray_tune, search
from caltech.grid import trials as grid
from caltech.training import fit
from caltech.utils import UserError
from conftest import ROOT, grid_flags, read_rows


@pytest.fixture(scope="module")
def local_ray():
    """One local 2-CPU Ray for the in-process tests; run_trials reuses it instead of starting its own."""
    ray = pytest.importorskip("ray")
    ray_tune.init_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture
def one_thread():
    """--threads 1 sets torch's thread count for this whole process: put it back afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def flags(out, data, *extra):
    """The test_grid.py grid, with 1-thread trials so CPU floating point matches between backends."""
    return grid_flags(out, data, "--threads", "1", "--cpus-per-trial", "1", *extra)


def grid_args(out, data, *extra):
    return grid_search.get_args_parser().parse_args(flags(out, data, *extra))


def tune_reports(ckpt_dir):
    """{run: [(epoch or None for the final report, worker pid), ...]} from Tune's result.json files."""
    reports = {}
    for path in (ckpt_dir / "ray_results").glob("*/*/result.json"):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        reports.setdefault(path.parent.name, []).extend((r.get("epoch"), r["pid"]) for r in lines)
    return reports


def test_ray_backend_gives_the_sequential_rows_and_best_checkpoint(local_ray, tiny_split, tmp_path, one_thread):
    seq = grid_search.main(grid_args(tmp_path / "seq", tiny_split.root, "--lr-base", "1e-4", "1e-2"))
    out = grid_search.main(grid_args(tmp_path / "ray", tiny_split.root, "--lr-base", "1e-4", "1e-2",
                                     "--backend", "ray"))
    columns = ["Experiment", "Run", "Best_Val_Acc", "Test_Acc", "Test_Mean_Class_Acc"]
    ray_rows = sorted(read_rows(tmp_path / "ray" / "results.csv"), key=lambda r: r["Experiment"])
    assert [[r[c] for c in columns] for r in ray_rows] == [[r[c] for c in columns] for r in seq["rows"]]
    assert out["best"]["Run"] == seq["best"]["Run"]
    chosen = [torch.load(tmp_path / d / "results_best_scratch.pth", weights_only=True) for d in ("seq", "ray")]
    assert all(torch.equal(chosen[0]["model"][k], chosen[1]["model"][k]) for k in chosen[0]["model"])
    reports = tune_reports(tmp_path / "ray" / "ckpt")  # every epoch reached Tune, then the test metrics
    assert sorted(reports) == sorted(r["Run"] for r in ray_rows)
    assert all([epoch for epoch, _ in runs] == [0, None] for runs in reports.values())


def test_runs_sharing_a_prefix_are_one_tune_trial_with_the_sequential_rows(local_ray, tiny_split, tmp_path,
                                                                          one_thread):
    grid_flags_ = ["--lr-base", "1e-4", "--epochs", "1", "2", "--step-size", "1", "--gamma", "0.5"]
    seq = grid_search.main(grid_args(tmp_path / "seq", tiny_split.root, *grid_flags_))
    grid_search.main(grid_args(tmp_path / "ray", tiny_split.root, *grid_flags_, "--backend", "ray"))
    columns = ["Experiment", "Run", "Best_Val_Acc", "Test_Acc", "Test_Mean_Class_Acc", "Epochs_Run"]
    ray_rows = sorted(read_rows(tmp_path / "ray" / "results.csv"), key=lambda r: r["Experiment"])
    assert [[r[c] for c in columns] for r in ray_rows] == [[r[c] for c in columns] for r in seq["rows"]]
    reports = tune_reports(tmp_path / "ray" / "ckpt")  # one Tune trial, named after the longer run
    assert list(reports) == [ray_rows[1]["Run"]]
    assert [epoch for epoch, _ in reports[ray_rows[1]["Run"]]] == [0, None, 1, None]  # the 1-epoch run's metrics


def crash_once_after_an_epoch(marker):
    """search.run_group, except that the first group to finish an epoch creates `marker` and crashes,
    after that epoch's checkpoint is on disk. A local function: Ray ships it to the workers by value."""
    real = search.run_group

    def run_group(args, group, on_epoch=None, on_result=None):
        def report(stats):
            on_epoch(stats)
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))  # atomic: one crash, whichever group is first
            except FileExistsError:
                return
            raise RuntimeError("crashing once on purpose")
        real(args, group, report, on_result)
    return run_group


def test_crashed_trial_is_retried_from_its_last_checkpoint(local_ray, tiny_split, tmp_path, monkeypatch):
    monkeypatch.setattr(search, "run_group", crash_once_after_an_epoch(str(tmp_path / "crashed")))
    grid_search.main(grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4", "1e-2", "--epochs", "2",
                                "--backend", "ray"))
    assert (tmp_path / "crashed").exists()
    rows = read_rows(tmp_path / "results.csv")
    assert sorted(r["Experiment"] for r in rows) == ["1", "2"]
    reports = tune_reports(tmp_path / "ckpt")
    (crashed,) = [run for run, reps in reports.items() if len({pid for _, pid in reps}) == 2]
    # a fresh restart would report epoch 0 again; the retry resumed after it, in a new worker
    assert [epoch for epoch, _ in reports[crashed]] == [0, 1, None]
    (other,) = set(reports) - {crashed}
    assert [epoch for epoch, _ in reports[other]] == [0, 1, None]


def test_trials_that_keep_failing_are_named(local_ray, tiny_split, tmp_path):
    # --max-failures 0 and a split folder that is not there: the trial fails once and is given up
    args = grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4", "--max-failures", "0",
                     "--backend", "ray")
    with pytest.raises(UserError, match=r"scratch_exp1_\S+_s107_\S*[0-9a-f]{6} \(.*rerun the same command"):
        ray_tune.run_trials([search.plan_trials(args, tiny_split.sha256)],
                            args, broken_run_group, lambda trial, metrics: None)


def broken_run_group(args, group, on_epoch=None, on_result=None):
    search.run_group(argparse.Namespace(**{**vars(args), "data": str(Path(args.data).parent / "no_such_split")}),
                          group, on_epoch, on_result)


def test_missing_ray_is_one_sentence(monkeypatch, tiny_split, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets when Ray is not installed
    with pytest.raises(UserError, match=r"pip install -r requirements-ray\.txt"):
        ray_tune.run_trials([], grid_args(tmp_path, tiny_split.root), search.run_group, None)


def session_pids(sid):
    """Live processes of session `sid`: a driver started with start_new_session and its Ray processes."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, _, session = stat.read_text().rsplit(")", 1)[1].split()[:4]
        except (OSError, ValueError):
            continue
        if int(session) == sid and state != "Z":
            pids.append(int(stat.parent.name))
    return pids


def reap(sid):
    for pid in session_pids(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the driver's Ray processes in /proc")
def test_killed_driver_resumes_without_repeating_or_duplicating(tiny_split, tmp_path):
    pytest.importorskip("ray")
    cmd = [sys.executable, str(ROOT / "grid_search.py"),
           *flags(tmp_path, tiny_split.root, "--lr-base", "1e-4", "1e-2", "--backend", "ray", "--max-concurrent", 1)]
    results = tmp_path / "results.csv"
    sessions = []
    try:
        with open(tmp_path / "killed.log", "w") as log:
            driver = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            sessions.append(driver.pid)
            deadline = time.monotonic() + 300
            while not (results.exists() and read_rows(results)) and driver.poll() is None:
                assert time.monotonic() < deadline, "no row after 300 s"
                time.sleep(0.2)
            os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started, mid-grid
            driver.wait()
        reap(driver.pid)  # Ray workers sit in process groups of their own
        assert len(read_rows(results)) == 1, (tmp_path / "killed.log").read_text()[-3000:]

        rerun = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 start_new_session=True)
        sessions.append(rerun.pid)
        out = rerun.communicate(timeout=300)[0]
        assert rerun.returncode == 0, out[-3000:]
    finally:
        for sid in sessions:
            reap(sid)
    assert "grid: 2 runs, 1 already in" in out and out.count("finished (1/1 of this invocation)") == 1
    rows = read_rows(results)
    assert sorted(r["Experiment"] for r in rows) == ["1", "2"]
    best = max(rows, key=lambda r: (float(r["Best_Val_Acc"]), -int(r["Experiment"])))
    chosen = torch.load(tmp_path / "results_best_scratch.pth", weights_only=True)
    run = torch.load(tmp_path / "ckpt" / best["Run"] / "best.pth", weights_only=True)
    assert all(torch.equal(chosen["model"][k], run["model"][k]) for k in chosen["model"])
    assert len(list((tmp_path / "ckpt" / "ray_results").iterdir())) == 2  # one Tune experiment per invocation


def test_each_trial_runs_cpus_per_trial_torch_threads_unless_threads_is_given(tmp_path, monkeypatch):
    tune = pytest.importorskip("ray.tune")
    seen = []
    monkeypatch.setattr(fit, "train", lambda targs, **kwargs: seen.append(targs) or {})
    monkeypatch.setattr(tune, "report", lambda *args, **kwargs: None)
    trials = grid.make_trials([1], [1e-3], [1e-4], [107], True)
    for extra in ([], ["--threads", "2"]):
        args = grid_search.get_args_parser().parse_args(grid_flags(tmp_path, tmp_path, "--cpus-per-trial", "3", *extra))
        ray_tune.trainable({"group": 0}, [trials], args, search.run_group)
    assert [targs.threads for targs in seen] == [3, 2]
    assert seen[0].run_name == trials[0].run_name
