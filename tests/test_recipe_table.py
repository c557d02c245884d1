"""One test per promise of the recipe table, over every entry of caltech/recipe.py: its flag reaches the object it
configures, it is part of a run's identity, each of its limits is refused by train.py and by the grid, and a
checkpoint written before it existed loads with its declared old value. A new setting gets these tests by being
declared (and a probe below saying where its value lands)."""
import argparse
import re

import pytest
import torch
from test_grid_product import TWO_VALUES

import grid_search
import train
from caltech import recipe
from caltech.cli import flag
from caltech.grid import search
from caltech.training import checkpoint, engine, fit, runtime, setup
from caltech.training.model import min_image_size
from caltech.utils import UserError
from conftest import TEST_MODEL, grid_flags, planned_validation, train_args

SETTINGS = [s for s in recipe.SETTINGS.values() if s.recipe]
LIMITED = [s for s in recipe.SETTINGS.values() if s.limit is not None]


def trainer(tmp_path, data, *flags):
    """The Trainer train.py would build for `flags` (its model, optimiser, schedule, loss and loaders), untrained."""
    args, _, _ = fit.prepare(train_args(tmp_path, data, *flags), {})
    args.cache_dir = str(tmp_path / "cache")
    rt = runtime.decide(torch.device("cpu"), args.amp, args.batch_size)
    from caltech.data.split import read_split
    return fit.Trainer(args, read_split(args.data), rt)


def evaluated_tta(t):
    """The tta flag of validation, seen by running one epoch."""
    seen = []
    real = engine.evaluate
    engine.evaluate = lambda *a, **k: (seen.append(k.get("tta")), real(*a, **k))[1]
    try:
        t.epoch(0)
    finally:
        engine.evaluate = real
    return seen[0]


def first_batch_side(loader):
    return next(iter(loader))[0].shape[-1]


# setting -> (flags that make it matter, the value to try, where its value lands in the Trainer)
PROBES = {
    "epochs": (["--schedule", "cosine"], 3, lambda t: t.scheduler.T_max),
    "lr_fc": ([], 0.05, lambda t: t.optimizer.param_groups[1]["lr"]),
    "lr_base": ([], 0.02, lambda t: t.optimizer.param_groups[0]["lr"]),
    "seed": ([], 5, lambda t: t.train_loader.seed),
    "scratch": (["--weights", "PLANTED"], "on", lambda t: not torch.equal(
        t.model.features[0].weight, torch.load(t.args.weights, weights_only=True)["features.0.weight"])),
    "model": ([], "mobilenet_v3_small", lambda t: type(t.model).__name__),
    "weights_name": (["--model", "resnet50"], "IMAGENET1K_V1", lambda t: t.args.weights_name),
    "batch_size": ([], 4, lambda t: t.train_loader.batch_size),
    "step_size": ([], 3, lambda t: t.scheduler.step_size),
    "gamma": ([], 0.5, lambda t: t.scheduler.gamma),
    "image_size": ([], 48, lambda t: first_batch_side(t.train_loader)),
    "loader": ([], "pil", lambda t: type(t.train_loader).__name__),
    "train_crop": ([], "resized", lambda t: t.train_loader.transform.resized is not None),
    "min_scale": (["--train-crop", "resized"], 0.35, lambda t: t.train_loader.transform.resized),
    "auto_augment": ([], "trivial", lambda t: type(t.train_loader.transform.policy).__name__),
    "label_smoothing": ([], 0.1, lambda t: t.criterion.label_smoothing),
    "optimizer": ([], "sgd", lambda t: type(t.optimizer).__name__),
    "weight_decay": ([], 0.05, lambda t: t.optimizer.param_groups[0]["weight_decay"]),
    "momentum": (["--optimizer", "sgd"], 0.8, lambda t: t.optimizer.param_groups[0]["momentum"]),
    "schedule": ([], "cosine", lambda t: type(t.scheduler).__name__),
    "warmup_epochs": (["--epochs", 3], 1, lambda t: type(t.scheduler).__name__),
    "mixup": ([], 0.2, lambda t: getattr(t.mix, "alpha", 0)),
    "cutmix": ([], 1.0, lambda t: getattr(t.mix, "alpha", 0)),
    "tta": ([], "on", evaluated_tta),
    "patience": ([], 1, None),  # a loop setting: test_patience_reaches_the_loop below
    "ema": ([], 0.9, lambda t: t.ema is not None),
    "eval_image_size": ([], 40, lambda t: first_batch_side(t.val_loader)),
    "dropout": ([], 0.3, lambda t: t.model.fc[0].p if isinstance(t.model.fc, torch.nn.Sequential) else 0),
    "loss": ([], "cosine", lambda t: type(t.criterion).__name__),
}


def test_every_recipe_setting_has_a_probe_and_two_values():
    names = [s.name for s in SETTINGS]
    assert set(PROBES) == set(names)
    assert set(TWO_VALUES) | {"epochs", "lr_fc", "lr_base", "seed"} == set(names)


