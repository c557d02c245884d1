"""Fine-tune (default) or train from scratch (--scratch) a ResNet-18 on the Caltech-101 split.

    python train.py                           # published best configuration, ImageNet weights
    python train.py --scratch                 # the same recipe from random initialisation
    python train.py --model efficientnet_b0 --patience 5   # another torchvision backbone, early stopping
    python train.py --run-name NAME --resume  # continue an interrupted run exactly

Defaults are the published values (Adam, lr_fc 1e-3, lr_base 1e-4, StepLR 10 x0.1, batch 32,
30 epochs, seed 107). Writes TensorBoard scalars to LOGDIR/RUN, best.pth / last.pth / metrics.json
to CKPT_DIR/RUN, and finally evaluates the best-on-validation checkpoint on the test split.
"""
import argparse
import copy
import json
import resource
import time
from datetime import datetime
from pathlib import Path

import torch
from torch import nn

from caltech import checkpoint, engine
from caltech.datasets import build_loader
from caltech.model import DEFAULT_MODEL, build_model, param_groups, preprocessing, resolve_weights
from caltech.optim import OPTIMIZERS, SCHEDULES, build_optimizer, build_scheduler
from caltech.runlog import RunLogger
from caltech.split import ensure_split
from caltech.transforms import AUTO_AUGMENT, CROPS
from caltech.utils import (
    UserError,
    atomic_write_text,
    default_workers,
    derive_seed,
    run_cli,
    seed_everything,
    select_device,
)

DEFAULT_DATA = "data/caltech101_split"
# Settings that decide what a run computes: a resumed run keeps them, TensorBoard's HParams shows them
# (paths and runtime settings stay in hparams.json only).
OPTIONS = ("train_crop", "min_scale", "auto_augment", "label_smoothing", "optimizer", "weight_decay", "momentum",
           "schedule", "warmup_epochs", "mixup", "cutmix", "tta", "patience")
RECIPE = ("epochs", "lr_fc", "lr_base", "seed", "scratch", "model", "weights_name", "batch_size", "step_size", "gamma",
          "image_size", "loader", *OPTIONS)


def add_data_args(parser):
    group = parser.add_argument_group("data")
    group.add_argument("--data", default=DEFAULT_DATA,
                       help=f"split folder made by split_dataset.py; built on first use when it is the "
                            f"default or --source is given (default: {DEFAULT_DATA})")
    group.add_argument("--source", default=None,
                       help="101_ObjectCategories folder, caltech-101.zip or 101_ObjectCategories.tar.gz to "
                            "build a missing split from (default: look in data/, else download)")
    group.add_argument("--loader", choices=("cached", "pil"), default="cached",
                       help="cached: resize once into a uint8 cache, augment whole batches on the device; "
                            "pil: per-image PIL transforms in loader workers, no cache (default: cached)")
    group.add_argument("--cache-dir", default=None,
                       help="where the cached loader keeps its resized images (default: cache/ beside --data)")
    group.add_argument("--image-size", type=int, default=None,
                       help="crop / eval side; the train resize scales with it, 256 at 224 (default: the "
                            "weights' eval size, 224 for resnet18)")


