"""train.py end to end on tiny data: logs, checkpoints, schedule, weights, augmentation wiring, resume."""
import argparse
import json
import re
import shutil
import warnings

import pytest
import torch
from torch import nn

import train
from caltech import utils
from caltech.data.loaders import build_loader
from caltech.data.split import ensure_split, read_split
from caltech.data.transforms import MEAN, STD
from caltech.layout import DEFAULT_SPLIT
from caltech.training import engine, fit, runtime, setup
from caltech.training.model import build_model, cached_weights_path, from_checkpoint
from caltech.utils import UserError
from conftest import TEST_MODEL, cpu_runtime, kill_on_call, make_image_folder, read_scalars, run_script, train_args

TAGS = {"Loss/train", "Loss/val", "Accuracy/val", "Accuracy/train", "LR/base", "LR/fc"}


def test_two_epoch_scratch_run_logs_checkpoints_and_metrics(tiny_split, tmp_path):
    metrics = train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 2, "--run-name", "r"))
    scalars = read_scalars(tmp_path / "runs" / "r")
    assert TAGS <= set(scalars)
    for tag in TAGS:
        assert [step for step, _ in scalars[tag]] == [0, 1], tag
    assert {"hparam/best_val_acc", "hparam/test_acc"} <= set(scalars)

    for name in ("best.pth", "last.pth"):
        state = torch.load(tmp_path / "ckpt" / "r" / name, weights_only=True)  # plain data only
        assert {"model", "classes", "epoch", "val_acc", "hparams"} <= set(state)
        assert state["classes"] == tiny_split.classes and state["hparams"]["scratch"] is True
        assert state["model"]["fc.weight"].shape == (4, 64)  # TEST_MODEL's head
    last = torch.load(tmp_path / "ckpt" / "r" / "last.pth", weights_only=True)
    assert last["epoch"] == 2 and {"optimizer", "scheduler", "scaler"} <= set(last)

    saved = json.loads((tmp_path / "ckpt" / "r" / "metrics.json").read_text())
    assert saved == metrics and saved["test_n"] == 24
    assert set(saved) == {  # docs/FLAGS.md "Outputs": {split}_{metric}, then the run's own facts
        "test_loss", "test_acc", "test_mean_class_acc", "test_top5", "test_n", "best_val_acc", "val_mean_class_acc",
        "best_epoch", "epochs", "epochs_run", "stopped_early", "train_seconds", "peak_rss_mb", "run", "best_checkpoint",
        "device", "precision"}
    assert (saved["device"], saved["precision"]) == ("cpu", runtime.decide(torch.device("cpu")).dtype)
    assert set(last["history"][0]) == {"epoch", "lr_base", "lr_fc", *(f"{split}_{metric}" for split in ("train", "val")
                                       for metric in ("loss", "acc", "mean_class_acc", "top5", "n"))}
    assert saved["best_val_acc"] == pytest.approx(max(v for _, v in scalars["Accuracy/val"]))
    for key in ("best_val_acc", "test_acc", "test_mean_class_acc", "epochs_run"):  # HParams: the run's own figures
        assert scalars[f"hparam/{key}"] == [(1, pytest.approx(saved[key]))], key
    best = torch.load(tmp_path / "ckpt" / "r" / "best.pth", weights_only=True)
    assert best["val_acc"] == saved["best_val_acc"] and best["epoch"] == saved["best_epoch"] + 1
    # the checkpoint names its network and its input
    assert {k: best["hparams"][k] for k in ("model", "weights_name", "image_size", "mean", "std")} == {
        "model": TEST_MODEL, "weights_name": None, "image_size": 32, "mean": MEAN, "std": STD}  # it has no weights
    hparams = json.loads((tmp_path / "runs" / "r" / "hparams.json").read_text())
    assert hparams["epochs"] == 2 and hparams["image_size"] == 32 and hparams["num_classes"] == 4


def test_step_size_and_gamma_shape_the_logged_learning_rates(tiny_split, tmp_path):
    # neither value is the default (10, 0.1), so a flag that does not reach StepLR changes the curve
    train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 3, "--step-size", 2, "--gamma", 0.5,
                          "--lr-fc", 2e-3, "--lr-base", 3e-4, "--run-name", "lr"))
    scalars = read_scalars(tmp_path / "runs" / "lr")
    assert [v for _, v in scalars["LR/fc"]] == pytest.approx([2e-3, 2e-3, 1e-3])
    assert [v for _, v in scalars["LR/base"]] == pytest.approx([3e-4, 3e-4, 1.5e-4])