def cli(setting, value):
    """The command line of a setting at `value`: a switch as itself or nothing."""
    if setting.switch:
        return [setting.flag] if value == "on" else []
    return [setting.flag, value]


@pytest.mark.parametrize("name", [s.name for s in SETTINGS if PROBES[s.name][2] is not None])
def test_each_setting_reaches_the_object_it_configures(name, tiny_split, tmp_path, planted_weights):
    setting = recipe.SETTINGS[name]
    context, value, probe = PROBES[name]
    context = [str(planted_weights) if c == "PLANTED" else c for c in context]
    base = [] if name == "scratch" else ["--scratch"]
    default = probe(trainer(tmp_path / "a", tiny_split.root, *base, *context))
    changed = probe(trainer(tmp_path / "b", tiny_split.root, *base, *context, *cli(setting, value)))
    assert changed != default, (name, default, changed)
    if isinstance(value, (int, float)) and not isinstance(changed, (bool, str)):
        assert changed == value, (name, changed)


def test_patience_reaches_the_loop(tiny_split, tmp_path, monkeypatch):
    planned_validation(monkeypatch, [0.5, 0.4, 0.3, 0.2])
    stopped = train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 4, "--patience", 1))
    assert stopped["epochs_run"] == 2 and stopped["stopped_early"] is True


def bad_values(setting):
    return setting.limit.outside(integer=setting.type is int)


@pytest.mark.parametrize("name, value", [(s.name, v) for s in LIMITED for v in bad_values(s)])
def test_each_limit_is_refused_by_train_and_by_the_grid_before_any_work(name, value, tmp_path):
    setting = recipe.SETTINGS[name]
    given = f"{setting.flag}={value}"  # =: a negative value is not taken for a flag
    refusal = f"^{re.escape(f'{flag(name)} {setting.type(value)} is out of range: it must be {setting.limit.text}')}$"
    with pytest.raises(UserError, match=refusal):
        setup.check_args(train_args(tmp_path, tmp_path / "no_split", "--scratch", given))
    grid = grid_search.get_args_parser().parse_args(grid_flags(tmp_path, tmp_path, given))
    with pytest.raises(UserError, match=refusal):
        search.check_grid_args(grid)
        search.plan_trials(grid, "f" * 64)


# the model families the project names (README, docs/FLAGS.md) and ours, with the smallest image each takes
FAMILIES = {"resnet18": 32, "mobilenet_v3_small": 32, "efficientnet_b0": 32, "convnext_tiny": 32, "vit_b_16": 32,
            "inception_v3": 75, "tiny_cnn": 32}


@pytest.mark.parametrize("model", FAMILIES)
@pytest.mark.parametrize("name", ["image_size", "eval_image_size"])
def test_the_smallest_image_each_model_takes_is_refused_below_for_train_and_grid(model, name, tmp_path):
    if model.startswith("vit_") and name == "eval_image_size":
        return  # a ViT takes only its own size: test_recipe
    smallest = FAMILIES[model]
    assert min_image_size(model) == smallest
    flags = ["--scratch", "--model", model, "--image-size", smallest, flag(name)]
    setup.check_args(train_args(tmp_path, tmp_path, *flags, smallest))  # the smallest is taken
    with pytest.raises(UserError, match=f"{flag(name)} {smallest - 1} is too small for {model}"):
        setup.check_args(train_args(tmp_path, tmp_path, *flags, smallest - 1))
    grid = grid_search.get_args_parser().parse_args(
        grid_flags(tmp_path, tmp_path, "--model", model, "--image-size", smallest, flag(name), smallest - 1))
    with pytest.raises(UserError, match="is too small for"):
        search.plan_trials(grid, "f" * 64)


@pytest.mark.parametrize("name", [s.name for s in SETTINGS])
def test_a_checkpoint_written_before_a_setting_existed_loads_with_its_old_value(name, tiny_split, tmp_path,
                                                                                 older_run):
    state = torch.load(older_run, weights_only=True)
    del state["hparams"][name]
    state.pop("train_weights", None)
    torch.save(state, tmp_path / "older.pth")
    loaded = checkpoint.settings(checkpoint.load(tmp_path / "older.pth"))
    assert getattr(loaded, name) == recipe.SETTINGS[name].old_value
    # --resume restores it too (a flag at its default is taken as not given)
    resumed = argparse.Namespace(**{**recipe.defaults(), "run_name": "older"})
    setup.restore_recipe(resumed, {**state["hparams"], "weights": None})
    assert getattr(resumed, name) == recipe.SETTINGS[name].old_value


@pytest.fixture(scope="module")
def older_run(tmp_path_factory, tiny_split):
    out = tmp_path_factory.mktemp("older")
    train.main(train_args(out, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "r",
                          "--model", TEST_MODEL))
    return out / "ckpt" / "r" / "last.pth"