def add_recipe_args(parser):
    """The recipe settings a grid shares between its runs."""
    group = parser.add_argument_group("model and optimisation")
    group.add_argument("--model", default=DEFAULT_MODEL,
                       help="any classification model of torchvision's registry (resnet50, efficientnet_b0, "
                            "convnext_tiny, vit_b_16, ...); its ImageNet classifier is replaced by a new head "
                            f"(default: {DEFAULT_MODEL})")
    group.add_argument("--weights-name", default=None,
                       help="which of the model's torchvision weights, e.g. IMAGENET1K_V2; they also set the "
                            "normalisation and the default --image-size (default: the model's DEFAULT, "
                            "IMAGENET1K_V1 for resnet18)")
    group.add_argument("--scratch", action="store_true",
                       help="random initialisation instead of ImageNet weights (default: off)")
    group.add_argument("--weights", default=None,
                       help="local torchvision ImageNet state dict of --model (default: torchvision's cache, "
                            "$TORCH_HOME/hub/checkpoints, downloading when possible)")
    group.add_argument("--batch-size", type=int, default=32, help="training batch size (default: 32)")
    group.add_argument("--step-size", type=int, default=10, help="StepLR period in epochs (default: 10)")
    group.add_argument("--gamma", type=float, default=0.1, help="StepLR factor (default: 0.1)")
    group = parser.add_argument_group("recipe options (off by default: the published recipe)")
    group.add_argument("--train-crop", choices=CROPS, default="random",
                       help="random: random crop of the 256x256 resize (published); resized: torchvision's "
                            "RandomResizedCrop of it, scale (--min-scale, 1), ratio (3/4, 4/3) (default: random)")
    group.add_argument("--min-scale", type=float, default=0.08,
                       help="smallest crop area, as a fraction of the image, for --train-crop resized (default: 0.08)")
    group.add_argument("--auto-augment", choices=AUTO_AUGMENT, default="none",
                       help="torchvision's TrivialAugmentWide or RandAugment after crop and flip (default: none)")
    group.add_argument("--label-smoothing", type=float, default=0.0,
                       help="label smoothing of the training loss (default: 0)")
    group.add_argument("--optimizer", choices=OPTIMIZERS, default="adam",
                       help="adam (published), adamw, or sgd with Nesterov momentum; all keep the fc/base "
                            "learning rates (default: adam)")
    group.add_argument("--weight-decay", type=float, default=0.0,
                       help="weight decay of every parameter; decoupled for adamw (default: 0)")
    group.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    group.add_argument("--schedule", choices=SCHEDULES, default="step",
                       help="step: StepLR --step-size/--gamma (published); cosine: cosine annealing to 0 at "
                            "the last epoch (default: step)")
    group.add_argument("--warmup-epochs", type=int, default=0,
                       help="linear warm-up epochs before the schedule, from 1/(N+1) of each rate (default: 0)")
    group.add_argument("--mixup", type=float, default=0.0,
                       help="MixUp alpha (torchvision.transforms.v2.MixUp); 0 = off (default: 0)")
    group.add_argument("--cutmix", type=float, default=0.0,
                       help="CutMix alpha (torchvision.transforms.v2.CutMix); with --mixup too, one of the two "
                            "per batch; 0 = off (default: 0)")
    group.add_argument("--tta", action="store_true",
                       help="validate and test on the mean prediction of each image and its mirror (default: off)")
    group.add_argument("--patience", type=int, default=0,
                       help="stop when validation accuracy has not improved for N epochs; best.pth is still "
                            "tested (default: 0, off)")


def add_runtime_args(parser):
    group = parser.add_argument_group("runtime (speed and placement, not the recipe)")
    group.add_argument("--device", default=None,
                       help="cuda, cuda:1, mps or cpu (default: CUDA, else MPS, else CPU)")
    group.add_argument("--workers", type=int, default=default_workers(),
                       help=f"loader processes for --loader pil (default: CPU count - 1, here {default_workers()})")
    group.add_argument("--threads", type=int, default=None,
                       help="torch CPU threads (default: torch's choice, usually one per core)")
    group.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                       help="mixed precision on CUDA: bf16, or fp16 with loss scaling (default: on)")
    group.add_argument("--compile", action="store_true", help="torch.compile the model (default: off)")
    group.add_argument("--eval-batch-size", type=int, default=None,
                       help="batch size for validation and test (default: 256 on CUDA, else --batch-size)")


def add_output_args(parser):
    group = parser.add_argument_group("outputs")
    group.add_argument("--logdir", default="runs", help="TensorBoard root; one folder per run (default: runs)")
    group.add_argument("--ckpt-dir", default="checkpoints",
                       help="checkpoint root; one folder per run (default: checkpoints)")


