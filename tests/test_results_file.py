"""The results file, written and read strictly: a rerun replaces its own row, --fresh removes only this grid's rows,
a local --weights file is part of a row's identity, the default file is recognised by its path, and a damaged file
(a corrupted cell, a duplicated row, a missing column, a number that is not one) is one sentence naming the line
and the column, with nothing appended to it."""
import json
import shutil

import pandas as pd
import pytest

import grid_search
from caltech.grid import results, search
from caltech.layout import chosen_path
from caltech.utils import UserError
from conftest import grid_flags, read_rows


def grid(out, data, *flags):
    return grid_search.main(grid_search.get_args_parser().parse_args(grid_flags(out, data, *flags)))


def row_of(path, **changes):
    """The CSV text of `path` with the first data row's cells changed."""
    rows = read_rows(path)
    rows[0].update(changes)
    return rows


def test_a_rerun_of_a_trial_replaces_its_own_row_and_never_adds_a_second(tiny_split, tmp_path):
    grid(tmp_path, tiny_split.root, "--lr-base", 1e-4, 1e-3)
    rows = read_rows(tmp_path / "results.csv")
    trial = search.plan_trials(grid_search.get_args_parser().parse_args(
        grid_flags(tmp_path, tiny_split.root, "--lr-base", 1e-4, 1e-3)), tiny_split.sha256)[0]
    results.append_result(tmp_path / "results.csv", results.make_row(trial, {  # the trial trained again
        "best_val_acc": 0.1234, "test_acc": 0.5, "test_mean_class_acc": 0.5, "train_seconds": 1.0}))
    again = read_rows(tmp_path / "results.csv")
    assert len(again) == 2 and [r["Run"] for r in again] == [rows[1]["Run"], rows[0]["Run"]]
    assert again[1]["Best_Val_Acc"] == "0.1234" and again[0] == rows[1]


def test_fresh_removes_only_this_grids_rows_and_keeps_rows_of_unknown_or_other_settings(tiny_split, tmp_path):
    grid(tmp_path, tiny_split.root, "--lr-base", 1e-4)
    grid(tmp_path, tiny_split.root, "--lr-base", 1e-3)  # another grid's row
    older = {c: "" for c in results.COLUMNS} | {"Experiment": "1", "Epochs": "1", "LR_FC": "0.001", "LR_Base": "1e-05",
                                                 "Best_Val_Acc": "0.5", "Test_Acc": "0.5",
                                                 "Test_Mean_Class_Acc": "0.5", "Seed": "107", "Scratch": "True",
                                                 "Train_Seconds": "1.0", "Run": "older"}
    results.write_results(tmp_path / "results.csv", read_rows(tmp_path / "results.csv") + [older])
    first, other, _ = read_rows(tmp_path / "results.csv")
    grid(tmp_path, tiny_split.root, "--lr-base", 1e-4, "--fresh")
    rows = read_rows(tmp_path / "results.csv")
    assert [r["Run"] for r in rows] == [other["Run"], "older", first["Run"]]  # this grid's row trained again, last
    assert rows[:2] == [other, {k: v for k, v in older.items()}]


def test_a_local_weights_file_is_part_of_a_rows_identity(tiny_split, tmp_path, planted_weights):
    flags = ["--lr-base", 1e-4, "--weights", planted_weights, "--scratch", "off"]
    grid(tmp_path, tiny_split.root, *flags)
    other = tmp_path / "other.pth"
    shutil.copy(planted_weights, other)
    grid(tmp_path, tiny_split.root, *flags[:-4], "--weights", other, "--scratch", "off")  # the same bytes: reused
    assert len(read_rows(tmp_path / "results.csv")) == 1
    import torch
    state = torch.load(planted_weights, weights_only=True)
    state["fc.bias"] += 1
    torch.save(state, other)
    grid(tmp_path, tiny_split.root, *flags[:-4], "--weights", other, "--scratch", "off")  # other weights: trained
    rows = read_rows(tmp_path / "results.csv")
    assert len(rows) == 2 and len({json.loads(r["Settings"])["weights_sha256"] for r in rows}) == 2


