"""The recipe options (off by default): each flag reaches its target, on both loaders, and resumes exactly."""
import json
import math
from pathlib import Path

import pytest
import torch
import torchvision.transforms as T
from torch import nn
from torchvision.transforms import v2

import evaluate
import grid_search
import predict
import train
from caltech.data.loaders import build_loader
from caltech.data.transforms import resized_crop_params, resized_crops, train_preset
from caltech.training import engine, fit, runtime, setup
from caltech.training.losses import CosineLoss
from caltech.utils import UserError
from conftest import TEST_MODEL, cpu_runtime, grid_flags, kill_on_call, read_rows, read_scalars, train_args

CPU = torch.device("cpu")
OPTIONS = ["--train-crop", "resized", "--min-scale", 0.3, "--auto-augment", "trivial", "--label-smoothing", 0.1,
           "--optimizer", "adamw", "--weight-decay", 0.05, "--schedule", "cosine", "--warmup-epochs", 1,
           "--mixup", 0.2, "--cutmix", 1.0, "--tta", "--ema", 0.9, "--eval-image-size", 40, "--dropout", 0.2,
           "--loss", "cosine"]


def spy(monkeypatch, owner, name):
    """Record the keyword and positional arguments of every call of owner.name, then call it."""
    real, calls = getattr(owner, name), []

    def wrapper(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)
    monkeypatch.setattr(owner, name, wrapper)
    return calls


def hparams_keys(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    return dict(plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams)


def test_published_recipe_is_the_default():
    args = train.get_args_parser().parse_args([])
    assert (args.train_crop, args.auto_augment, args.label_smoothing, args.optimizer, args.weight_decay,
            args.schedule, args.warmup_epochs, args.mixup, args.cutmix, args.tta) == \
        ("random", "none", 0.0, "adam", 0.0, "step", 0, 0.0, 0.0, False)
    assert setup.recipe_tag(args) == ""
    assert engine.batch_mixer(args.mixup, args.cutmix, 101) is None
    # the published PIL transform, exactly
    assert repr(train_preset(224)) == repr(T.Compose([T.Resize((256, 256)), T.RandomCrop(224), T.RandomHorizontalFlip(),
                                                      T.ToTensor(), T.Normalize((0.485, 0.456, 0.406),
                                                                                (0.229, 0.224, 0.225))]))


def test_default_run_uses_adam_steplr_plain_loss_and_no_tta(tiny_split, tmp_path, monkeypatch):
    trains = spy(monkeypatch, engine, "train_one_epoch")
    evals = spy(monkeypatch, engine, "evaluate")
    train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "r"))
    (args, kwargs), = trains
    assert args[2].label_smoothing == 0.0 and kwargs["mix"] is None
    assert [kw["tta"] for _, kw in evals] == [False, False]  # validation, then test
    last = torch.load(tmp_path / "ckpt" / "r" / "last.pth", weights_only=True)
    groups = last["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.0, 0.0] and not groups[0].get("decoupled_weight_decay")
    assert "momentum" not in groups[0] and last["scheduler"]["step_size"] == 10


def test_every_option_reaches_its_target_and_is_recorded(tiny_split, tmp_path, monkeypatch):
    trains = spy(monkeypatch, engine, "train_one_epoch")
    evals = spy(monkeypatch, engine, "evaluate")
    loaders = spy(monkeypatch, fit, "build_loader")
    metrics = train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 3, *OPTIONS))
    run = metrics["run"]
    assert "crop-resized_scale0.3_trivial_ls0.1_adamw_wd0.05_cosine_warm1_mixup0.2_cutmix1.0_tta" in run
    args, kwargs = trains[0]
    assert args[2].label_smoothing == 0.1
    mix = kwargs["mix"]
    assert isinstance(mix, v2.RandomChoice)
    assert sorted((type(m).__name__, m.alpha) for m in mix.transforms) == [("CutMix", 1.0), ("MixUp", 0.2)]
    assert evals and all(kw["tta"] is True for _, kw in evals)
    assert all(isinstance(a[2], CosineLoss) and a[2].label_smoothing == 0.0 for a, _ in evals)  # the run's, plain
    train_loader = next(a for a, _ in loaders if a[1] == "train")
    assert train_loader[2].train_crop == "resized" and train_loader[2].auto_augment == "trivial"

    last = torch.load(tmp_path / "ckpt" / run / "last.pth", weights_only=True)
    assert all(g["weight_decay"] == 0.05 and g["decoupled_weight_decay"] for g in last["optimizer"]["param_groups"])
    # linear warm-up from half the rate for one epoch, then cosine to 0 at epoch 3
    lrs = [v for _, v in read_scalars(tmp_path / "runs" / run)["LR/base"]]
    assert lrs == pytest.approx([1e-4 / 2, 1e-4, 1e-4 * (1 + math.cos(math.pi / 2)) / 2])
    saved = json.loads((tmp_path / "runs" / run / "hparams.json").read_text())
    assert saved["mixup"] == 0.2 and saved["min_scale"] == 0.3 and saved["tta"] is True
    assert torch.load(tmp_path / "ckpt" / run / "best.pth", weights_only=True)["hparams"]["optimizer"] == "adamw"
    logged = hparams_keys(tmp_path / "runs" / run)
    recipe = {"epochs", "lr_fc", "lr_base", "seed", "scratch", "label_smoothing", "auto_augment", "schedule"}
    runtime = {"data", "cache_dir", "logdir", "ckpt_dir", "device", "workers", "threads", "amp", "compile"}
    assert recipe <= set(logged) and not runtime & set(logged)
    # evaluate.py scores best.pth as the run did (with its flip TTA), unless told otherwise
    best = str(tmp_path / "ckpt" / run / "best.pth")
    evaluate_args = evaluate.get_args_parser().parse_args(["--ckpt", best, "--device", "cpu"])
    assert evaluate.main(evaluate_args)["test_acc"] == metrics["test_acc"]
    calls = len(evals)
    evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", best, "--device", "cpu", "--no-tta"]))
    assert evals[calls][1]["tta"] is False


