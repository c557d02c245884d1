"""What gets scored and kept: best.pth (not the last epoch) everywhere, unbalanced test splits, the grid's
numbering, --fresh, and which of best.pth / best_scratch.pth a grid writes."""
import json

import pandas as pd
import pytest
import torch

import evaluate
import grid_search
from caltech.data.split import build_split, read_split
from caltech.grid import trials as grid
from caltech.training import engine
from conftest import grid_flags, make_image_folder, read_rows

PLANNED_VAL = [0.30, 0.90, 0.10]  # validation accuracy per epoch: the best epoch (2nd) is not the last


@pytest.fixture(scope="module")
def unbalanced_split(tmp_path_factory):
    """Five classes whose test parts hold 1 to 9 images, so overall and mean per-class accuracy differ."""
    base = tmp_path_factory.mktemp("unbalanced")
    for i, (name, n) in enumerate((("ant", 7), ("bee", 9), ("cat", 11), ("dog", 13), ("eel", 15))):
        make_image_folder(base / "src", classes=(name,), per_class=n, seed=i)
    build_split(base / "src", base / "split", seed=107, train_per_class=6, val_per_class=2, workers=1)
    return read_split(base / "split")


def plan_validation(monkeypatch):
    """Make the validation accuracy of epoch e PLANNED_VAL[e] (the rest of each pass is real), and
    record the weights every test evaluation scores."""
    real, tested = engine.evaluate, []

    def evaluate_(model, loader, criterion, rt, num_classes, desc="eval", **kwargs):
        meter = real(model, loader, criterion, rt, num_classes, desc=desc, **kwargs)
        if desc == "test":
            tested.append({k: v.clone() for k, v in model.state_dict().items()})
        if "val" not in desc:
            return meter
        epoch = int(desc.split()[1].split("/")[0]) - 1
        summary = {**meter.summary(), "acc": PLANNED_VAL[epoch]}
        return type("PlannedMeter", (), {"summary": lambda self: summary})()
    monkeypatch.setattr(engine, "evaluate", evaluate_)
    return tested


def same_weights(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_test_accuracy_everywhere_scores_best_pth_not_the_last_epoch(unbalanced_split, tmp_path, monkeypatch):
    tested = plan_validation(monkeypatch)
    out = grid_search.main(grid_search.get_args_parser().parse_args(
        grid_flags(tmp_path, unbalanced_split.root, "--epochs", 3, "--lr-base", 1e-3, "--lr-fc", 3e-3)))
    run = tmp_path / "ckpt" / out["best"]["Run"]
    metrics = json.loads((run / "metrics.json").read_text())
    best, last = (torch.load(run / name, weights_only=True) for name in ("best.pth", "last.pth"))
    assert metrics["best_epoch"] == 1 and best["epoch"] == 2 and last["epoch"] == 3
    assert metrics["best_val_acc"] == 0.90
    assert not same_weights(best["model"], last["model"])
    assert len(tested) == 1 and same_weights(tested[0], best["model"])  # test_best scored best.pth's weights

    monkeypatch.undo()
    scored = evaluate.main(evaluate.get_args_parser().parse_args(
        ["--ckpt", str(tmp_path / "results_best_scratch.pth"), "--device", "cpu", "--out", str(tmp_path / "eval")]))
    row, = read_rows(tmp_path / "results.csv")
    assert scored["test_acc"] == metrics["test_acc"] and row["Test_Acc"] == f"{metrics['test_acc']:.4f}"
    assert scored["test_mean_class_acc"] == metrics["test_mean_class_acc"]
    assert row["Test_Mean_Class_Acc"] == f"{metrics['test_mean_class_acc']:.4f}"

    # on an unbalanced split the two metrics are computed differently: check both from the per-class table
    table = pd.read_csv(tmp_path / "eval" / "per_class.csv")
    assert table["images"].tolist() == [1, 3, 5, 7, 9] and metrics["test_n"] == 25
    assert scored["test_acc"] == pytest.approx(table["correct"].sum() / 25)
    assert scored["test_mean_class_acc"] == pytest.approx((table["correct"] / table["images"]).mean())


def test_trials_are_numbered_as_published():
    trials = grid.make_trials([20, 30], [1e-3, 5e-4], [1e-4, 1e-5], [107])
    assert [(t.experiment, t.epochs, t.lr_fc, t.lr_base) for t in trials] == [
        (1, 20, 1e-3, 1e-4), (2, 20, 1e-3, 1e-5), (3, 20, 5e-4, 1e-4), (4, 20, 5e-4, 1e-5),
        (5, 30, 1e-3, 1e-4), (6, 30, 1e-3, 1e-5), (7, 30, 5e-4, 1e-4), (8, 30, 5e-4, 1e-5)]
    # seeds repeat the same numbering, seed-major
    seeds = grid.make_trials([20], [1e-3], [1e-4, 1e-5], [1, 2])
    assert [(t.experiment, t.seed) for t in seeds] == [(1, 1), (2, 1), (1, 2), (2, 2)]


def test_fresh_really_retrains(tiny_split, tmp_path):
    flags = grid_flags(tmp_path, tiny_split.root, "--lr-base", 1e-4)
    grid_search.main(grid_search.get_args_parser().parse_args(flags))
    rows = pd.read_csv(tmp_path / "results.csv", dtype=str)
    rows.loc[0, "Test_Acc"] = "0.0123"  # a planted value that no training produces
    rows.to_csv(tmp_path / "results.csv", index=False)
    run = tmp_path / "ckpt" / rows.loc[0, "Run"]
    stamp = (run / "last.pth").stat().st_mtime_ns

    grid_search.main(grid_search.get_args_parser().parse_args(flags))  # without --fresh: the row is kept
    assert read_rows(tmp_path / "results.csv")[0]["Test_Acc"] == "0.0123"
    grid_search.main(grid_search.get_args_parser().parse_args([*flags, "--fresh"]))
    again, = read_rows(tmp_path / "results.csv")
    assert again["Test_Acc"] != "0.0123" and (run / "last.pth").stat().st_mtime_ns != stamp


def test_fine_tuned_and_scratch_grids_keep_their_own_best(tiny_split, tmp_path, planted_weights):
    ckpt = tmp_path / "ckpt"
    scratch = grid_search.main(grid_search.get_args_parser().parse_args(
        grid_flags(tmp_path, tiny_split.root, "--lr-base", 1e-4)))
    assert not (tmp_path / "results_best.pth").exists()
    scratch_bytes = (tmp_path / "results_best_scratch.pth").read_bytes()
    flags = [f for f in grid_flags(tmp_path, tiny_split.root, "--lr-base", 1e-4) if f != "--scratch"]
    tuned = grid_search.main(grid_search.get_args_parser().parse_args([*flags, "--weights", str(planted_weights)]))
    assert (tmp_path / "results_best_scratch.pth").read_bytes() == scratch_bytes  # untouched by the fine-tuned grid
    kept = torch.load(tmp_path / "results_best.pth", weights_only=True)
    assert kept["hparams"]["scratch"] is False
    assert same_weights(kept["model"], torch.load(ckpt / tuned["best"]["Run"] / "best.pth", weights_only=True)["model"])
    assert scratch["best"]["Run"] != tuned["best"]["Run"]
    # and the other way round: a second scratch grid leaves the fine-tuned best.pth alone
    tuned_bytes = (tmp_path / "results_best.pth").read_bytes()
    grid_search.main(grid_search.get_args_parser().parse_args(
        grid_flags(tmp_path, tiny_split.root, "--lr-base", 1e-4, "--fresh")))
    assert (tmp_path / "results_best.pth").read_bytes() == tuned_bytes
