"""Files a kill must never leave half-written: checkpoints, the results CSV, the copied best.pth, predict.py's
CSV and the split folder (the cache has its own test in test_data.py). The kill is simulated at the last moment,
just before the rename that publishes the new version: the previous version must still be there, whole, and
no temporary file may be left beside it. A writer that writes in place fails: nothing is renamed, nothing raised."""
import os
from pathlib import Path

import pytest
import torch

import predict
from caltech.data.split import build_split, read_split
from caltech.grid import trials as grid
from caltech.grid.results import append_result, make_row
from caltech.training import checkpoint
from conftest import make_image_folder, read_rows


def killed_before_rename(write):
    """Run write() with os.replace raising KeyboardInterrupt: the process dies before publishing anything."""
    def kill(*args, **kwargs):
        raise KeyboardInterrupt
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "replace", kill)
        with pytest.raises(KeyboardInterrupt):
            write()


def leftovers(folder, *keep):
    return sorted(p.name for p in Path(folder).iterdir() if p.name not in keep)


def test_a_killed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.pth"
    state = {"model": {"w": torch.zeros(2)}, "classes": ["a"], "epoch": 1, "val_acc": 0.5, "hparams": {}}
    checkpoint.save(state, path)
    killed_before_rename(lambda: checkpoint.save({**state, "epoch": 2, "model": {"w": torch.ones(2)}}, path))
    assert checkpoint.load(path)["epoch"] == 1
    assert leftovers(tmp_path) == ["last.pth"]


def results_row(lr_base):
    return make_row(grid.Trial(1, 1, 1e-3, lr_base, 107, True), {
        "best_val_acc": 0.5, "test_acc": 0.5, "test_mean_class_acc": 0.5, "train_seconds": 1.0})


def test_a_killed_results_csv_rewrite_keeps_the_previous_rows(tmp_path):
    path = tmp_path / "results.csv"
    append_result(path, results_row(1e-4))
    killed_before_rename(lambda: append_result(path, results_row(1e-5)))
    assert [r["LR_Base"] for r in read_rows(path)] == ["0.0001"]
    assert leftovers(tmp_path, ".results.csv.lock") == ["results.csv"]


def test_a_killed_copy_of_the_chosen_best_pth_keeps_the_previous_one(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "best.pth").write_bytes(b"the new choice")
    (tmp_path / "best.pth").write_bytes(b"the previous choice")
    killed_before_rename(lambda: grid.copy_best({"Run": "run"}, tmp_path, tmp_path / "best.pth"))
    assert (tmp_path / "best.pth").read_bytes() == b"the previous choice"
    assert leftovers(tmp_path) == ["best.pth", "run"]


def test_a_killed_predict_csv_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "preds.csv"
    path.write_text("previous predictions\n")
    killed_before_rename(lambda: predict.write_csv(path, [{"path": "a.jpg", "top": [("ant", 0.9)]}], 1))
    assert path.read_text() == "previous predictions\n"
    assert leftovers(tmp_path) == ["preds.csv"]


def test_a_killed_split_rebuild_keeps_the_previous_split(tmp_path):
    src = make_image_folder(tmp_path / "src", classes=("a", "b"), per_class=8)
    out = tmp_path / "data" / "split"
    build_split(src, out, seed=1, train_per_class=5, val_per_class=2, workers=1)
    before = (out / "split.csv").read_bytes()
    killed_before_rename(lambda: build_split(src, out, seed=2, train_per_class=5, val_per_class=2, workers=1))
    assert (out / "split.csv").read_bytes() == before
    assert sum(len(s) for s in read_split(out).samples.values()) == 16  # every listed file is still there
    assert leftovers(out.parent) == ["split"]
