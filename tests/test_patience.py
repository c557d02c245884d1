"""--patience: early stopping that records the epochs run, resumes exactly, and shows in the grid's table."""
import json

import pytest
import torch

import grid_search
import train
from caltech.grid import results, tables
from caltech.grid import trials as grid
from caltech.training import engine
from caltech.utils import UserError
from conftest import TEST_MODEL, grid_flags, kill_on_call, planned_validation, read_rows, read_scalars, train_args

FLAGS = ["--scratch", "--epochs", 8, "--patience", 2, "--threads", 1]
# validation accuracy per epoch: best at epoch 2, then a drop and a tie (no improvement) -> with patience 2
# the run stops after 4 epochs, never reaching the better 6th
PLANNED_VAL = [0.3, 0.5, 0.4, 0.5, 0.45, 0.9, 0.9, 0.9]
STOP = 4


@pytest.fixture
def planned(monkeypatch):
    """Validation accuracy of epoch e is PLANNED_VAL[e]; the rest of every pass is real."""
    planned_validation(monkeypatch, PLANNED_VAL)


def test_patience_stops_records_and_resumes_at_the_same_epoch(tiny_split, tmp_path, monkeypatch, planned):
    straight = train.main(train_args(tmp_path, tiny_split.root, *FLAGS, "--run-name", "straight"))
    last = torch.load(tmp_path / "ckpt" / "straight" / "last.pth", weights_only=True)
    assert straight["stopped_early"] and straight["epochs_run"] == last["epoch"] == STOP
    assert straight["best_epoch"] == 1 and straight["best_val_acc"] == 0.5
    assert json.loads((tmp_path / "ckpt" / "straight" / "metrics.json").read_text())["epochs_run"] == STOP
    scalars = read_scalars(tmp_path / "runs" / "straight")
    assert [step for step, _ in scalars["Accuracy/val"]] == list(range(STOP))
    assert scalars["hparam/epochs_run"] == [(STOP - 1, STOP)]

    # killed during the fourth epoch, the one that ends the patience, then resumed
    with pytest.MonkeyPatch.context() as patch:
        kill_on_call(patch, engine, "train_one_epoch", 4)
        with pytest.raises(KeyboardInterrupt):
            train.main(train_args(tmp_path, tiny_split.root, *FLAGS, "--run-name", "broken"))
    resumed = train.main(train_args(tmp_path, tiny_split.root, "--run-name", "broken", "--resume", "--threads", 1))
    assert resumed["epochs_run"] == STOP and resumed["test_acc"] == straight["test_acc"]
    broken = torch.load(tmp_path / "ckpt" / "broken" / "last.pth", weights_only=True)
    assert all(torch.equal(last["model"][k], broken["model"][k]) for k in last["model"])
    assert read_scalars(tmp_path / "runs" / "broken") == scalars

    # a run that stopped early stays stopped when resumed: no epoch is trained, best.pth is tested again
    calls = kill_on_call(monkeypatch, engine, "train_one_epoch", 0)
    again = train.main(train_args(tmp_path, tiny_split.root, "--run-name", "straight", "--resume", "--threads", 1))
    assert calls == [] and again["epochs_run"] == STOP and again["test_acc"] == straight["test_acc"]
    assert torch.load(tmp_path / "ckpt" / "straight" / "last.pth", weights_only=True)["epoch"] == STOP
    # patience is part of the recipe: a resume cannot change it
    with pytest.raises(UserError, match="--patience 3 differs from run straight's 2"):
        train.main(train_args(tmp_path, tiny_split.root, "--run-name", "straight", "--resume", "--patience", 3))
    with pytest.raises(UserError, match="--patience -1 is out of range: it must be 0"):
        train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--patience", -1))


def test_grid_table_and_csv_show_the_epochs_run(tiny_split, tmp_path, capsys, planned):
    out = grid_search.main(grid_search.get_args_parser().parse_args(
        grid_flags(tmp_path, tiny_split.root, "--epochs", 8, "--patience", 2, "--lr-base", 1e-4)))
    (row,) = read_rows(tmp_path / "results.csv")
    assert list(row) == results.COLUMNS and "Epochs_Run" in results.LATER
    metrics = json.loads((tmp_path / "ckpt" / row["Run"] / "metrics.json").read_text())
    assert row["Recipe"] == f"{TEST_MODEL}_pat2" and row["Epochs"] == "8" and row["Epochs_Run"] == str(STOP)
    assert metrics["epochs_run"] == STOP
    header, line = capsys.readouterr().out.split("* = chosen on validation accuracy):\n")[1].splitlines()[:2]
    assert header.split()[-2:] == ["Epochs", "run"] and line.split()[-1] == row["Epochs_Run"]
    assert out["best"]["Epochs_Run"] == row["Epochs_Run"]


def test_results_written_before_epochs_run_existed_still_read(tmp_path):
    old = tmp_path / "old.csv"
    columns = results.COLUMNS[:results.COLUMNS.index("Epochs_Run")]
    values = ["1", "30", "0.001", "0.0001", "0.9500", "0.9600", "0.9400", "107", "False", "12.0", "grid_exp1", ""]
    old.write_text(",".join(columns) + "\n" + ",".join(values) + "\n")
    rows = results.read_rows(old)
    assert tables.console_grid_table(rows, rows[0]).splitlines()[1].split()[-1] == "30"  # it ran all its epochs
    assert results.read_results(old).rows[0]["Run"] == "grid_exp1"
    row = results.make_row(grid.Trial(2, 20, 1e-3, 1e-4, 107, False), {
        "best_val_acc": 0.9, "test_acc": 0.9, "test_mean_class_acc": 0.9, "train_seconds": 1.0, "epochs_run": 7})
    results.append_result(old, row)
    assert [r["Epochs_Run"] for r in read_rows(old)] == ["", "7"]