def get_args_parser(add_help=True):
    parser = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_args(parser)
    group = parser.add_argument_group("this run's hyperparameters")
    group.add_argument("--epochs", type=int, default=30, help="training epochs (default: 30)")
    group.add_argument("--lr-fc", type=float, default=1e-3,
                       help="Adam learning rate of the new head, ResNet's fc (default: 1e-3)")
    group.add_argument("--lr-base", type=float, default=1e-4,
                       help="Adam learning rate of every other layer (default: 1e-4)")
    group.add_argument("--seed", type=int, default=107,
                       help="seed of initialisation, shuffling and augmentation (default: 107)")
    add_recipe_args(parser)
    add_runtime_args(parser)
    add_output_args(parser)
    group = parser.add_argument_group("run name and resume")
    group.add_argument("--run-name", default=None,
                       help="folder name under --logdir and --ckpt-dir (default: mode, epochs, learning "
                            "rates, seed and a timestamp, e.g. finetune_ep30_fc0.001_base0.0001_s107_0527_165803)")
    group.add_argument("--resume", action="store_true",
                       help="continue --run-name from its last.pth, with its saved settings (default: off)")
    return parser


# option -> short name part of a run that differs from the published recipe there
TAGS = {"model": "{}", "weights_name": "{}", "train_crop": "crop-{}", "min_scale": "scale{}", "auto_augment": "{}",
        "label_smoothing": "ls{}", "optimizer": "{}", "weight_decay": "wd{}", "momentum": "mom{}", "schedule": "{}",
        "warmup_epochs": "warm{}", "mixup": "mixup{}", "cutmix": "cutmix{}", "tta": "tta", "patience": "pat{}"}


def recipe_tag(args):
    """The non-default recipe settings of `args` as a name part, e.g. 'px112_adamw_wd0.05' ('' for the
    published recipe); options that do nothing in this recipe (SGD momentum for Adam, ...) are left out."""
    defaults = vars(get_args_parser().parse_args([]))
    unused = {"min_scale": args.train_crop != "resized", "momentum": args.optimizer != "sgd",
              "weights_name": args.weights_name is None or args.weights_name == resolve_weights(args.model).name}
    return "_".join(TAGS[k].format(getattr(args, k)) for k in TAGS
                    if getattr(args, k) != defaults[k] and not unused.get(k))


def default_run_name(args):
    mode = "scratch" if args.scratch else "finetune"
    tag = recipe_tag(args)
    return (f"{mode}_ep{args.epochs}_fc{args.lr_fc}_base{args.lr_base}_s{args.seed}_{tag + '_' if tag else ''}"
            f"{datetime.now().strftime('%m%d_%H%M%S')}")


def restore_recipe(args, saved):
    """On --resume, take the run's saved recipe; refuse a flag given explicitly with another value."""
    defaults = vars(get_args_parser().parse_args([]))
    for key in RECIPE:
        value = saved.get(key, defaults[key])  # a run saved before an option existed ran without it
        if getattr(args, key) not in (value, defaults[key]):
            raise UserError(f"--{key.replace('_', '-')} {getattr(args, key)} differs from run {args.run_name}'s "
                            f"{value}; resume with the run's settings or start a new --run-name")
        setattr(args, key, value)
    args.weights = saved["weights"]  # for the record: the resumed weights come from last.pth
    if args.data == defaults["data"]:
        args.data = saved["data"]


def resolve_model(args):
    """What the model's weights decide, filled in: their name, the default image size, the normalisation."""
    side, args.mean, args.std = preprocessing(args.model, args.weights_name)  # UserError for an unknown name
    args.weights_name = resolve_weights(args.model, args.weights_name).name
    args.image_size = args.image_size or side


def patience_ran_out(state, patience):
    """Early stopping: no better validation accuracy in the last `patience` epochs (never with 0)."""
    return patience > 0 and state["epoch"] - 1 - state["best_epoch"] >= patience