def test_sgd_gets_momentum_nesterov_and_weight_decay_in_both_groups(tiny_split, tmp_path):
    train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "sgd",
                          "--optimizer", "sgd", "--momentum", 0.8, "--weight-decay", 0.01, "--lr-fc", 0.05,
                          "--lr-base", 0.02))
    groups = torch.load(tmp_path / "ckpt" / "sgd" / "last.pth", weights_only=True)["optimizer"]["param_groups"]
    assert [(g["name"], g["lr"], g["momentum"], g["nesterov"], g["weight_decay"]) for g in groups] == \
        [("base", 0.02, 0.8, True, 0.01), ("fc", 0.05, 0.8, True, 0.01)]


@pytest.mark.parametrize("loader", ["cached", "pil"])
def test_resumed_run_with_every_option_equals_uninterrupted_run(tiny_split, tmp_path, loader):
    flags = ["--scratch", "--epochs", 3, "--loader", loader, "--threads", 1, *OPTIONS]
    train.main(train_args(tmp_path, tiny_split.root, *flags, "--run-name", "straight"))
    with pytest.MonkeyPatch.context() as patch:
        kill_on_call(patch, engine, "train_one_epoch", 2)
        with pytest.raises(KeyboardInterrupt):
            train.main(train_args(tmp_path, tiny_split.root, *flags, "--run-name", "broken"))
    train.main(train_args(tmp_path, tiny_split.root, "--run-name", "broken", "--resume", "--threads", 1))
    a = torch.load(tmp_path / "ckpt" / "straight" / "last.pth", weights_only=True)
    b = torch.load(tmp_path / "ckpt" / "broken" / "last.pth", weights_only=True)
    for weights in ("model", "train_weights"):  # --ema: the average, and the weights it averages
        assert all(torch.equal(a[weights][k], b[weights][k]) for k in a[weights]), weights
    assert a["ema_steps"] == b["ema_steps"] == 9
    assert read_scalars(tmp_path / "runs" / "straight") == read_scalars(tmp_path / "runs" / "broken")
    with pytest.raises(UserError, match="--label-smoothing 0.3 differs"):
        train.main(train_args(tmp_path, tiny_split.root, "--run-name", "broken", "--resume", "--label-smoothing", 0.3))