def test_optimizer_has_fc_and_base_groups_at_their_rates():
    from caltech.training.model import param_groups
    model = build_model(7, pretrained=False)
    groups = param_groups(model, lr_fc=1e-3, lr_base=1e-4)
    assert [g["name"] for g in groups] == ["base", "fc"]
    assert groups[1]["params"] == [model.fc.weight, model.fc.bias] and groups[1]["lr"] == 1e-3
    n_all = sum(1 for _ in model.parameters())
    assert len(groups[0]["params"]) == n_all - 2 and groups[0]["lr"] == 1e-4


@pytest.mark.parametrize("loader", ["cached", "pil"])
def test_resumed_run_equals_uninterrupted_run(tiny_split, tmp_path, loader):
    flags = ["--scratch", "--epochs", 3, "--loader", loader, "--threads", 1]
    train.main(train_args(tmp_path, tiny_split.root, *flags, "--run-name", "straight"))

    with pytest.MonkeyPatch.context() as patch:
        kill_on_call(patch, engine, "train_one_epoch", 2)  # killed during the second epoch
        with pytest.raises(KeyboardInterrupt):
            train.main(train_args(tmp_path, tiny_split.root, *flags, "--run-name", "broken"))
    assert torch.load(tmp_path / "ckpt" / "broken" / "last.pth", weights_only=True)["epoch"] == 1
    # only the run name is given on resume: the recipe comes back from the checkpoint
    resumed = train_args(tmp_path, tiny_split.root, "--run-name", "broken", "--resume", "--threads", 1)
    metrics = train.main(resumed)

    a = torch.load(tmp_path / "ckpt" / "straight" / "last.pth", weights_only=True)
    b = torch.load(tmp_path / "ckpt" / "broken" / "last.pth", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert read_scalars(tmp_path / "runs" / "straight") == read_scalars(tmp_path / "runs" / "broken")
    assert metrics["test_acc"] == json.loads((tmp_path / "ckpt" / "straight" / "metrics.json").read_text())["test_acc"]


def test_resume_refuses_a_changed_recipe_another_split_and_a_missing_run(tiny_split, tmp_path):
    train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "r"))
    with pytest.raises(UserError, match="--lr-fc 0.5 differs"):
        train.main(train_args(tmp_path, tiny_split.root, "--run-name", "r", "--resume", "--lr-fc", 0.5))
    other = tmp_path / "other"  # the same classes and files, another assignment to train / val / test
    shutil.copytree(tiny_split.root, other)
    header, first, second, *rest = (other / "split.csv").read_text().splitlines()
    (other / "split.csv").write_text("\n".join([header, second, first, *rest]) + "\n")
    with pytest.raises(UserError, match=f"the split {other} differs from the one run r was trained on"):
        train.main(train_args(tmp_path, other, "--run-name", "r", "--resume"))
    with pytest.raises(UserError, match="--resume: run other has no"):
        train.main(train_args(tmp_path, tiny_split.root, "--run-name", "other", "--resume"))
    with pytest.raises(UserError, match="already exists"):
        train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "r"))


def planted_cache(weights_file):
    target = cached_weights_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(weights_file.read_bytes())
    return target


def test_pretrained_weights_come_from_torchvision_cache_without_network(planted_resnet18, tiny_split, tmp_path):
    planted_cache(planted_resnet18)
    planted = torch.load(planted_resnet18, weights_only=True)
    model = build_model(4)
    assert torch.equal(model.conv1.weight, planted["conv1.weight"])
    assert model.fc.out_features == 4
    assert not torch.equal(build_model(4, pretrained=False).conv1.weight, planted["conv1.weight"])
    metrics = train.main(train_args(tmp_path, tiny_split.root, "--epochs", 1, "--model", "resnet18",
                                    "--run-name", "ft"))
    assert metrics["test_n"] == 24


def test_weights_flag_reaches_the_model(planted_resnet18):
    planted = torch.load(planted_resnet18, weights_only=True)
    model = build_model(3, weights=planted_resnet18)
    assert torch.equal(model.layer4[1].conv2.weight, planted["layer4.1.conv2.weight"])