def test_the_default_results_file_is_recognised_by_its_path_not_its_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert chosen_path("grid_search_results.csv", "checkpoints", False) == tmp_path.joinpath(
        "checkpoints", "best.pth").relative_to(tmp_path)
    assert chosen_path(tmp_path / "grid_search_results.csv", "checkpoints", True).name == "best_scratch.pth"
    elsewhere = tmp_path / "sweeps" / "grid_search_results.csv"  # the same name in another folder: someone else's
    assert chosen_path(elsewhere, "checkpoints", False) == tmp_path / "sweeps" / "grid_search_results_best.pth"


@pytest.mark.parametrize("damage, message", [
    ({"Settings": '{"epochs": 1, "lr_f'}, r"line 2: its Settings cell is not the JSON of a run's settings"),
    ({"Best_Val_Acc": "high"}, r"line 2: Best_Val_Acc holds a non-numeric value, 'high'"),
    ({"Seed": "1.5.2"}, r"line 2: Seed holds a non-numeric value"),
    ({"Split_SHA256": "abc"}, r"line 2: its Split_SHA256 'abc' is not a SHA-256"),
])
def test_a_damaged_results_file_is_one_sentence_naming_the_line_and_nothing_is_appended(tiny_split, tmp_path,
                                                                                       damage, message):
    grid(tmp_path, tiny_split.root, "--lr-base", 1e-4)
    results.write_results(tmp_path / "results.csv", row_of(tmp_path / "results.csv", **damage))
    before = (tmp_path / "results.csv").read_bytes()
    with pytest.raises(UserError, match=message):
        grid(tmp_path, tiny_split.root, "--lr-base", 1e-4, 1e-3)
    assert (tmp_path / "results.csv").read_bytes() == before
    assert len([p for p in (tmp_path / "runs").iterdir() if p.is_dir()]) == 1  # nothing trained


def test_a_duplicated_row_and_a_missing_column_are_named(tiny_split, tmp_path):
    grid(tmp_path, tiny_split.root, "--lr-base", 1e-4)
    path = tmp_path / "results.csv"
    text = path.read_text()
    path.write_text(text + text.splitlines()[1] + "\n")
    with pytest.raises(UserError, match=r"lines 2 and 3 hold the same run"):
        results.read_rows(path)
    pd.read_csv(path, dtype=str, keep_default_na=False).drop_duplicates().drop(columns=["Train_Seconds"]).to_csv(
        path, index=False)
    with pytest.raises(UserError, match="lacks the column.s. Train_Seconds, which every results file"):
        results.read_rows(path)
    with pytest.raises(UserError, match="lacks the column.s. Train_Seconds"):
        results.read_results(path)


def test_a_setting_added_later_is_left_out_of_a_rows_identity_at_its_old_value(tiny_split, tmp_path, capsys):
    """Rows written before --ema existed record no "ema": a run at its old value (0, off) keeps their identity,
    so such rows are reused; a run with the average is another row."""
    grid(tmp_path, tiny_split.root, "--lr-base", 1e-4)
    (row,) = read_rows(tmp_path / "results.csv")
    assert not {"ema", "dropout", "eval_image_size", "loss"} & set(json.loads(row["Settings"]))
    capsys.readouterr()
    grid(tmp_path, tiny_split.root, "--lr-base", 1e-4, "--ema", 0)
    assert "grid: 1 runs, 1 already in" in capsys.readouterr().out
    grid(tmp_path, tiny_split.root, "--lr-base", 1e-4, "--ema", 0.9)
    rows = read_rows(tmp_path / "results.csv")
    assert len(rows) == 2 and json.loads(rows[1]["Settings"])["ema"] == 0.9