def test_bad_option_values_are_one_sentence(tiny_split, tmp_path):
    with pytest.raises(UserError, match="--warmup-epochs"):
        train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 2, "--warmup-epochs", 2))
    with pytest.raises(UserError, match="--min-scale"):
        train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--min-scale", 0))


@pytest.mark.parametrize("kind", ["cached", "pil"])
def test_augmentation_options_reach_both_loaders_and_only_for_training(tiny_split, tmp_path, kind):
    args = train_args(tmp_path, tiny_split.root, "--loader", kind, "--train-crop", "resized", "--min-scale", 0.3,
                      "--auto-augment", "randaugment")
    args.cache_dir, args.eval_batch_size = str(tmp_path / "cache"), 8
    setup.resolve_model(args)
    train_loader, val_loader = (build_loader(tiny_split, name, args, cpu_runtime(args)) for name in ("train", "val"))
    if kind == "pil":
        ops = train_loader.loader.dataset.transform.transforms
        crop = next(t for t in ops if isinstance(t, T.RandomResizedCrop))
        assert crop.scale == (0.3, 1.0) and crop.size == (32, 32)
        assert any(isinstance(t, v2.RandAugment) for t in ops)
        eval_ops = val_loader.loader.dataset.transform.transforms
        assert not any(isinstance(t, (T.RandomResizedCrop, v2.RandAugment)) for t in eval_ops)
    else:
        assert train_loader.transform.resized == 0.3 and isinstance(train_loader.transform.policy, v2.RandAugment)
        assert val_loader.transform.resized is None and val_loader.transform.policy is None
    torch.manual_seed(0)
    train_loader.set_epoch(0)
    x0 = torch.cat([x for x, _ in train_loader])
    torch.manual_seed(1)
    train_loader.set_epoch(1)
    x1 = torch.cat([x for x, _ in train_loader])
    assert x0.shape == (20, 3, 32, 32) and not torch.equal(x0, x1)
    val_loader.set_epoch(0)
    v0 = torch.cat([x for x, _ in val_loader])
    torch.manual_seed(5)
    val_loader.set_epoch(5)
    assert torch.equal(v0, torch.cat([x for x, _ in val_loader]))


def test_resized_crop_params_have_random_resized_crop_distribution():
    side, n, min_scale = 64, 6000, 0.2
    top, left, h, w, flip = resized_crop_params(n, side, min_scale, torch.Generator().manual_seed(0))
    assert ((top >= 0) & (left >= 0) & (top + h <= side) & (left + w <= side) & (h > 0) & (w > 0)).all()
    torch.manual_seed(0)
    image = torch.zeros(3, side, side)
    ref = torch.tensor([T.RandomResizedCrop.get_params(image, (min_scale, 1.0), (3 / 4, 4 / 3)) for _ in range(n)])
    ours = torch.stack([top, left, h, w], dim=1)
    for col in range(4):  # means and spreads of top, left, height and width agree within sampling noise
        a, b = ours[:, col].float(), ref[:, col].float()
        assert abs(a.mean() - b.mean()) < 4 * b.std() / math.sqrt(n) + 0.3, col
        assert abs(a.std() - b.std()) < 0.06 * b.std(), col
    assert abs(flip.float().mean() - 0.5) < 0.03


def test_resized_crops_resample_the_box_and_flip():
    ramp = torch.arange(16, dtype=torch.float32).repeat(1, 3, 16, 1).to(torch.uint8)  # pixel value = column
    whole = (torch.tensor([0]), torch.tensor([0]), torch.tensor([16]), torch.tensor([16]), torch.tensor([False]))
    assert torch.equal(resized_crops(ramp, whole, 16), ramp.float())
    # the right half (columns 8..15) stretched to 16 columns: bilinear, centre-aligned like a resize
    half = (torch.tensor([0]), torch.tensor([8]), torch.tensor([16]), torch.tensor([8]), torch.tensor([False]))
    out = resized_crops(ramp, half, 16)[0, 0, 0]
    expected = torch.nn.functional.interpolate(ramp[:, :1, :1, 8:].float(), size=(1, 16), mode="bilinear",
                                               align_corners=False)[0, 0, 0]
    # the box's first column samples half a pixel outside the box (roi_align reads the whole image,
    # a crop-then-resize clamps at the crop's edge); everywhere else they agree
    assert torch.allclose(out[1:], expected[1:], atol=1e-4) and abs(out[0] - expected[0]) <= 0.5
    flipped = resized_crops(ramp, (*half[:4], torch.tensor([True])), 16)[0, 0, 0]
    assert torch.equal(flipped, out.flip(0))


