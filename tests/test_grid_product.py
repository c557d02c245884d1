"""The grid over any recipe flag: every train.py recipe setting takes several values, the grid runs their
Cartesian product (published axes fastest), --lr ties the two rates, and each row records its full recipe."""
import json

import pytest

import grid_search
import train
from caltech import recipe
from caltech.cli import flag
from caltech.grid import search
from caltech.grid.results import row_settings
from caltech.training import engine
from conftest import TEST_MODEL, grid_flags, read_rows

# two valid values for every recipe setting beside the published axes and the seed
TWO_VALUES = {"scratch": ("off", "on"), "model": ("resnet18", "mobilenet_v3_small"),
              "weights_name": ("IMAGENET1K_V1", "IMAGENET1K_V2"), "batch_size": ("8", "4"), "step_size": ("10", "3"),
              "gamma": ("0.1", "0.5"), "image_size": ("32", "48"), "loader": ("cached", "pil"),
              "train_crop": ("random", "resized"), "min_scale": ("0.08", "0.35"), "auto_augment": ("none", "trivial"),
              "label_smoothing": ("0", "0.1"), "optimizer": ("adam", "sgd"), "weight_decay": ("0", "0.05"),
              "momentum": ("0.9", "0.8"), "schedule": ("step", "cosine"), "warmup_epochs": ("0", "1"),
              "mixup": ("0", "0.2"), "cutmix": ("0", "1"), "tta": ("off", "on"), "patience": ("0", "2"),
              "ema": ("0", "0.9"), "eval_image_size": ("40", "48"), "dropout": ("0", "0.5"),
              "loss": ("ce", "cosine")}

# the recipe in which a setting that some recipes ignore (recipe entries' used_with) does something
USED_BY = {"momentum": ["--optimizer", "sgd"], "min_scale": ["--train-crop", "resized"]}


def parse(tmp_path, *flags):
    argv = [f for f in grid_flags(tmp_path, tmp_path, "--epochs", 2, "--lr-base", "1e-4", *flags)]
    argv.remove("--scratch")  # each test says what it trains
    return grid_search.get_args_parser().parse_args(argv)


def test_every_recipe_setting_is_covered():
    assert set(TWO_VALUES) == set(recipe.RECIPE) - {"epochs", "lr_fc", "lr_base", "seed"}


@pytest.mark.parametrize("key", sorted(TWO_VALUES))
def test_each_recipe_flag_takes_several_values_one_run_each_reaching_train(tmp_path, key, planted_weights):
    values = TWO_VALUES[key]
    extra = [] if key in ("scratch", "weights_name") else ["--scratch"]
    if key == "weights_name":  # resnet18 has one set of weights, resnet50 two
        extra = ["--model", "resnet50", "--weights", str(planted_weights)]
    extra += USED_BY.get(key, [])
    args = parse(tmp_path, flag(key), *values, *extra)
    trials = search.plan_trials(args, "split")
    assert len(trials) == 2 and [t.experiment for t in trials] == [1, 2]
    expected = [getattr(train.get_args_parser().parse_args([flag(key), v] if v not in ("on", "off") else
                                                           [flag(key)] * (v == "on")), key) for v in values]
    assert [getattr(search.trial_args(args, t), key) for t in trials] == expected
    assert [t.settings[key] for t in trials] == expected and len({t.run_name for t in trials}) == 2
    assert search.varying(trials) == [key]


def test_the_product_varies_the_published_axes_fastest_and_keeps_their_numbering(tmp_path):
    published = search.plan_trials(grid_search.get_args_parser().parse_args([]), "split")
    assert [(t.experiment, t.epochs, t.lr_fc, t.lr_base) for t in published] == [
        (1, 20, 1e-3, 1e-4), (2, 20, 1e-3, 1e-5), (3, 20, 5e-4, 1e-4), (4, 20, 5e-4, 1e-5),
        (5, 30, 1e-3, 1e-4), (6, 30, 1e-3, 1e-5), (7, 30, 5e-4, 1e-4), (8, 30, 5e-4, 1e-5)]
    trials = search.plan_trials(parse(tmp_path, "--scratch", "--optimizer", "adam", "adamw", "--image-size", "32",
                                           "48", "--epochs", "1", "2", "--seeds", "1", "2"), "split")
    assert len(trials) == 16 and [t.experiment for t in trials] == list(range(1, 9)) * 2
    # the other settings in recipe.RECIPE's order, slowest first: image size before optimizer
    assert [(t.settings["optimizer"], t.settings["image_size"], t.epochs) for t in trials[:8]] == [
        (o, s, e) for s in (32, 48) for o in ("adam", "adamw") for e in (1, 2)]
    assert [t.seed for t in trials] == [1] * 8 + [2] * 8  # seed-major, as before
    assert search.varying(trials) == ["image_size", "optimizer"]