def test_missing_weights_message_names_both_ways(tiny_split, tmp_path):
    with pytest.raises(UserError) as info:
        train.main(train_args(tmp_path, tiny_split.root, "--epochs", 1, "--model", "resnet18"))
    assert "--weights" in str(info.value) and str(cached_weights_path()) in str(info.value)
    with pytest.raises(UserError, match="does not exist"):
        build_model(3, weights=tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_text("junk")
    with pytest.raises(UserError, match="not a readable"):
        build_model(3, weights=tmp_path / "junk.pth")


def test_cli_offline_weights_and_wrong_data_give_one_sentence(tiny_split, tmp_path):
    no_weights = run_script("train.py", "--data", tiny_split.root, "--epochs", 1, "--logdir", tmp_path / "r",
                            "--ckpt-dir", tmp_path / "c",
                            env={"TORCH_HOME": str(tmp_path / "th"),  # empty cache, and a proxy that refuses
                                 "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"})
    wrong = run_script("train.py", "--data", tmp_path / "nowhere", "--scratch")
    for result in (no_weights, wrong):
        assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--weights" in no_weights.stderr
    assert "is not a split folder" in wrong.stderr and "split_dataset.py" in wrong.stderr


def test_logged_validation_figures_and_saved_test_figures_are_the_right_splits_under_the_right_names(
        tiny_split, tmp_path, monkeypatch):
    """Loss/val is last.pth's loss on the val split; validation and test accuracies, mean per-class and top-5
    land under their own names in the logs, metrics.json and HParams (planned distinct values expose a swap)."""
    planned = {"val": {"acc": 0.375}, "test": {"acc": 0.125, "mean_class_acc": 0.25, "top5": 0.5}}
    real = engine.evaluate

    def evaluate_(model, loader, criterion, rt, num_classes, desc="eval", **kwargs):
        meter = real(model, loader, criterion, rt, num_classes, desc=desc, **kwargs)
        summary = {**meter.summary(), **planned["test" if desc == "test" else "val"]}
        return type("PlannedMeter", (), {"summary": lambda self: summary})()
    monkeypatch.setattr(engine, "evaluate", evaluate_)
    metrics = train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "r"))
    monkeypatch.undo()

    assert (metrics["best_val_acc"], metrics["test_acc"], metrics["test_mean_class_acc"], metrics["test_top5"],
            metrics["test_n"]) == (0.375, 0.125, 0.25, 0.5, 24)
    assert json.loads((tmp_path / "ckpt" / "r" / "metrics.json").read_text()) == metrics
    scalars = read_scalars(tmp_path / "runs" / "r")
    assert {tag: scalars[tag][0][1] for tag in ("hparam/best_val_acc", "hparam/test_acc",
                                                "hparam/test_mean_class_acc")} == {
        "hparam/best_val_acc": 0.375, "hparam/test_acc": 0.125, "hparam/test_mean_class_acc": 0.25}
    assert scalars["Accuracy/val"] == [(0, 0.375)]
    train_hits = scalars["Accuracy/train"][0][1] * 20  # a count of the 20 training images, never 0.375 x 20
    assert train_hits == pytest.approx(round(train_hits), abs=1e-4)

    last = torch.load(tmp_path / "ckpt" / "r" / "last.pth", weights_only=True)
    rt = runtime.decide(torch.device("cpu"))  # the run's precision and memory format on this machine
    model = from_checkpoint(last, "last.pth").eval().to(memory_format=rt.memory_format)
    run = argparse.Namespace(**last["hparams"])
    val = real(model, build_loader(tiny_split, "val", run, cpu_runtime(run)), nn.CrossEntropyLoss(), rt, 4).summary()
    assert val["n"] == 12 and scalars["Loss/val"][0][1] == pytest.approx(val["loss"], rel=1e-5)
    assert scalars["Loss/train"][0][1] != pytest.approx(val["loss"], rel=1e-3)


def copy_split(split, dest):
    """A private copy of a split folder (so its cache beside it starts empty)."""
    shutil.copytree(split.root, dest)
    return dest


def spy_calls(monkeypatch, owner, name, fake=None):
    """Record the arguments of every call of owner.name; call `fake` instead of it when given."""
    real, calls = getattr(owner, name), []

    def wrapper(*args, **kwargs):
        calls.append((args, kwargs))
        return (fake or real)(*args, **kwargs)
    monkeypatch.setattr(owner, name, wrapper)
    return calls