def test_mixer_feeds_soft_targets_to_the_loss_and_hard_labels_to_the_accuracy():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))
    images, labels = torch.randn(6, 3, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    seen = []

    def criterion(logits, targets):
        seen.append(targets)
        return nn.functional.cross_entropy(logits, targets)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(0)
    stats = engine.train_one_epoch(model, [(images, labels)], criterion, optimizer, runtime.decide(CPU, amp=False), 3,
                                   mix=engine.batch_mixer(mixup=0.5, num_classes=3))
    assert seen[0].shape == (6, 3) and seen[0].dtype.is_floating_point
    assert not torch.equal(seen[0], nn.functional.one_hot(labels, 3).float())  # really mixed
    assert stats["n"] == 6


def test_flip_tta_averages_the_image_and_its_mirror():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 5, 4)).eval()
    images = torch.randn(2, 3, 4, 5)
    import contextlib
    with torch.no_grad():
        got = engine.predict_logits(model, images, contextlib.nullcontext(), tta=True)
        probs = (model(images).softmax(1) + model(images.flip(3)).softmax(1)) / 2
    assert torch.allclose(got.exp(), probs, atol=1e-6)
    assert not torch.allclose(got.softmax(1), model(images).softmax(1), atol=1e-3)


def test_grid_passes_options_through_and_keeps_their_rows_apart(tiny_split, tmp_path):
    out = tmp_path / "g"
    grid_search.main(grid_search.get_args_parser().parse_args(grid_flags(out, tiny_split.root, "--lr-base", 1e-4)))
    grid_search.main(grid_search.get_args_parser().parse_args(
        grid_flags(out, tiny_split.root, "--lr-base", 1e-4, "--label-smoothing", 0.1, "--schedule", "cosine")))
    rows = read_rows(out / "results.csv")
    # the second grid did not reuse the first's row
    assert [r["Recipe"] for r in rows] == [TEST_MODEL, f"{TEST_MODEL}_ls0.1_cosine"]
    run = rows[1]["Run"]
    assert "_ls0.1_cosine_" in run  # the options, then the digest of the full recipe
    saved = json.loads((out / "runs" / run / "hparams.json").read_text())
    assert saved["label_smoothing"] == 0.1 and saved["schedule"] == "cosine"