def main(args, on_epoch=None):
    """Train one run; returns its final metrics. `on_epoch(stats)` is called after each epoch, its
    checkpoints handed to the saver (the Ray backend reports to Tune through it)."""
    args = copy.copy(args)  # resolved below; the caller's namespace (a grid's) stays as it was
    if args.resume and not args.run_name:
        raise UserError("--resume needs --run-name (the folder name of the run to continue)")
    if args.epochs < 1:
        raise UserError("--epochs must be at least 1")
    if not 0 < args.min_scale <= 1 or not 0 <= args.label_smoothing < 1 or min(args.mixup, args.cutmix) < 0:
        raise UserError("--min-scale must be in (0, 1], --label-smoothing in [0, 1), --mixup and --cutmix >= 0")
    if not 0 <= args.warmup_epochs < args.epochs:
        raise UserError(f"--warmup-epochs must be between 0 and --epochs - 1 ({args.epochs - 1})")
    if args.patience < 0:
        raise UserError("--patience must be 0 (off) or a number of epochs")
    device = select_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels

    resume = None
    if args.resume:
        resume = checkpoint.load(Path(args.ckpt_dir) / args.run_name / "last.pth")
        restore_recipe(args, resume["hparams"])
    resolve_model(args)  # after restore_recipe: a resumed run keeps its model
    args.run_name = args.run_name or default_run_name(args)
    run_ckpt_dir, run_logdir = Path(args.ckpt_dir) / args.run_name, Path(args.logdir) / args.run_name
    if resume is None and (run_ckpt_dir / "last.pth").exists():
        raise UserError(f"run {args.run_name} already exists in {args.ckpt_dir}; pass --resume to continue it "
                        "or choose another --run-name")

    split = ensure_split(args.data, DEFAULT_DATA, args.source)
    if resume is not None and resume["classes"] != split.classes:
        raise UserError(f"the classes of {args.data} differ from those run {args.run_name} was trained on")
    args.device = str(device)
    args.cache_dir = args.cache_dir or str(Path(args.data).parent / "cache")
    args.eval_batch_size = args.eval_batch_size or (256 if device.type == "cuda" else args.batch_size)
    hparams = {**vars(args), "num_classes": len(split.classes)}
    hparams.pop("resume")
    ctx, scaler, dtype = engine.precision(device, args.amp)

    seed_everything(args.seed)
    model = build_model(len(split.classes), scratch=args.scratch, weights=args.weights, name=args.model,
                        weights_name=args.weights_name, image_size=args.image_size, load_weights=resume is None)
    model.to(device, memory_format=torch.channels_last if device.type == "cuda" else torch.contiguous_format)
    optimizer = build_optimizer(param_groups(model, args.lr_fc, args.lr_base), args.optimizer, args.weight_decay,
                                args.momentum)
    scheduler = build_scheduler(optimizer, args.schedule, args.epochs, args.step_size, args.gamma, args.warmup_epochs)
    state = {"epoch": 0, "best_val_acc": -1.0, "best_epoch": -1, "history": [], "train_seconds": 0.0}
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        scaler.load_state_dict(resume["scaler"])
        state = {k: resume[k] for k in state}
    net = torch.compile(model) if args.compile else model
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)  # training only: val/test loss is plain
    mix = engine.batch_mixer(args.mixup, args.cutmix, len(split.classes))

    train_loader = build_loader(split, "train", args, device)
    val_loader = build_loader(split, "val", args, device)
    print(f"run {args.run_name}: {args.model} {'from scratch' if args.scratch else 'fine-tuned'}, "
          f"{args.image_size} px, {len(split.classes)} classes, "
          f"{len(split.samples['train'])}/{len(split.samples['val'])}/{len(split.samples['test'])} "
          f"train/val/test images, {device} {dtype}, {args.loader} loader"
          + (f", resuming after epoch {state['epoch']}" if resume is not None else ""))
    run_logdir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_logdir / "hparams.json", json.dumps(hparams, indent=2) + "\n")
    logger = RunLogger(run_logdir, resume_epoch=state["epoch"])
    saver = checkpoint.BackgroundSaver()
    meta = {"classes": split.classes, "hparams": hparams}
    try:
        for epoch in range(state["epoch"], args.epochs):
            if patience_ran_out(state, args.patience):  # checked first: a resumed run that had stopped stays stopped
                break
            start = time.perf_counter()
            seed_everything(derive_seed(args.seed, epoch))  # each epoch's randomness depends only on (seed, epoch)
            train_loader.set_epoch(epoch)
            lrs = {f"lr_{g['name']}": g["lr"] for g in optimizer.param_groups}
            desc = f"epoch {epoch + 1}/{args.epochs}"
            train = engine.train_one_epoch(net, train_loader, criterion, optimizer, scaler, ctx, len(split.classes),
                                           device, desc=f"{desc} train", mix=mix)
            val = engine.evaluate(net, val_loader, nn.CrossEntropyLoss(), ctx, len(split.classes), device,
                                  desc=f"{desc} val", tta=args.tta).summary()
            scheduler.step()
            stats = {"epoch": epoch, **{f"train_{k}": v for k, v in train.items()},
                     **{f"val_{k}": v for k, v in val.items()}, **lrs}
            logger.log_epoch(epoch, stats)  # flushed before this epoch's checkpoints are written
            state["epoch"] = epoch + 1
            state["history"].append(stats)
            state["train_seconds"] += time.perf_counter() - start
            is_best = val["acc"] > state["best_val_acc"]  # ties keep the earlier epoch
            if is_best:
                state["best_val_acc"], state["best_epoch"] = val["acc"], epoch
                saver.save({**meta, "model": model.state_dict(), "epoch": epoch + 1, "val_acc": val["acc"]},
                           run_ckpt_dir / "best.pth")
            saver.save({**meta, **state, "model": model.state_dict(), "val_acc": val["acc"],
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict()}, run_ckpt_dir / "last.pth")
            print(f"{desc}  train loss {train['loss']:.4f} acc {train['acc']:.4f}  val loss {val['loss']:.4f} "
                  f"acc {val['acc']:.4f} mean-class {val['mean_class_acc']:.4f}  lr {lrs['lr_base']:.0e}/"
                  f"{lrs['lr_fc']:.0e}  {time.perf_counter() - start:.0f}s" + ("  *best" if is_best else ""))
            if on_epoch is not None:
                on_epoch(stats)
        saver.wait()
        if state["epoch"] < args.epochs:
            print(f"early stop after {state['epoch']} of {args.epochs} epochs: no better validation accuracy "
                  f"since epoch {state['best_epoch'] + 1} (--patience {args.patience})")
        metrics = test_best(net, model, split, args, device, ctx, state, run_ckpt_dir)
        logger.log_hparams({k: hparams[k] for k in (*RECIPE, "num_classes")}, metrics, step=state["epoch"] - 1)
    finally:
        saver.close()  # a Ctrl-C still leaves the last finished epoch's checkpoints on disk
        logger.close()
    return metrics