def test_runtime_flags_reach_their_targets_and_their_defaults_hold(tiny_split, tmp_path, monkeypatch):
    data = copy_split(tiny_split, tmp_path / "data" / "split")
    devices = spy_calls(monkeypatch, runtime, "select_device")
    threads = spy_calls(monkeypatch, torch, "set_num_threads", fake=lambda n: None)  # recorded, not applied
    compiled = spy_calls(monkeypatch, torch, "compile", fake=lambda model, *a, **k: model)
    precisions = spy_calls(monkeypatch, runtime, "precision")
    loaders = []  # (split name, loader) of every loader train.py builds
    monkeypatch.setattr(fit, "build_loader", lambda split, name, *a, **k: (
        loaders.append((name, build_loader(split, name, *a, **k))), loaders[-1][1])[1])

    def batch_sizes():
        return {name: loader.batch_size for name, loader in loaders}

    flags = ["--scratch", "--epochs", 1, "--device", "cpu", "--threads", 3, "--compile", "--no-amp",
             "--eval-batch-size", 5, "--cache-dir", tmp_path / "my_cache", "--run-name", "given"]
    train.main(train_args(tmp_path, data, *flags))
    assert devices[0][0] == ("cpu",) and threads[0][0] == (3,) and len(compiled) == 1
    assert precisions[0][0][1] is False  # --no-amp
    assert batch_sizes() == {"train": 8, "val": 5, "test": 5}
    assert sorted(p.name.split("_")[0] for p in (tmp_path / "my_cache").glob("*.npy")) == ["test", "train", "val"]
    assert not (data.parent / "cache").exists()
    saved = json.loads((tmp_path / "runs" / "given" / "hparams.json").read_text())
    assert (saved["threads"], saved["compile"], saved["amp"], saved["eval_batch_size"], saved["device"]) == \
        (3, True, False, 5, "cpu")

    for calls in (devices, threads, compiled, precisions, loaders):
        calls.clear()
    defaults = train_args(tmp_path / "b", data, "--scratch", "--epochs", 1)
    defaults.device = None  # as on a command line without --device, on a machine without a GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    metrics = train.main(defaults)
    assert devices[0][0] == (None,) and threads == [] and compiled == [] and precisions[0][0][1] is True
    assert batch_sizes() == {"train": 8, "val": 8, "test": 8}  # off CUDA the eval batch is --batch-size
    assert len(list((data.parent / "cache").glob("*.npy"))) == 3  # cache/ beside --data
    # the default run name: mode, epochs, learning rates, seed, then a timestamp
    assert re.fullmatch(rf"scratch_ep1_fc0\.001_base0\.0001_s107_{TEST_MODEL}_\d{{4}}_\d{{6}}", metrics["run"]), \
        metrics["run"]


def test_default_run_name_adds_non_default_options_before_the_timestamp():
    parse = train.get_args_parser().parse_args
    assert re.fullmatch(r"finetune_ep30_fc0\.001_base0\.0001_s107_\d{4}_\d{6}", setup.default_run_name(parse([])))
    name = setup.default_run_name(parse(["--scratch", "--epochs", "2", "--lr-fc", "0.5", "--lr-base", "0.25",
                                         "--seed", "9", "--label-smoothing", "0.1", "--patience", "3"]))
    assert re.fullmatch(r"scratch_ep2_fc0\.5_base0\.25_s9_ls0\.1_pat3_\d{4}_\d{6}", name), name


def test_a_missing_split_is_built_from_source_or_from_data(tmp_path, monkeypatch):
    src = make_image_folder(tmp_path / "data" / "101_ObjectCategories", classes=("ant", "bee"), per_class=31)
    # --data that does not exist yet, with --source: built there with split_dataset.py's defaults (24/6/rest)
    metrics = train.main(train_args(tmp_path, tmp_path / "elsewhere" / "split", "--source", src, "--scratch",
                                    "--epochs", 1, "--run-name", "s"))
    built = read_split(tmp_path / "elsewhere" / "split")
    assert {k: len(v) for k, v in built.samples.items()} == {"train": 48, "val": 12, "test": 2}
    assert metrics["test_n"] == 2
    # the default --data, missing: built from the images in data/ of the working directory, nothing downloaded
    monkeypatch.chdir(tmp_path)
    split = ensure_split(DEFAULT_SPLIT, DEFAULT_SPLIT)
    assert (tmp_path / DEFAULT_SPLIT / "split.csv").is_file()
    assert split.manifest == built.manifest  # the same images, the same default protocol


def test_device_default_is_cuda_then_mps_then_cpu(monkeypatch, capsys):
    for cuda, mps, expected in ((True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda mps=mps: mps)
        assert runtime.select_device().type == expected
    assert "no GPU found" in capsys.readouterr().out
    assert runtime.select_device("cpu").type == "cpu"
    with pytest.raises(UserError, match="CUDA is not available"):
        runtime.select_device("cuda")


def test_worker_defaults_follow_the_cpu_count(monkeypatch):
    import os

    import predict
    import split_dataset
    assert split_dataset.get_args_parser().parse_args([]).workers == os.cpu_count()  # decoding: every core
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert utils.default_workers() == 3  # loaders: one core left for the training process
    for script in (train, predict):
        assert script.get_args_parser().parse_args(["x"] if script is predict else []).workers == 3


def test_cuda_precision_is_bf16_when_supported_else_fp16_and_no_amp_is_fp32(monkeypatch):
    """The choice made for CUDA devices (the autocast and scaler objects are only built here: no GPU needed)."""
    cuda = torch.device("cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # without CUDA, torch warns that it disables them
        for supported, expected in ((True, "bfloat16"), (False, "float16")):
            monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda supported=supported: supported)
            assert runtime.precision(cuda)[2] == expected
        assert runtime.precision(cuda, amp=False)[2] == "float32"
    monkeypatch.setattr(runtime, "native_cpu_bf16", lambda: False)
    assert runtime.precision(torch.device("cpu"))[2] == "float32"  # a CPU without native bf16 trains in fp32