def test_default_run_is_bit_for_bit_a_hand_written_published_loop(tiny_split, tmp_path):
    """The published recipe written out with plain torch/torchvision (Adam with fc/base groups, StepLR,
    cross-entropy, Resize-RandomCrop-Flip, per-epoch seeds): train.py's defaults must give the same weights.
    Precision and memory format are this machine's runtime choices (caltech.runtime), not the recipe's."""
    from torch.utils.data import DataLoader
    from torchvision.models import resnet18

    from caltech.data.loaders import ImageList
    from caltech.utils import derive_seed, seed_everything
    threads = torch.get_num_threads()
    # --threads 1 sets torch's threads to 1 for the reference loop too
    train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 2, "--loader", "pil", "--threads", 1,
                          "--model", "resnet18", "--run-name", "r"))
    ours = torch.load(tmp_path / "ckpt" / "r" / "last.pth", weights_only=True)["model"]

    seed_everything(107)
    model = resnet18()
    model.fc = nn.Linear(512, 4)
    rt = runtime.decide(torch.device("cpu"))
    model.to(memory_format=rt.memory_format)
    fc = list(model.fc.parameters())
    base = [p for n, p in model.named_parameters() if not n.startswith("fc.")]
    optimizer = torch.optim.Adam([{"params": base, "lr": 1e-4}, {"params": fc, "lr": 1e-3}])
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.1)
    published = T.Compose([T.Resize((37, 37)), T.RandomCrop(32), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    dataset = ImageList(tiny_split.samples["train"], published)
    for epoch in range(2):
        seed_everything(derive_seed(107, epoch))
        order = torch.Generator().manual_seed(derive_seed(107, "pil", epoch))
        model.train()
        for images, labels in DataLoader(dataset, batch_size=8, shuffle=True, generator=order):
            with rt.ctx:
                loss = nn.functional.cross_entropy(model(images.contiguous(memory_format=rt.memory_format)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    torch.set_num_threads(threads)
    reference = model.state_dict()
    assert ours.keys() == reference.keys()
    assert all(torch.equal(ours[k], reference[k]) for k in ours)


def test_ema_is_the_average_that_validation_tests_and_checkpoints_see(tiny_split, tmp_path, monkeypatch):
    """--ema D: after every optimizer step the average becomes D x average + (1 - D) x weights, from the first
    step's weights; validation scores it, best.pth and last.pth keep it (last.pth also the trained weights)."""
    trained = []  # the parameters after every optimizer step, in the model's order (tiny_cnn: its head last)
    real = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        trained.append([p.detach().clone() for group in self.param_groups for p in group["params"]])
        return result
    monkeypatch.setattr(torch.optim.Adam, "step", step)
    train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 2, "--ema", 0.5, "--run-name", "e"))
    average = trained[0]
    for weights in trained[1:]:
        average = [0.5 * a + 0.5 * w for a, w in zip(average, weights, strict=True)]
    last = torch.load(tmp_path / "ckpt" / "e" / "last.pth", weights_only=True)
    names = [n for n, _ in fit.build_model(4, pretrained=False, name=TEST_MODEL).named_parameters()]
    assert len(trained) == last["ema_steps"] == 6  # 20 training images in batches of 8, 2 epochs
    assert all(torch.allclose(last["model"][n], a, atol=1e-6) for n, a in zip(names, average, strict=True))
    assert all(torch.equal(last["train_weights"][n], w) for n, w in zip(names, trained[-1], strict=True))
    assert not torch.equal(last["model"]["fc.weight"], last["train_weights"]["fc.weight"])
    # the validation accuracy of each checkpoint is the average's: evaluate.py scores its `model` on val alike
    for name in ("last.pth", "best.pth"):
        ckpt = torch.load(tmp_path / "ckpt" / "e" / name, weights_only=True)
        scored = evaluate.main(evaluate.get_args_parser().parse_args(
            ["--ckpt", str(tmp_path / "ckpt" / "e" / name), "--split", "val", "--device", "cpu"]))
        assert scored["val_acc"] == ckpt["val_acc"], name
    train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "p"))
    assert "train_weights" not in torch.load(tmp_path / "ckpt" / "p" / "last.pth", weights_only=True)  # off


@pytest.mark.parametrize("kind", ["cached", "pil"])
def test_eval_image_size_resizes_validation_test_evaluate_and_predict_not_training(tiny_split, tmp_path, monkeypatch,
                                                                                   kind):
    seen = []  # (split, image side) of the first batch of every pass
    for owner, name in ((engine, "train_one_epoch"), (engine, "evaluate")):
        real = getattr(owner, name)

        def wrapper(model, loader, *args, real=real, name=name, **kwargs):
            seen.append((kwargs.get("desc", "").split()[-1], next(iter(loader))[0].shape[-1]))
            return real(model, loader, *args, **kwargs)
        monkeypatch.setattr(owner, name, wrapper)
    metrics = train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--loader", kind,
                                    "--eval-image-size", 40, "--run-name", "e"))
    assert seen == [("train", 32), ("val", 40), ("test", 40)]
    best = str(tmp_path / "ckpt" / "e" / "best.pth")
    seen.clear()
    assert evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", best, "--device", "cpu"]))["test_acc"] \
        == metrics["test_acc"]
    assert seen == [("test", 40)]
    sides, preset = [], predict.eval_preset
    monkeypatch.setattr(predict, "eval_preset", lambda side, *a, **k: (sides.append(side), preset(side, *a, **k))[1])
    rows = predict.main(predict.get_args_parser().parse_args([str(tiny_split.root / "test"), "--ckpt", best,
                                                              "--device", "cpu", "--workers", 0]))
    top1 = sum(row["top"][0][0] == Path(row["path"]).parent.name for row in rows) / len(rows)
    assert sides == [40] and top1 == pytest.approx(metrics["test_acc"])  # predict.py resizes to 40 too
    run_name = setup.default_run_name(train_args(tmp_path, tiny_split.root, "--eval-image-size", 40))
    assert "_eval40_" in run_name


