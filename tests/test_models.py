"""--model: torchvision classifiers from train to evaluate to predict, offline; the head found, trained at --lr-fc."""
from pathlib import Path

import pytest
import torch
from torchvision.models import get_model

import bench
import evaluate
import grid_search
import predict
import train
from caltech.data.images import open_rgb as pil_loader
from caltech.data.loaders import build_loader
from caltech.data.transforms import MEAN, STD, eval_preset
from caltech.grid import search
from caltech.training import fit, setup
from caltech.training.model import cached_weights_path
from caltech.utils import UserError
from conftest import cpu_runtime, grid_flags, train_args

CPU = torch.device("cpu")
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")  # BatchNorm statistics move even at lr 0


def spy_returns(monkeypatch, owner, name, keep=lambda result: result):
    """Record keep(result) of every call of owner.name."""
    real, seen = getattr(owner, name), []

    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        seen.append(keep(result))
        return result
    monkeypatch.setattr(owner, name, wrapper)
    return seen


def plant(name, path):
    """A randomly initialised ImageNet state dict of torchvision model `name`, saved at `path`."""
    torch.manual_seed(0)
    state = get_model(name, weights=None).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def accuracy_of(rows):
    """Top-1 accuracy of predict.py's rows on files in <split>/<class>/ folders."""
    return sum(row["top"][0][0] == Path(row["path"]).parent.name for row in rows) / len(rows)


# model, its new head, how the planted weights reach it, extra flags (ViT: 86M parameters, so plain SGD
# keeps last.pth to one copy of the weights)
MODELS = [("resnet18", "fc", "cache", []),
          ("mobilenet_v3_small", "classifier.3", "cache", []),
          ("vit_b_16", "heads.head", "--weights", ["--optimizer", "sgd", "--momentum", 0, "--batch-size", 32])]


@pytest.mark.parametrize("name,head,source,extra", MODELS, ids=[m[0] for m in MODELS])
def test_model_trains_evaluates_and_predicts_offline(name, head, source, extra, tiny_split, tmp_path, monkeypatch):
    planted_file = cached_weights_path(name) if source == "cache" else tmp_path / f"{name}-random.pth"
    planted = plant(name, planted_file)
    models = spy_returns(monkeypatch, fit, "build_model")
    groups = spy_returns(monkeypatch, fit, "param_groups",
                         keep=lambda g: (g, [p.detach().clone() for p in g[1]["params"]]))
    flags = ["--model", name, "--epochs", 1, "--lr-base", 0, "--lr-fc", 1e-2, "--threads", 1, *extra]
    if source == "--weights":
        flags += ["--weights", planted_file]
    metrics = train.main(train_args(tmp_path, tiny_split.root, *flags))
    run_dir = tmp_path / "ckpt" / metrics["run"]
    assert (name in metrics["run"]) == (name != "resnet18")  # the published model keeps the published names
    assert metrics["epochs_run"] == 1 and metrics["stopped_early"] is False  # --patience is off by default

    # the head found generically, alone in the "fc" group at --lr-fc; every other parameter at --lr-base
    (model,), ((param_groups, head_before),) = models, groups
    assert model.head_name == head and model.get_submodule(head).out_features == 4
    assert [g["name"] for g in param_groups] == ["base", "fc"]
    assert param_groups[1]["params"] == list(model.get_submodule(head).parameters()) and param_groups[1]["lr"] == 1e-2
    assert len(param_groups[0]["params"]) == len(list(model.parameters())) - 2 and param_groups[0]["lr"] == 0
    best = torch.load(run_dir / "best.pth", weights_only=True)
    assert not torch.equal(best["model"][f"{head}.weight"], head_before[0])  # the head learnt
    for key, value in planted.items():  # lr_base 0: the body is still the planted ImageNet weights
        if key.startswith(f"{head}.") or key.endswith(BUFFERS) or key == "encoder.pos_embedding":
            continue
        assert torch.equal(best["model"][key], value), key
    if name.startswith("vit_"):  # 224 px position embeddings interpolated to 32 px: 2x2 patches + class token
        assert best["model"]["encoder.pos_embedding"].shape == (1, 5, 768)
    assert best["hparams"]["model"] == name and best["hparams"]["weights_name"] == "IMAGENET1K_V1"

    # evaluate and predict rebuild it from the checkpoint alone: no ImageNet weights anywhere now
    planted_file.unlink()
    ckpt = str(run_dir / "best.pth")
    evaluated = evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", ckpt, "--device", "cpu"]))
    assert evaluated["test_acc"] == metrics["test_acc"]
    rows = predict.main(predict.get_args_parser().parse_args(
        [str(tiny_split.root / "test"), "--ckpt", ckpt, "--device", "cpu", "--workers", 0]))
    assert len(rows) == 24 and accuracy_of(rows) == pytest.approx(evaluated["test_acc"])


