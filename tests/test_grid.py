"""grid_search.py and evaluate.py: rows, the choice on validation, resuming, seeds, safe checkpoints."""
import csv
import itertools
import json
import os
import re
import shutil
import statistics

import pytest
import torch

import evaluate
import grid_search
import train
from caltech import recipe
from caltech.data.split import read_split
from caltech.grid import search
from caltech.grid import trials as grid
from caltech.grid.results import COLUMNS, append_result, make_row
from caltech.training import engine, fit, runtime
from caltech.utils import UserError
from conftest import ORIGINAL_RUNS, TEST_MODEL, grid_flags, kill_on_call, make_image_folder, read_rows, run_script


def grid_args(tmp_path, data, *flags):
    return grid_search.get_args_parser().parse_args(grid_flags(tmp_path, data, *flags))


def test_two_configuration_grid_rows_best_checkpoint_and_evaluate_agree(tiny_split, tmp_path, capsys):
    out = grid_search.main(grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4", "1e-2"))
    rows = read_rows(tmp_path / "results.csv")
    assert len(rows) == 2 and list(rows[0]) == COLUMNS
    assert all(all(row[c] != "" for c in COLUMNS if c != "Recipe") for row in rows)
    assert {(r["Model"], r["Image_Size"], r["Batch_Size"], r["Device"]) for r in rows} == {
        (TEST_MODEL, "32", "8", "cpu")}
    assert {r["Split_SHA256"] for r in rows} == {tiny_split.sha256}
    assert all(row["Recipe"] == TEST_MODEL for row in rows)  # the published recipe, but its model
    assert [r["Experiment"] for r in rows] == ["1", "2"] and [r["LR_Base"] for r in rows] == ["0.0001", "0.01"]
    vals = [float(r["Best_Val_Acc"]) for r in rows]
    chosen = rows[vals.index(max(vals))]  # ties go to the first
    assert out["best"]["Run"] == chosen["Run"]
    best = torch.load(tmp_path / "results_best_scratch.pth", weights_only=True)
    runs = torch.load(tmp_path / "ckpt" / chosen["Run"] / "best.pth", weights_only=True)
    assert all(torch.equal(best["model"][k], runs["model"][k]) for k in best["model"])
    marked = [line.split() for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("*")]
    assert len(marked) == 1 and marked[0][1] == chosen["Experiment"]  # the chosen row, and only it, is starred

    args = evaluate.get_args_parser().parse_args(
        ["--ckpt", str(tmp_path / "results_best_scratch.pth"), "--json", str(tmp_path / "eval.json"),
         "--out", str(tmp_path / "eval")])
    metrics = evaluate.main(args)
    printed = capsys.readouterr().out
    assert f"test_acc: {chosen['Test_Acc']}" in printed  # the same 4-decimal figure as the CSV
    assert f"test_mean_class_acc: {chosen['Test_Mean_Class_Acc']}" in printed
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert set(saved) == {"test_acc", "test_mean_class_acc", "test_top5", "test_n", "split", "checkpoint",
                          "split_sha256", "trained_on_split", "other_split"}
    assert saved["split_sha256"] == saved["trained_on_split"] == tiny_split.sha256 and saved["other_split"] is False
    assert saved == metrics and saved["test_n"] == 24 and saved["split"] == "test"
    per_class = read_rows(tmp_path / "eval" / "per_class.csv")
    assert [r["class"] for r in per_class] == tiny_split.classes and sum(int(r["images"]) for r in per_class) == 24
    with open(tmp_path / "eval" / "confusion.csv", newline="") as f:
        header, *matrix = list(csv.reader(f))
    assert header == ["true\\predicted", *tiny_split.classes] and [r[0] for r in matrix] == tiny_split.classes
    counts = [[int(v) for v in r[1:]] for r in matrix]  # rows: true class, columns: predicted
    assert [sum(r) for r in counts] == [int(r["images"]) for r in per_class]
    assert [counts[i][i] for i in range(4)] == [int(r["correct"]) for r in per_class]
    assert sum(counts[i][i] for i in range(4)) / 24 == pytest.approx(metrics["test_acc"])
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 1000


def test_killed_grid_resumes_without_repeating_or_duplicating(tiny_split, tmp_path, monkeypatch):
    calls = kill_on_call(monkeypatch, fit, "train", 2)  # killed during the second run
    with pytest.raises(KeyboardInterrupt):
        grid_search.main(grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4", "1e-5"))
    assert len(read_rows(tmp_path / "results.csv")) == 1  # the finished run's row survived the kill
    calls.clear()
    grid_search.main(grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4", "1e-5"))
    assert [args.run_name.rsplit("_", 1)[0] for args, *_ in calls] == [
        f"scratch_exp2_ep1_fc0.001_base1e-05_s107_{TEST_MODEL}"]
    rows = read_rows(tmp_path / "results.csv")
    assert sorted(r["Experiment"] for r in rows) == ["1", "2"]
    calls.clear()
    grid_search.main(grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4", "1e-5"))
    assert calls == [] and len(read_rows(tmp_path / "results.csv")) == 2


def test_interrupted_run_continues_from_its_last_checkpoint(tiny_split, tmp_path, capsys):
    with pytest.MonkeyPatch.context() as patch:
        kill_on_call(patch, engine, "train_one_epoch", 2)  # killed during the second epoch
        with pytest.raises(KeyboardInterrupt):
            grid_search.main(grid_args(tmp_path, tiny_split.root, "--epochs", "2", "--lr-base", "1e-4"))
    capsys.readouterr()
    grid_search.main(grid_args(tmp_path, tiny_split.root, "--epochs", "2", "--lr-base", "1e-4"))
    assert "resuming after epoch 1" in capsys.readouterr().out
    assert len(read_rows(tmp_path / "results.csv")) == 1


def test_several_seeds_train_differently_and_print_mean_and_sample_std(tiny_split, tmp_path, capsys):
    # --lr-base 0: the body's weights in last.pth are still its initialisation
    grid_search.main(grid_args(tmp_path, tiny_split.root, "--lr-base", "0", "--seeds", "1", "2"))
    rows = read_rows(tmp_path / "results.csv")
    assert [r["Seed"] for r in rows] == ["1", "2"] and {r["Experiment"] for r in rows} == {"1"}
    out = capsys.readouterr().out
    assert "per configuration over 2 seeds" in out
    line = out.split("per configuration over 2 seeds:\n")[1].splitlines()[1]
    for column in ("Best_Val_Acc", "Test_Acc", "Test_Mean_Class_Acc"):
        values = [100 * float(r[column]) for r in rows]
        assert f"{statistics.mean(values):.2f} +- {statistics.stdev(values):.2f}" in line, (column, line)
    # each seed reached its run: its own recorded seed and its own initialisation
    runs = [torch.load(tmp_path / "ckpt" / r["Run"] / "last.pth", weights_only=True) for r in rows]
    assert [run["hparams"]["seed"] for run in runs] == [1, 2]
    assert not torch.equal(runs[0]["model"]["features.0.weight"], runs[1]["model"]["features.0.weight"])


def test_fresh_starts_the_grid_over(tiny_split, tmp_path):
    grid_search.main(grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4"))
    first = read_rows(tmp_path / "results.csv")
    grid_search.main(grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4", "--fresh"))
    again = read_rows(tmp_path / "results.csv")
    assert len(again) == 1 and again[0]["Best_Val_Acc"] == first[0]["Best_Val_Acc"]  # same seed, same result
    assert len(list((tmp_path / "runs" / again[0]["Run"]).glob("events.out.tfevents.*"))) == 1  # old logs gone


def row(exp, val, test, seed=107, epochs=20):
    return {"Experiment": str(exp), "Epochs": str(epochs), "LR_FC": "0.001", "LR_Base": str(exp), "Seed": str(seed),
            "Scratch": "False", "Best_Val_Acc": str(val), "Test_Acc": str(test), "Test_Mean_Class_Acc": "0.5"}


def test_best_is_chosen_on_validation_with_ties_to_the_earlier_experiment():
    rows = [row(1, 0.90, 0.99), row(2, 0.95, 0.90), row(3, 0.95, 0.97)]
    assert grid.choose_best(rows)["Experiment"] == "2"  # not 1 (best test) nor 3 (tie, later)
    seeds = [row(1, 0.96, 0.9, seed=1), row(1, 0.80, 0.9, seed=2), row(2, 0.90, 0.9, seed=1), row(2, 0.91, 0.9, seed=2)]
    chosen = grid.choose_best(seeds)  # best mean over seeds wins, then its best seed
    assert (chosen["Experiment"], chosen["Seed"]) == ("2", "2")


@pytest.mark.skipif(not (ORIGINAL_RUNS / "grid_search_results.csv").is_file(), reason="published logs absent")
def test_published_grid_chosen_on_validation_is_experiment_3():
    with open(ORIGINAL_RUNS / "grid_search_results.csv", newline="") as f:
        published = list(csv.DictReader(f))
    best = grid.choose_best(published)
    assert best["Experiment"] == "3" and best["Test_Acc"] == "0.9614"
    assert max(published, key=lambda r: float(r["Test_Acc"]))["Test_Acc"] == "0.9633"  # the published headline


@pytest.fixture
def trained(tiny_split, tmp_path):
    args = grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4")
    trial, = search.plan_trials(args, tiny_split.sha256)
    train.main(search.trial_args(args, trial))
    return tmp_path / "ckpt" / trial.run_name / "best.pth"


def expect_refusal(ckpt, phrase, *extra):
    result = run_script("evaluate.py", "--ckpt", ckpt, *extra)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error:") and phrase in result.stderr and "Traceback" not in result.stderr


def test_evaluate_refuses_bad_checkpoints_without_running_their_code(trained, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    torch.save({"model": Payload()}, tmp_path / "evil.pth")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(trained.read_bytes()[: trained.stat().st_size // 2])
    torch.save({"model": {}, "epoch": 1}, tmp_path / "foreign.pth")
    for ckpt, phrase in ((tmp_path / "evil.pth", "refused"), (truncated, "truncated"),
                         (tmp_path / "foreign.pth", "not a checkpoint written by this project"),
                         ("no_such.pth", "not found")):
        with pytest.raises(UserError, match=phrase):
            evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", str(ckpt)]))
    expect_refusal(tmp_path / "evil.pth", "refused")  # and as a user sees it: one sentence, exit status 2
    assert not marker.exists()


def test_evaluate_refuses_a_split_with_other_classes(trained, tmp_path):
    from caltech.data.split import build_split
    make_image_folder(tmp_path / "other", classes=("x", "y"), per_class=10)
    build_split(tmp_path / "other", tmp_path / "other_split", train_per_class=6, val_per_class=2)
    with pytest.raises(UserError, match="do not match"):
        evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", str(trained), "--data",
                                                             str(tmp_path / "other_split")]))


def test_evaluate_finds_a_bare_name_in_checkpoints(trained, tmp_path, monkeypatch, capsys):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.pth").write_bytes(trained.read_bytes())
    monkeypatch.chdir(tmp_path)
    metrics = evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", "best.pth", "--split", "val"]))
    assert metrics["split"] == "val" and metrics["val_n"] == 12


APPEND_ROWS = """
import sys
sys.path.insert(0, {root!r})
from caltech.grid import results
from caltech.grid import trials as grid
seed = int(sys.argv[1])
for trial in grid.make_trials([1], [1e-3], [float(i) for i in range(1, 41)], [seed], scratch=True):
    results.append_result(sys.argv[2], results.make_row(trial, {{"best_val_acc": 0.5, "test_acc": 0.5,
                                                                 "test_mean_class_acc": 0.5, "train_seconds": 1.0}}))
"""


def test_two_grid_processes_on_one_csv_lose_no_row(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT
    script = tmp_path / "append.py"
    script.write_text(APPEND_ROWS.format(root=str(ROOT)))
    results = tmp_path / "results.csv"
    procs = [subprocess.Popen([sys.executable, str(script), str(seed), str(results)]) for seed in (107, 108)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    rows = read_rows(results)
    assert len(rows) == 80 and len({(r["Seed"], r["LR_Base"]) for r in rows}) == 80


# docs/FLAGS.md: the train.py flags a grid passes to every run, each with a value that is not train.py's default
PASS_THROUGH = {"--data": "d", "--source": "s", "--loader": "pil", "--cache-dir": "c", "--image-size": "48",
                "--model": "resnet50", "--weights-name": "IMAGENET1K_V2", "--weights": "w.pth", "--batch-size": "5",
                "--step-size": "3", "--gamma": "0.5", "--train-crop": "resized", "--min-scale": "0.3",
                "--auto-augment": "trivial", "--label-smoothing": "0.1", "--optimizer": "sgd", "--weight-decay": "0.01",
                "--momentum": "0.8", "--schedule": "cosine", "--warmup-epochs": "2", "--mixup": "0.2",
                "--cutmix": "1.0", "--patience": "4", "--device": "cpu", "--workers": "3", "--threads": "2",
                "--eval-batch-size": "7", "--logdir": "L", "--ckpt-dir": "C", "--ema": "0.99",
                "--eval-image-size": "56", "--dropout": "0.2", "--loss": "cosine"}
SWITCHES = ["--scratch", "--tta", "--no-amp", "--compile"]


def test_grid_passes_every_listed_train_flag_to_each_run(tmp_path):
    flags = [*itertools.chain.from_iterable(PASS_THROUGH.items()), *SWITCHES]
    flags[flags.index("C")] = str(tmp_path / "C")
    args = grid_search.get_args_parser().parse_args([*flags, "--epochs", "3", "--lr-fc", "0.01", "--lr-base", "0.002",
                                                     "--seeds", "5"])
    trial, = search.plan_trials(args, "split")
    expected = train.get_args_parser().parse_args([*flags, "--epochs", "3", "--lr-fc", "0.01", "--lr-base", "0.002",
                                                   "--seed", "5", "--run-name", trial.run_name])
    defaults = vars(train.get_args_parser().parse_args([]))
    assert all(value != defaults[key] for key, value in vars(expected).items() if key != "resume")
    # under cosine, --step-size and --gamma change nothing: the run gets their defaults (test_grid_product)
    assert recipe.unused(vars(expected)) == {"step_size", "gamma"}
    expected.step_size, expected.gamma = defaults["step_size"], defaults["gamma"]
    assert vars(search.trial_args(args, trial)) == vars(expected)
    (tmp_path / "C" / trial.run_name).mkdir(parents=True)
    (tmp_path / "C" / trial.run_name / "last.pth").write_bytes(b"")
    assert search.trial_args(args, trial).resume is True  # an interrupted run resumes from its last.pth


def test_results_csv_has_the_published_columns_then_ours_formatted_as_documented(tmp_path):
    trial = grid.Trial(3, 20, 5e-4, 1e-4, 108, False, "ls0.1", (("model", "resnet18"), ("image_size", 224)), "ab" * 32)
    append_result(tmp_path / "r.csv", make_row(trial, {
        "best_val_acc": 0.951234, "test_acc": 0.96144, "test_mean_class_acc": 0.9, "train_seconds": 61.26,
        "epochs_run": 17, "device": "cuda", "precision": "bfloat16"}))
    header, line = (tmp_path / "r.csv").read_text().splitlines()
    assert header == ("Experiment,Epochs,LR_FC,LR_Base,Best_Val_Acc,Test_Acc,"  # the published six, then ours
                      "Test_Mean_Class_Acc,Seed,Scratch,Train_Seconds,Run,Recipe,Epochs_Run,"
                      "Model,Image_Size,Batch_Size,Device,Precision,Split_SHA256,Settings")
    # accuracies as fractions with 4 decimals, seconds with 1; the run name ends in its settings' digest
    cells = next(csv.reader([line]))
    assert cells[:10] == ["3", "20", "0.0005", "0.0001", "0.9512", "0.9614", "0.9000", "108", "False", "61.3"]
    assert re.fullmatch(r"grid_exp3_ep20_fc0\.0005_base0\.0001_s108_ls0\.1_[0-9a-f]{6}", cells[10])
    assert cells[11:19] == ["ls0.1", "17", "resnet18", "224", "", "cuda", "bfloat16", "ab" * 32]
    assert json.loads(cells[19]) == {"epochs": 20, "lr_fc": 5e-4, "lr_base": 1e-4, "seed": 108, "scratch": False,
                                     "model": "resnet18", "image_size": 224}


def planned_evaluation(monkeypatch, owner):
    """owner's engine.evaluate returns planned, distinct figures; records each call's tta and the loader's args."""
    real, calls = engine.evaluate, []

    def evaluate_(model, loader, criterion, rt, num_classes, desc="eval", tta=False):
        meter = real(model, loader, criterion, rt, num_classes, desc=desc, tta=tta)
        calls.append({"tta": tta, "n": meter.n})
        summary = {**meter.summary(), "acc": 0.125, "mean_class_acc": 0.25, "top5": 0.5}
        return type("PlannedMeter", (), {"summary": lambda self: summary})()
    monkeypatch.setattr(engine, "evaluate", evaluate_)
    loaders = []
    build = owner.build_loader
    monkeypatch.setattr(owner, "build_loader", lambda *a, **k: (loaders.append((a, k)), build(*a, **k))[1])
    return calls, loaders


def test_evaluate_reports_each_metric_under_its_key_with_the_runs_settings_unless_overridden(
        trained, tiny_split, tmp_path, monkeypatch, capsys):
    ckpt = torch.load(trained, weights_only=True)
    ckpt["hparams"]["tta"] = True  # a run trained with --tta: evaluate.py scores with it by default
    run_ckpt = tmp_path / "tta_run.pth"
    torch.save(ckpt, run_ckpt)
    calls, loaders = planned_evaluation(monkeypatch, evaluate)
    devices = []
    select = runtime.select_device
    monkeypatch.setattr(runtime, "select_device", lambda name: (devices.append(name), select(name))[1])
    evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", str(run_ckpt), "--json", str(tmp_path / "m.json")]))
    assert json.loads((tmp_path / "m.json").read_text()) == {
        "test_acc": 0.125, "test_mean_class_acc": 0.25, "test_top5": 0.5, "test_n": 24, "split": "test",
        "checkpoint": str(run_ckpt), "split_sha256": tiny_split.sha256, "trained_on_split": tiny_split.sha256,
        "other_split": False}
    printed = capsys.readouterr().out
    assert "\ntest_acc: 0.1250\ntest_mean_class_acc: 0.2500\ntest_top5: 0.5000\ntest_n: 24\n" in printed
    run = loaders[0][0][2]
    assert calls[0]["tta"] is True and (run.loader, run.eval_batch_size, run.data, run.cache_dir) == (
        "cached", 8, str(tiny_split.root), str(tiny_split.root.parent / "cache"))

    # every runtime flag overrides the run's; another --data brings its own cache beside it
    other = tmp_path / "copy" / "split"
    shutil.copytree(tiny_split.root, other)
    evaluate.main(evaluate.get_args_parser().parse_args(
        ["--ckpt", str(run_ckpt), "--no-tta", "--data", str(other), "--loader", "pil", "--eval-batch-size", "5",
         "--workers", "0", "--device", "cpu", "--split", "val"]))
    run, split = loaders[1][0][2], loaders[1][0][0]
    assert calls[1] == {"tta": False, "n": 12} and devices == [None, "cpu"]
    assert (run.data, run.loader, run.eval_batch_size, run.workers, run.cache_dir) == (
        str(other), "pil", 5, 0, str(other.parent / "cache"))
    assert split.root == other and split.manifest == read_split(tiny_split.root).manifest
    evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", str(run_ckpt), "--cache-dir", str(tmp_path / "c")]))
    assert loaders[2][0][2].cache_dir == str(tmp_path / "c")