def test_evaluate_resizes_to_another_eval_image_size_when_asked(tiny_split, tmp_path, monkeypatch):
    train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "s"))
    best = str(tmp_path / "ckpt" / "s" / "best.pth")
    sides = []
    real = engine.evaluate
    monkeypatch.setattr(engine, "evaluate", lambda model, loader, *a, **k: (
        sides.append(next(iter(loader))[0].shape[-1]), real(model, loader, *a, **k))[1])
    for extra in ([], ["--eval-image-size", "48"]):
        evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", best, "--split", "val", *extra]))
    assert sides == [32, 48]
    with pytest.raises(UserError, match="--eval-image-size 16 is too small for tiny_cnn"):
        evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", best, "--eval-image-size", "16"]))


def test_eval_image_size_is_checked_against_the_model(tiny_split, tmp_path):
    with pytest.raises(UserError, match="--eval-image-size 16 is too small for tiny_cnn: it takes at least 32"):
        train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--eval-image-size", 16))
    with pytest.raises(UserError, match="--eval-image-size: vit_b_16 takes only the size it is built for"):
        train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--model", "vit_b_16", "--eval-image-size", 48))


def test_dropout_sits_before_the_new_head_trains_and_is_rebuilt_by_evaluate(tiny_split, tmp_path):
    model = fit.build_model(4, pretrained=False, name=TEST_MODEL, dropout=0.3)
    assert isinstance(model.fc, nn.Sequential) and model.fc[0].p == 0.3 and model.fc[1].out_features == 4
    assert fit.param_groups(model, 1e-3, 1e-4)[1]["params"] == list(model.fc[1].parameters())  # the head's rate
    plain = fit.build_model(4, pretrained=False, name=TEST_MODEL)
    assert isinstance(plain.fc, nn.Linear)  # --dropout 0: the published head
    images = torch.randn(6, 3, 32, 32)
    model.eval()
    assert torch.equal(model(images), model(images))  # evaluation drops nothing
    model.train()
    torch.manual_seed(0)
    assert not torch.equal(model.fc(torch.ones(6, 64)), model.fc(torch.ones(6, 64)))  # training does
    metrics = train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--dropout", 0.5,
                                    "--run-name", "d"))
    best = str(tmp_path / "ckpt" / "d" / "best.pth")
    assert "fc.1.weight" in torch.load(best, weights_only=True)["model"]
    assert evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", best, "--device", "cpu"]))["test_acc"] \
        == metrics["test_acc"]


def test_cosine_loss_is_one_minus_the_cosine_to_the_smoothed_target_and_is_what_the_run_reports(
        tiny_split, tmp_path, monkeypatch):
    loss = CosineLoss()
    target = torch.tensor([0, 2])
    assert loss(torch.tensor([[3.0, 0, 0], [0, 0, 0.5]]), target) == pytest.approx(0.0)  # along its class
    assert loss(torch.tensor([[0.0, 1, 0], [1, 0, 0]]), target) == pytest.approx(1.0)  # orthogonal to it
    output = torch.tensor([[1.0, 2, 3]])
    smoothed = torch.tensor([[0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3]])
    assert CosineLoss(0.1)(output, torch.tensor([0])) == pytest.approx(
        1 - torch.nn.functional.cosine_similarity(output, smoothed).item())
    assert loss(output, torch.tensor([[0.5, 0.5, 0.0]])) == pytest.approx(  # MixUp's soft targets as they are
        1 - torch.nn.functional.cosine_similarity(output, torch.tensor([[0.5, 0.5, 0.0]])).item())
    trains = spy(monkeypatch, engine, "train_one_epoch")
    metrics = train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--loss", "cosine",
                                    "--label-smoothing", 0.1, "--run-name", "c"))
    criterion = trains[0][0][2]
    assert isinstance(criterion, CosineLoss) and criterion.label_smoothing == 0.1
    assert 0 <= metrics["test_loss"] <= 2 and "_loss-cosine_" not in metrics["run"]  # a given name is kept
    scalars = read_scalars(tmp_path / "runs" / "c")
    assert all(0 <= v <= 2 for _, v in scalars["Loss/val"])  # validation reports the cosine loss