def test_weights_own_normalisation_and_size_reach_both_loaders(tiny_split, tmp_path):
    published = train_args(tmp_path, tiny_split.root, "--model", "resnet18")
    published.image_size = None  # as on the command line without --image-size
    setup.resolve_model(published)
    assert (published.image_size, published.mean, published.std, published.weights_name) == \
        (224, MEAN, STD, "IMAGENET1K_V1")
    args = train_args(tmp_path, tiny_split.root, "--model", "efficientnet_v2_l")
    args.image_size = None
    setup.resolve_model(args)  # reads torchvision's metadata; nothing is built or downloaded
    assert args.image_size == 480 and args.mean == args.std == (0.5, 0.5, 0.5)

    args.image_size, args.cache_dir, args.eval_batch_size = 32, str(tmp_path / "cache"), 8
    expected = torch.stack([eval_preset(32, args.mean, args.std)(pil_loader(p)) for p, _ in tiny_split.samples["val"]])
    assert not torch.allclose(expected, torch.stack([eval_preset(32)(pil_loader(p))
                                                     for p, _ in tiny_split.samples["val"]]))
    for loader in ("cached", "pil"):
        args.loader = loader
        got = torch.cat([x for x, _ in build_loader(tiny_split, "val", args, cpu_runtime(args))])
        assert torch.allclose(got, expected, atol=1e-5), loader


def test_unknown_model_or_weights_name_is_one_sentence_listing_valid_ones(tiny_split, tmp_path):
    with pytest.raises(UserError, match="--model resnet19 is not .*resnet18") as info:
        train.main(train_args(tmp_path, tiny_split.root, "--model", "resnet19"))
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="IMAGENET1K_V1, IMAGENET1K_V2"):
        train.main(train_args(tmp_path, tiny_split.root, "--model", "resnet50", "--weights-name", "V3"))
    with pytest.raises(UserError, match="vit_b_16 cannot be built for --image-size 40"):
        train.main(train_args(tmp_path, tiny_split.root, "--model", "vit_b_16", "--image-size", 40, "--scratch"))
    assert not (tmp_path / "ckpt").exists()
    with pytest.raises(UserError, match="--model nope"):
        bench.main(bench.get_args_parser().parse_args(["--synthetic", "--model", "nope"]))


def test_missing_weights_name_the_models_own_file(tiny_split, tmp_path):
    with pytest.raises(UserError) as info:
        train.main(train_args(tmp_path, tiny_split.root, "--model", "resnet50", "--weights-name", "IMAGENET1K_V2"))
    message = str(info.value)
    assert "resnet50-11ad3fa6.pth" in message and str(cached_weights_path("resnet50", "IMAGENET1K_V2")) in message
    assert "--weights" in message and "--scratch" in message


def test_grid_passes_model_weights_name_and_patience_to_every_run(tmp_path):
    args = grid_search.get_args_parser().parse_args(grid_flags(
        tmp_path, tmp_path / "data", "--model", "mobilenet_v3_large", "--weights-name", "IMAGENET1K_V1",
        "--patience", 3, "--lr-base", 1e-4))
    trial, = search.plan_trials(args, "split")
    assert trial.recipe == "mobilenet_v3_large_IMAGENET1K_V1_pat3"
    targs = search.trial_args(args, trial)
    assert (targs.model, targs.weights_name, targs.patience) == ("mobilenet_v3_large", "IMAGENET1K_V1", 3)
    assert "_mobilenet_v3_large_IMAGENET1K_V1_pat3_" in trial.run_name
    # the model's default weights named explicitly are still the default recipe
    same = grid_search.get_args_parser().parse_args(grid_flags(tmp_path, tmp_path, "--weights-name", "IMAGENET1K_V1",
                                                                      "--model", "resnet18", "--lr-base", "1e-4"))
    assert search.plan_trials(same, "split")[0].recipe == ""


def test_bench_measures_the_model_asked_for(tmp_path, monkeypatch):
    built = spy_returns(monkeypatch, bench, "build_model", keep=lambda m: type(m).__name__)
    results = bench.main(bench.get_args_parser().parse_args(
        ["--synthetic", "--classes", "2", "--per-class", "12", "--steps", "1", "--image-size", "32",
         "--batch-size", "8", "--device", "cpu", "--model", "mobilenet_v3_small"]))
    assert built == ["MobileNetV3", "MobileNetV3"] and results["model"] == "mobilenet_v3_small"
    assert results["train_img_s_project"] > 0
