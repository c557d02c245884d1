"""grid_search.py and evaluate.py: rows, the choice on validation, resuming, seeds, safe checkpoints."""
import csv
import json
import os

import pytest
import torch

import evaluate
import grid_search
import train
from caltech import engine, grid
from caltech.utils import UserError
from conftest import ORIGINAL_RUNS, grid_flags, kill_on_call, make_image_folder, read_rows, run_script


def grid_args(tmp_path, data, *flags):
    return grid_search.get_args_parser().parse_args(grid_flags(tmp_path, data, *flags))


def test_two_configuration_grid_rows_best_checkpoint_and_evaluate_agree(tiny_split, tmp_path, capsys):
    out = grid_search.main(grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4", "1e-2"))
    rows = read_rows(tmp_path / "results.csv")
    assert len(rows) == 2 and list(rows[0]) == grid.COLUMNS
    assert all(all(row[c] != "" for c in grid.COLUMNS if c != "Recipe") for row in rows)
    assert all(row["Recipe"] == "" for row in rows)  # the published recipe
    assert [r["Experiment"] for r in rows] == ["1", "2"] and [r["LR_Base"] for r in rows] == ["0.0001", "0.01"]
    vals = [float(r["Best_Val_Acc"]) for r in rows]
    chosen = rows[vals.index(max(vals))]  # ties go to the first
    assert out["best"]["Run"] == chosen["Run"]
    best = torch.load(tmp_path / "ckpt" / "best_scratch.pth", weights_only=True)
    runs = torch.load(tmp_path / "ckpt" / chosen["Run"] / "best.pth", weights_only=True)
    assert all(torch.equal(best["model"][k], runs["model"][k]) for k in best["model"])
    marked = [line.split() for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("*")]
    assert len(marked) == 1 and marked[0][1] == chosen["Experiment"]  # the chosen row, and only it, is starred

    args = evaluate.get_args_parser().parse_args(
        ["--ckpt", str(tmp_path / "ckpt" / "best_scratch.pth"), "--json", str(tmp_path / "eval.json"),
         "--out", str(tmp_path / "eval")])
    metrics = evaluate.main(args)
    printed = capsys.readouterr().out
    assert f"accuracy: {chosen['Test_Acc']}" in printed  # the same 4-decimal figure as the CSV
    assert f"mean_class_accuracy: {chosen['Test_Mean_Class_Acc']}" in printed
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert set(saved) == {"accuracy", "mean_class_accuracy", "top5_accuracy", "n_images", "split"}
    assert saved == metrics and saved["n_images"] == 24 and saved["split"] == "test"
    per_class = read_rows(tmp_path / "eval" / "per_class.csv")
    assert [r["class"] for r in per_class] == tiny_split.classes and sum(int(r["images"]) for r in per_class) == 24
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 1000


def test_killed_grid_resumes_without_repeating_or_duplicating(tiny_split, tmp_path, monkeypatch):
    calls = kill_on_call(monkeypatch, train, "main", 2)  # killed during the second run
    with pytest.raises(KeyboardInterrupt):
        grid_search.main(grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4", "1e-5"))
    assert len(read_rows(tmp_path / "results.csv")) == 1  # the finished run's row survived the kill
    calls.clear()
    grid_search.main(grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4", "1e-5"))
    assert [args.run_name for args, *_ in calls] == ["scratch_exp2_ep1_fc0.001_base1e-05_s107"]  # only the missing
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


def test_several_seeds_give_mean_and_std(tiny_split, tmp_path, capsys):
    grid_search.main(grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4", "--seeds", "1", "2"))
    rows = read_rows(tmp_path / "results.csv")
    assert [r["Seed"] for r in rows] == ["1", "2"] and {r["Experiment"] for r in rows} == {"1"}
    out = capsys.readouterr().out
    assert "per configuration over 2 seeds" in out and "+-" in out
    (stats,) = grid.seed_stats(rows)
    vals = [float(r["Best_Val_Acc"]) for r in rows]
    assert stats["n"] == 2 and stats["Best_Val_Acc"][0] == pytest.approx(sum(vals) / 2)


def test_fresh_starts_the_grid_over(tiny_split, tmp_path):
    grid_search.main(grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4"))
    first = read_rows(tmp_path / "results.csv")
    grid_search.main(grid_args(tmp_path, tiny_split.root, "--lr-base", "1e-4", "--fresh"))
    again = read_rows(tmp_path / "results.csv")
    assert len(again) == 1 and again[0]["Best_Val_Acc"] == first[0]["Best_Val_Acc"]  # same seed, same result


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
    train.main(grid_search.trial_args(grid_args(tmp_path, tiny_split.root), grid.Trial(1, 1, 1e-3, 1e-4, 107, True)))
    return tmp_path / "ckpt" / "scratch_exp1_ep1_fc0.001_base0.0001_s107" / "best.pth"


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
    from caltech.split import build_split
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
    assert metrics["split"] == "val" and metrics["n_images"] == 12


APPEND_ROWS = """
import sys
sys.path.insert(0, {root!r})
from caltech import grid
seed = int(sys.argv[1])
for trial in grid.make_trials([1], [1e-3], [float(i) for i in range(1, 41)], [seed], scratch=True):
    grid.append_result(sys.argv[2], grid.make_row(trial, {{"best_val_acc": 0.5, "test_acc": 0.5,
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