def test_best(net, model, split, args, device, ctx, state, run_ckpt_dir):
    """Evaluate best.pth on the test split; write and return the run's final metrics."""
    model.load_state_dict(checkpoint.load(run_ckpt_dir / "best.pth")["model"])
    test = engine.evaluate(net, build_loader(split, "test", args, device), nn.CrossEntropyLoss(), ctx,
                           len(split.classes), device, desc="test", tta=args.tta).summary()
    metrics = {"run": args.run_name, "epochs": args.epochs, "epochs_run": state["epoch"],
               "stopped_early": state["epoch"] < args.epochs, "best_epoch": state["best_epoch"],
               "best_val_acc": state["best_val_acc"],
               "val_mean_class_acc": state["history"][state["best_epoch"]]["val_mean_class_acc"],
               "test_acc": test["acc"], "test_mean_class_acc": test["mean_class_acc"], "test_top5": test["top5"],
               "n_test": test["n"], "train_seconds": state["train_seconds"],
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # this process, so far
               "best_checkpoint": str(run_ckpt_dir / "best.pth")}
    atomic_write_text(run_ckpt_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    print(f"best epoch {state['best_epoch'] + 1} (val acc {state['best_val_acc']:.4f}); test: accuracy "
          f"{test['acc']:.4f}, mean per-class accuracy {test['mean_class_acc']:.4f}, top-5 {test['top5']:.4f} "
          f"on {test['n']} images")
    return metrics


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
