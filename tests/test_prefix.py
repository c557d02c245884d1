"""grid_search.py trains runs that differ only in --epochs once: the shorter runs are saved, tested and
recorded on the way, with results identical to training each on its own (exact with StepLR)."""
import json

import pytest
import torch

import grid_search
import train
from caltech.grid import results as results_csv
from caltech.grid import search
from caltech.training import engine, fit
from caltech.training.optim import is_prefix, lr_factors
from caltech.utils import UserError
from conftest import grid_flags, kill_on_call, planned_validation, read_rows, read_scalars, train_args

# A step every epoch, so that each epoch of the shared run has its own learning rate.
STEP = ["--step-size", 1, "--gamma", 0.5, "--threads", 1]


def grid_args(out, data, *flags):
    return grid_search.get_args_parser().parse_args(grid_flags(out, data, *STEP, *flags))


def run_names(split, *flags):
    """The grid's run names, shortest first: they end in a digest of each run's settings and split."""
    return [t.run_name for t in search.plan_trials(grid_args(split.root, split.root, *flags), split.sha256)]


def count_epochs(monkeypatch):
    calls = []
    real = engine.train_one_epoch
    monkeypatch.setattr(engine, "train_one_epoch", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    return calls


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def results(path):
    """Rows by run name, without Train_Seconds (a shorter run's share of the shared time)."""
    return {r["Run"]: {k: v for k, v in r.items() if k != "Train_Seconds"} for r in read_rows(path)}


def printed_table(out):
    """The grid's printed results table without its Seconds column."""
    lines = out.split("results (", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return [line.split()[:-2] + line.split()[-1:] for line in lines]


def test_shared_grid_equals_separate_runs_with_fewer_epochs(tiny_split, tmp_path, monkeypatch, capsys):
    flags = ["--epochs", 1, 2, 3, "--lr-base", 1e-4, 1e-2]
    epochs = count_epochs(monkeypatch)
    alone = grid_search.main(grid_args(tmp_path / "alone", tiny_split.root, *flags, "--no-share-prefixes"))
    alone_out, alone_epochs = capsys.readouterr().out, len(epochs)
    epochs.clear()
    shared = grid_search.main(grid_args(tmp_path / "shared", tiny_split.root, *flags))
    shared_out = capsys.readouterr().out
    assert (alone_epochs, len(epochs)) == (12, 6)  # 1+2+3 per learning rate, against 3
    assert "2 trainings, 6 epochs instead of 12" in shared_out

    assert results(tmp_path / "shared" / "results.csv") == results(tmp_path / "alone" / "results.csv")
    assert printed_table(shared_out) == printed_table(alone_out) and len(printed_table(shared_out)) == 7
    assert shared["best"]["Run"] == alone["best"]["Run"]
    best = [torch.load(tmp_path / d / "results_best_scratch.pth", weights_only=True) for d in ("alone", "shared")]
    assert same_state(best[0]["model"], best[1]["model"])
    for run in results(tmp_path / "alone" / "results.csv"):  # every run's own folders, as if trained alone
        for name in ("best.pth", "last.pth"):
            a, s = (torch.load(tmp_path / d / "ckpt" / run / name, weights_only=True) for d in ("alone", "shared"))
            assert same_state(a["model"], s["model"]) and a["epoch"] == s["epoch"], (run, name)
            assert a["hparams"]["epochs"] == s["hparams"]["epochs"] and s["hparams"]["run_name"] == run
            if name == "last.pth":
                assert a["history"] == s["history"] and a["scheduler"] == s["scheduler"]
                assert (a["best_epoch"], a["best_val_acc"]) == (s["best_epoch"], s["best_val_acc"])
        a, s = (json.loads((tmp_path / d / "ckpt" / run / "metrics.json").read_text()) for d in ("alone", "shared"))
        ignore = ("train_seconds", "peak_rss_mb", "best_checkpoint")
        assert {k: v for k, v in a.items() if k not in ignore} == {k: v for k, v in s.items() if k not in ignore}
        a, s = (read_scalars(tmp_path / d / "runs" / run) for d in ("alone", "shared"))
        assert a == s and len(a["Loss/train"]) == int(run.split("_ep")[1].split("_")[0])
        hp = json.loads((tmp_path / "shared" / "runs" / run / "hparams.json").read_text())
        assert hp["run_name"] == run and f"_ep{hp['epochs']}_" in run
    for lr in ("0.0001", "0.01"):  # a shorter run's Train_Seconds: its share of the shared run's time
        rows = sorted((r for r in read_rows(tmp_path / "shared" / "results.csv") if r["LR_Base"] == lr),
                      key=lambda r: int(r["Epochs"]))
        metrics = [json.loads((tmp_path / "shared" / "ckpt" / r["Run"] / "metrics.json").read_text()) for r in rows]
        seconds = [m["train_seconds"] for m in metrics]  # unrounded: TEST_MODEL's epochs take milliseconds
        assert len(seconds) == 3 and 0 < seconds[0] <= seconds[1] <= seconds[2]
        assert [r["Train_Seconds"] for r in rows] == [f"{s:.1f}" for s in seconds]


def test_killed_shared_grid_resumes_exactly_without_repeating_or_losing_a_row(tiny_split, tmp_path, monkeypatch):
    flags = ["--epochs", 1, 2, 3, "--lr-base", 1e-4]
    runs = run_names(tiny_split, *flags)
    grid_search.main(grid_args(tmp_path / "ref", tiny_split.root, *flags))
    reference = results(tmp_path / "ref" / "results.csv")

    # killed during the third epoch: the first two runs are finished and recorded
    with pytest.MonkeyPatch.context() as patch:
        kill_on_call(patch, engine, "train_one_epoch", 3)
        with pytest.raises(KeyboardInterrupt):
            grid_search.main(grid_args(tmp_path / "a", tiny_split.root, *flags))
    assert sorted(results(tmp_path / "a" / "results.csv")) == runs[:2]
    epochs = count_epochs(monkeypatch)
    grid_search.main(grid_args(tmp_path / "a", tiny_split.root, *flags))
    assert len(epochs) == 1 and results(tmp_path / "a" / "results.csv") == reference

    # killed as the first run's row was being written, after its checkpoints: it is tested again, not retrained
    with pytest.MonkeyPatch.context() as patch:
        kill_on_call(patch, results_csv, "append_result", 1)
        with pytest.raises(KeyboardInterrupt):
            grid_search.main(grid_args(tmp_path / "b", tiny_split.root, *flags))
    assert not (tmp_path / "b" / "results.csv").exists()
    epochs.clear()
    grid_search.main(grid_args(tmp_path / "b", tiny_split.root, *flags))
    assert len(epochs) == 2 and results(tmp_path / "b" / "results.csv") == reference
    assert read_scalars(tmp_path / "b" / "runs" / runs[1]) == read_scalars(tmp_path / "ref" / "runs" / runs[1])

    # the longest run began on its own (train.py, or a grid without sharing) and was killed in its third epoch:
    # the two shorter runs, whose epochs it has passed, train on their own and it resumes
    args = grid_args(tmp_path / "c", tiny_split.root, *flags)
    longest = search.plan_trials(args, tiny_split.sha256)[2]
    with pytest.MonkeyPatch.context() as patch:
        kill_on_call(patch, engine, "train_one_epoch", 3)
        with pytest.raises(KeyboardInterrupt):
            train.main(search.trial_args(args, longest))
    epochs.clear()
    grid_search.main(args)
    assert len(epochs) == 1 + 1 + 2 and results(tmp_path / "c" / "results.csv") == reference

    # a grid without sharing killed during the 2-epoch run's second epoch, rerun with sharing: that run
    # resumes from its own last.pth, and only the 3-epoch run is trained from the start
    with pytest.MonkeyPatch.context() as patch:
        kill_on_call(patch, engine, "train_one_epoch", 3)
        with pytest.raises(KeyboardInterrupt):
            grid_search.main(grid_args(tmp_path / "d", tiny_split.root, *flags, "--no-share-prefixes"))
    epochs.clear()
    grid_search.main(grid_args(tmp_path / "d", tiny_split.root, *flags))
    assert len(epochs) == 1 + 3 and results(tmp_path / "d" / "results.csv") == reference
    assert read_scalars(tmp_path / "d" / "runs" / runs[1]) == read_scalars(tmp_path / "ref" / "runs" / runs[1])


def test_a_shorter_run_killed_before_it_kept_a_best_of_its_own_gets_the_longer_runs_on_resume(
        tiny_split, tmp_path, monkeypatch):
    """A grid killed on the way by code from before each shorter run kept its own best.pth: on resume the shorter
    run takes the longer run's best weights under its own settings, and ends as the uninterrupted grid's."""
    planned_validation(monkeypatch, [0.5, 0.25, 0.75])  # best at epoch 1: epoch 2 leaves the 2-epoch run's best
    flags = ["--epochs", 2, 3, "--lr-base", 1e-4]
    short, longest = run_names(tiny_split, *flags)
    grid_search.main(grid_args(tmp_path / "ref", tiny_split.root, *flags))
    with pytest.MonkeyPatch.context() as patch:
        kill_on_call(patch, engine, "train_one_epoch", 2)
        with pytest.raises(KeyboardInterrupt):
            grid_search.main(grid_args(tmp_path / "a", tiny_split.root, *flags))
    (tmp_path / "a" / "ckpt" / short / "best.pth").unlink()  # as that code left it
    grid_search.main(grid_args(tmp_path / "a", tiny_split.root, *flags))
    assert results(tmp_path / "a" / "results.csv") == results(tmp_path / "ref" / "results.csv")
    ref, got = (torch.load(tmp_path / d / "ckpt" / short / "best.pth", weights_only=True) for d in ("ref", "a"))
    assert (got["epoch"], got["hparams"]["epochs"], got["hparams"]["run_name"]) == (1, 2, short)
    where = ("ckpt_dir", "logdir")  # the two grids' own folders
    assert same_state(ref["model"], got["model"])
    assert {k: v for k, v in ref["hparams"].items() if k not in where} == \
        {k: v for k, v in got["hparams"].items() if k not in where}


PLANNED_VAL = [0.3, 0.5, 0.4, 0.5, 0.45, 0.9]  # best at epoch 2: with --patience 2 a run stops after epoch 4


def test_a_shared_run_stops_early_where_its_own_run_would(tiny_split, tmp_path, monkeypatch):
    planned_validation(monkeypatch, PLANNED_VAL)
    flags = ["--epochs", 3, 5, 6, "--lr-base", 1e-4, "--patience", 2]
    grid_search.main(grid_args(tmp_path / "alone", tiny_split.root, *flags, "--no-share-prefixes"))
    grid_search.main(grid_args(tmp_path / "shared", tiny_split.root, *flags))
    rows = results(tmp_path / "shared" / "results.csv")
    assert rows == results(tmp_path / "alone" / "results.csv")
    assert [r["Epochs_Run"] for r in sorted(rows.values(), key=lambda r: r["Experiment"])] == ["3", "4", "4"]


def test_only_step_schedules_share_and_a_wrong_horizon_is_refused(tiny_split, tmp_path):
    assert is_prefix(20, 30) and is_prefix(2, 3, warmup_epochs=1) and not is_prefix(20, 30, "cosine")
    assert not is_prefix(1, 3, warmup_epochs=1)  # a 1-epoch run cannot have a 1-epoch warm-up
    assert not is_prefix(2, 3, "cosine") and is_prefix(1, 3, "cosine")
    assert lr_factors(4, step_size=2, gamma=0.5) == [1.0, 1.0, 0.5, 0.5]
    # cosine: only the 1-epoch run shares, its one epoch at the initial rate like the 3-epoch run's first
    for flags, expected in (([], [[1, 2, 3], [1, 2, 3]]), (["--schedule", "cosine"], [[1, 3], [2]] * 2),
                            (["--no-share-prefixes"], [[1], [2], [3]] * 2)):
        args = grid_args(tmp_path, tiny_split.root, "--epochs", 1, 2, 3, "--lr-base", 1e-4, 1e-2, *flags)
        trials = search.plan_trials(args, tiny_split.sha256)
        groups = search.plan_groups(trials, args)
        assert sorted([t.epochs for t in g] for g in groups) == sorted(expected), flags
        assert sorted(t.run_name for g in groups for t in g) == sorted(t.run_name for t in trials)
    with pytest.raises(UserError, match="not the first epochs"):
        fit.train(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 3, "--schedule", "cosine"),
                  horizons={2: "short"})
