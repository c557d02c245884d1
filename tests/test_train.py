"""train.py end to end on tiny data: logs, checkpoints, schedule, weights, augmentation wiring, resume."""
import json

import pytest
import torch

import train
from caltech import engine
from caltech.model import build_model, cached_weights_path
from caltech.utils import UserError
from conftest import kill_on_call, read_scalars, run_script, train_args

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
        assert state["model"]["fc.weight"].shape == (4, 512)
    last = torch.load(tmp_path / "ckpt" / "r" / "last.pth", weights_only=True)
    assert last["epoch"] == 2 and {"optimizer", "scheduler", "scaler"} <= set(last)

    saved = json.loads((tmp_path / "ckpt" / "r" / "metrics.json").read_text())
    assert saved == metrics and saved["n_test"] == 24
    assert 0 <= saved["test_mean_class_acc"] <= 1
    assert saved["best_val_acc"] == pytest.approx(max(v for _, v in scalars["Accuracy/val"]))
    hparams = json.loads((tmp_path / "runs" / "r" / "hparams.json").read_text())
    assert hparams["epochs"] == 2 and hparams["image_size"] == 32 and hparams["num_classes"] == 4


def test_step_lr_is_logged_falling_tenfold_each_epoch(tiny_split, tmp_path):
    train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 3, "--step-size", 1, "--gamma", 0.1,
                          "--lr-fc", 2e-3, "--lr-base", 3e-4, "--run-name", "lr"))
    scalars = read_scalars(tmp_path / "runs" / "lr")
    assert [v for _, v in scalars["LR/fc"]] == pytest.approx([2e-3, 2e-4, 2e-5])
    assert [v for _, v in scalars["LR/base"]] == pytest.approx([3e-4, 3e-5, 3e-6])


def test_optimizer_has_fc_and_base_groups_at_their_rates():
    from caltech.model import param_groups
    model = build_model(7, scratch=True)
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


def test_resume_refuses_a_changed_recipe_and_a_missing_run(tiny_split, tmp_path):
    train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "r"))
    with pytest.raises(UserError, match="--lr-fc 0.5 differs"):
        train.main(train_args(tmp_path, tiny_split.root, "--run-name", "r", "--resume", "--lr-fc", 0.5))
    with pytest.raises(UserError, match="does not exist"):
        train.main(train_args(tmp_path, tiny_split.root, "--run-name", "other", "--resume"))
    with pytest.raises(UserError, match="already exists"):
        train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "r"))


def planted_cache(weights_file):
    target = cached_weights_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(weights_file.read_bytes())
    return target


def test_pretrained_weights_come_from_torchvision_cache_without_network(planted_weights, tiny_split, tmp_path):
    planted_cache(planted_weights)
    planted = torch.load(planted_weights, weights_only=True)
    model = build_model(4)
    assert torch.equal(model.conv1.weight, planted["conv1.weight"])
    assert model.fc.out_features == 4
    assert not torch.equal(build_model(4, scratch=True).conv1.weight, planted["conv1.weight"])
    metrics = train.main(train_args(tmp_path, tiny_split.root, "--epochs", 1, "--run-name", "ft"))
    assert metrics["n_test"] == 24


def test_weights_flag_reaches_the_model(planted_weights):
    planted = torch.load(planted_weights, weights_only=True)
    model = build_model(3, weights=planted_weights)
    assert torch.equal(model.layer4[1].conv2.weight, planted["layer4.1.conv2.weight"])


def test_missing_weights_message_names_both_ways(tiny_split, tmp_path):
    with pytest.raises(UserError) as info:
        train.main(train_args(tmp_path, tiny_split.root, "--epochs", 1))
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