def test_settings_a_recipe_ignores_do_not_multiply_its_runs(tmp_path, capsys):
    args = parse(tmp_path, "--scratch", "--optimizer", "adam", "sgd", "--momentum", "0.9", "0.8", "--schedule", "step",
                 "cosine", "--step-size", "10", "5", "--seeds", "1", "2")
    trials = search.plan_trials(args, "split")
    # in recipe.RECIPE's order (step size, optimizer, momentum, schedule), each distinct recipe where it first
    # appears: adam once per momentum, cosine once per step size, all at the ignored setting's default
    recipes = [(t.settings["step_size"], t.settings["optimizer"], t.settings["momentum"], t.settings["schedule"])
               for t in trials if t.seed == 1]
    assert recipes == [(10, "adam", 0.9, "step"), (10, "adam", 0.9, "cosine"), (10, "sgd", 0.9, "step"),
                       (10, "sgd", 0.9, "cosine"), (10, "sgd", 0.8, "step"), (10, "sgd", 0.8, "cosine"),
                       (5, "adam", 0.9, "step"), (5, "sgd", 0.9, "step"), (5, "sgd", 0.8, "step")]
    assert [t.experiment for t in trials] == list(range(1, 10)) * 2 and len({t.run_name for t in trials}) == 18
    assert "16 configurations are 9 distinct recipes: --momentum, --step-size change nothing" in capsys.readouterr().out
    # the run gets what its row records: the ignored setting at its default
    cosine_sgd = search.trial_args(args, trials[5])
    assert (cosine_sgd.optimizer, cosine_sgd.momentum, cosine_sgd.schedule, cosine_sgd.step_size) == (
        "sgd", 0.8, "cosine", 10)


def test_lr_ties_the_two_rates_instead_of_crossing_them(tmp_path):
    args = grid_search.get_args_parser().parse_args(["--scratch", "--epochs", "30", "--lr", "1e-3", "2e-3", "4e-3"])
    trials = search.plan_trials(args, "split")
    assert [(t.lr_fc, t.lr_base) for t in trials] == [(1e-3, 1e-3), (2e-3, 2e-3), (4e-3, 4e-3)]
    crossed = search.plan_trials(grid_search.get_args_parser().parse_args(
        ["--scratch", "--epochs", "30", "--lr-fc", "1e-3", "2e-3", "--lr-base", "1e-3", "2e-3"]), "split")
    assert len(crossed) == 4


def test_a_product_grid_runs_its_rows_table_and_shared_prefixes(tiny_split, tmp_path, monkeypatch, capsys):
    epochs = []
    real = engine.train_one_epoch
    monkeypatch.setattr(engine, "train_one_epoch", lambda *a, **k: (epochs.append(1), real(*a, **k))[1])
    args = grid_search.get_args_parser().parse_args(grid_flags(
        tmp_path, tiny_split.root, "--epochs", 1, 2, "--optimizer", "adam", "sgd", "--lr-base", "1e-3"))
    out = grid_search.main(args)
    assert len(epochs) == 4  # one training per optimizer, its 1-epoch run on the way: 2 + 2, not 1 + 2 + 1 + 2
    printed = capsys.readouterr().out
    header, *lines = printed.split("* = chosen on validation accuracy):\n")[1].split("\n\n")[0].splitlines()
    assert "optimizer" in header.split() and len(lines) == 4
    assert [line.split()[-6] for line in lines] == ["adam", "adam", "sgd", "sgd"]  # the column that varies
    rows = read_rows(tmp_path / "results.csv")
    assert sorted(json.loads(r["Settings"])["optimizer"] for r in rows) == ["adam", "adam", "sgd", "sgd"]
    # every setting, but one added later at the value rows had before it existed (recipe.identity)
    always = {k for k in recipe.RECIPE if not recipe.SETTINGS[k].optional}
    assert all(json.loads(r["Settings"]) == row_settings(r) and always <= set(row_settings(r)) for r in rows)
    assert {r["Run"] for r in out["rows"]} == {r["Run"] for r in rows}
    sgd = [r for r in rows if "_sgd_" in r["Run"]]
    assert len(sgd) == 2 and all(r["Recipe"] == f"{TEST_MODEL}_sgd" for r in sgd)
    epochs.clear()
    grid_search.main(args)  # every row is reused: nothing trains
    assert epochs == [] and "grid: 4 runs, 4 already in" in capsys.readouterr().out
