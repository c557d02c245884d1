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
import math
import shlex
import time
from datetime import datetime
from pathlib import Path

import torch
from torch import nn

from caltech import cache, checkpoint, engine, runtime
from caltech.datasets import build_loader
from caltech.model import DEFAULT_MODEL, build_model, param_groups, preprocessing, resolve_weights
from caltech.optim import OPTIMIZERS, SCHEDULES, build_optimizer, build_scheduler, is_prefix
from caltech.outputs import RunOutput, Tester, patience_ran_out
from caltech.split import DEFAULT_SPLIT, ensure_split
from caltech.transforms import AUTO_AUGMENT, CROPS
from caltech.utils import (
    Interrupted,
    UserError,
    default_workers,
    derive_seed,
    run_cli,
    seed_everything,
)

DEFAULT_DATA = DEFAULT_SPLIT
# Settings that decide what a run computes: a resumed run keeps them, TensorBoard's HParams shows them
# (paths and runtime settings stay in hparams.json only).
OPTIONS = ("train_crop", "min_scale", "auto_augment", "label_smoothing", "optimizer", "weight_decay", "momentum",
           "schedule", "warmup_epochs", "mixup", "cutmix", "tta", "patience")
RECIPE = ("epochs", "lr_fc", "lr_base", "seed", "scratch", "model", "weights_name", "batch_size", "step_size", "gamma",
          "image_size", "loader", *OPTIONS)
HPARAMS = (*RECIPE, "num_classes")  # what TensorBoard's HParams shows of a run
MIN_IMAGE_SIZE = 32  # the output stride of torchvision's CNNs: a smaller input leaves nothing to classify


class Switches(argparse.Action):
    """grid_search.py's form of an on/off recipe flag: `--tta` is [True], `--tta off on` one run with each."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [v == "on" for v in values] or [True])


def recipe_adder(group, several):
    """`group.add_argument` for a recipe setting: one value for train.py; with `several` (grid_search.py)
    one or more values, of which the grid runs the Cartesian product. Help and defaults are the same."""
    if not several:
        return group.add_argument

    def add(*flags, default=None, action=None, **kwargs):
        if action == "store_true":
            return group.add_argument(*flags, nargs="*", choices=("on", "off"), action=Switches, default=[False],
                                      metavar="on|off", **kwargs)
        return group.add_argument(*flags, nargs="+", default=[default], **kwargs)
    return add


def add_data_args(parser, several=False):
    group = parser.add_argument_group("data")
    recipe = recipe_adder(group, several)
    group.add_argument("--data", default=DEFAULT_DATA,
                       help=f"split folder made by split_dataset.py; built on first use when it is the "
                            f"default or --source is given (default: {DEFAULT_DATA})")
    group.add_argument("--source", default=None,
                       help="101_ObjectCategories folder, caltech-101.zip or 101_ObjectCategories.tar.gz to "
                            "build a missing split from (default: look in data/, else download)")
    recipe("--loader", choices=("cached", "pil"), default="cached",
           help="cached: resize once into a uint8 cache, augment whole batches on the device; "
                "pil: per-image PIL transforms in loader workers, no cache (default: cached)")
    group.add_argument("--cache-dir", default=None,
                       help="where the cached loader keeps its resized images (default: cache/ beside --data)")
    recipe("--image-size", type=int, default=None,
           help=f"crop / eval side, at least {MIN_IMAGE_SIZE} (more for a few models); the train resize scales "
                "with it, 256 at 224 (default: the weights' eval size, 224 for resnet18)")


def add_recipe_args(parser, several=False):
    """The recipe settings: one value each for train.py, one or more for grid_search.py (`several`)."""
    group = parser.add_argument_group("model and optimisation")
    recipe = recipe_adder(group, several)
    recipe("--model", default=DEFAULT_MODEL,
           help="any classification model of torchvision's registry (resnet50, efficientnet_b0, "
                "convnext_tiny, vit_b_16, ...); its ImageNet classifier is replaced by a new head "
                f"(default: {DEFAULT_MODEL})")
    recipe("--weights-name", default=None,
           help="which of the model's torchvision weights, e.g. IMAGENET1K_V2; they also set the "
                "normalisation and the default --image-size (default: the model's DEFAULT, "
                "IMAGENET1K_V1 for resnet18)")
    recipe("--scratch", action="store_true",
           help="random initialisation instead of ImageNet weights (default: off)")
    group.add_argument("--weights", default=None,
                       help="local torchvision ImageNet state dict of --model (default: torchvision's cache, "
                            "$TORCH_HOME/hub/checkpoints, downloading when possible)")
    recipe("--batch-size", type=int, default=32, help="training batch size (default: 32)")
    recipe("--step-size", type=int, default=10, help="StepLR period in epochs (default: 10)")
    recipe("--gamma", type=float, default=0.1, help="StepLR factor (default: 0.1)")
    group = parser.add_argument_group("recipe options (off by default: the published recipe)")
    recipe = recipe_adder(group, several)
    recipe("--train-crop", choices=CROPS, default="random",
           help="random: random crop of the 256x256 resize (published); resized: torchvision's "
                "RandomResizedCrop of it, scale (--min-scale, 1), ratio (3/4, 4/3) (default: random)")
    recipe("--min-scale", type=float, default=0.08,
           help="smallest crop area, as a fraction of the image, for --train-crop resized (default: 0.08)")
    recipe("--auto-augment", choices=AUTO_AUGMENT, default="none",
           help="torchvision's TrivialAugmentWide or RandAugment after crop and flip (default: none)")
    recipe("--label-smoothing", type=float, default=0.0,
           help="label smoothing of the training loss (default: 0)")
    recipe("--optimizer", choices=OPTIMIZERS, default="adam",
           help="adam (published), adamw, or sgd with Nesterov momentum; all keep the fc/base "
                "learning rates (default: adam)")
    recipe("--weight-decay", type=float, default=0.0,
           help="weight decay of every parameter; decoupled for adamw (default: 0)")
    recipe("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    recipe("--schedule", choices=SCHEDULES, default="step",
           help="step: StepLR --step-size/--gamma (published); cosine: cosine annealing to 0 at "
                "the last epoch (default: step)")
    recipe("--warmup-epochs", type=int, default=0,
           help="linear warm-up epochs before the schedule, from 1/(N+1) of each rate (default: 0)")
    recipe("--mixup", type=float, default=0.0,
           help="MixUp alpha (torchvision.transforms.v2.MixUp); 0 = off (default: 0)")
    recipe("--cutmix", type=float, default=0.0,
           help="CutMix alpha (torchvision.transforms.v2.CutMix); with --mixup too, one of the two "
                "per batch; 0 = off (default: 0)")
    recipe("--tta", action="store_true",
           help="validate and test on the mean prediction of each image and its mirror (default: off)")
    recipe("--patience", type=int, default=0,
           help="stop when validation accuracy has not improved for N epochs; best.pth is still "
                "tested (default: 0, off)")


def add_runtime_args(parser, workers=True):
    """Speed and placement flags; bench.py shares them (without --workers: its baseline has none)."""
    group = parser.add_argument_group("runtime (speed and placement, not the recipe)")
    group.add_argument("--device", default=None,
                       help="cuda, cuda:1, mps or cpu (default: CUDA, else MPS, else CPU)")
    if workers:
        group.add_argument("--workers", type=int, default=default_workers(),
                           help=f"loader processes for --loader pil (default: CPU count - 1, here {default_workers()})")
    group.add_argument("--threads", type=int, default=None,
                       help="torch CPU threads (default: torch's choice, usually one per core)")
    group.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                       help="mixed precision. CUDA: bf16 autocast, or fp16 with loss scaling where bf16 is "
                            "unsupported. A CPU with native bf16 (AMX or AVX512-BF16): bf16 autocast, 2.5x fp32's "
                            "training speed for ResNet-18 on a 2-core Xeon (docs/BENCHMARKS.md). Any other CPU, "
                            "and MPS: no effect, fp32 (emulated bf16 is slower). evaluate.py and predict.py use "
                            "the run's setting (default: on)")
    group.add_argument("--compile", action="store_true", help="torch.compile the model (default: off)")
    group.add_argument("--eval-batch-size", type=int, default=None,
                       help="batch size for validation and test (default: 256 on CUDA, else --batch-size)")


def add_output_args(parser):
    group = parser.add_argument_group("outputs")
    group.add_argument("--logdir", default=checkpoint.LOGDIR,
                       help=f"TensorBoard root; one folder per run (default: {checkpoint.LOGDIR})")
    group.add_argument("--ckpt-dir", default=checkpoint.CKPT_DIR,
                       help=f"checkpoint root; one folder per run (default: {checkpoint.CKPT_DIR})")


def get_args_parser(add_help=True):
    parser = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_args(parser)
    group = parser.add_argument_group("this run's hyperparameters")
    group.add_argument("--epochs", type=int, default=30, help="training epochs (default: 30)")
    group.add_argument("--lr-fc", type=float, default=1e-3,
                       help="learning rate of the new head, ResNet's fc, for every --optimizer (default: 1e-3)")
    group.add_argument("--lr-base", type=float, default=1e-4,
                       help="learning rate of every other layer; 0 freezes them (default: 1e-4)")
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


def default_settings():
    """train.py's defaults, flag name -> value: the published recipe."""
    return vars(get_args_parser().parse_args([]))


def recipe_tag(args):
    """The non-default recipe options of `args` (TAGS) as a name part, e.g. 'adamw_wd0.05' ('' for the
    published recipe); options that do nothing in this recipe (SGD momentum for Adam, ...) are left out.
    Image size, batch size and the StepLR settings are not tagged: a grid's run names end in a digest of the
    full recipe instead (caltech.grid.Trial.run_name)."""
    defaults = default_settings()
    untagged = unused_settings(args)
    if args.weights_name is None or args.weights_name == resolve_weights(args.model).name:
        untagged.add("weights_name")
    return "_".join(TAGS[k].format(getattr(args, k)) for k in TAGS
                    if getattr(args, k) != defaults[k] and k not in untagged)


# setting -> when it changes nothing in a recipe: a grid runs its values there once, not once each
UNUSED_WHEN = {"min_scale": lambda args: args.train_crop != "resized", "momentum": lambda args: args.optimizer != "sgd",
               "step_size": lambda args: args.schedule != "step", "gamma": lambda args: args.schedule != "step"}


def unused_settings(args):
    """The recipe settings that change nothing in `args`' recipe (UNUSED_WHEN)."""
    return {key for key, unused in UNUSED_WHEN.items() if unused(args)}


def default_run_name(args):
    mode = "scratch" if args.scratch else "finetune"
    tag = recipe_tag(args)
    return (f"{mode}_ep{args.epochs}_fc{args.lr_fc}_base{args.lr_base}_s{args.seed}_{tag + '_' if tag else ''}"
            f"{datetime.now().strftime('%m%d_%H%M%S')}")


def restore_recipe(args, saved):
    """On --resume, take the run's saved recipe; refuse a flag whose value is neither the run's nor the default
    (a flag given at its default cannot be told from one not given, so it is taken as not given)."""
    defaults = default_settings()
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


def finite(low, high=math.inf, low_open=False, high_open=True):
    """A range test for a number that also refuses NaN and infinities."""
    return lambda v: math.isfinite(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)


# setting -> (test, what a valid value is): every number a user can type into train.py or grid_search.py
LIMITS = {
    "epochs": (lambda v: v >= 1, "at least 1"),
    "lr_fc": (finite(0, low_open=True), "a positive number"),
    "lr_base": (finite(0), "a positive number, or 0 to freeze every layer but the head"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "step_size": (lambda v: v >= 1, "at least 1 epoch"),
    "gamma": (finite(0, 1, low_open=True, high_open=False), "in (0, 1]"),
    "min_scale": (finite(0, 1, low_open=True, high_open=False), "in (0, 1]"),
    "label_smoothing": (finite(0, 1), "in [0, 1)"),
    "weight_decay": (finite(0), "0 or more"),
    "momentum": (finite(0, 1), "in [0, 1)"),
    "mixup": (finite(0), "0 (off) or a positive alpha"),
    "cutmix": (finite(0), "0 (off) or a positive alpha"),
    "patience": (lambda v: v >= 0, "0 (off) or a number of epochs"),
    "workers": (lambda v: v >= 0, "0 or more"),
    "threads": (lambda v: v is None or v >= 1, "at least 1"),
    "eval_batch_size": (lambda v: v is None or v >= 1, "at least 1"),
}


def flag(key):
    return "--" + key.replace("_", "-")


def check_value(key, value):
    """One setting against LIMITS: a UserError naming the flag and what it takes."""
    ok, valid = LIMITS[key]
    if not ok(value):
        raise UserError(f"{flag(key)} {value} is out of range: it must be {valid}")


def check_args(args):
    """Refuse every bad value, path and combination before any work, one sentence naming the flag."""
    if args.resume and not args.run_name:
        raise UserError("--resume needs --run-name (the folder name of the run to continue)")
    if args.run_name is not None and (not args.run_name or Path(args.run_name).name != args.run_name
                                      or args.run_name in (".", "..")):
        raise UserError(f"--run-name {args.run_name!r} must be a plain folder name, without /")
    for key in LIMITS:
        if hasattr(args, key):
            check_value(key, getattr(args, key))
    if not 0 <= args.warmup_epochs < args.epochs:
        raise UserError(f"--warmup-epochs {args.warmup_epochs} is out of range: it must be between 0 and "
                        f"--epochs - 1 ({args.epochs - 1})")
    if args.image_size is not None:
        smallest = min_image_size(args.model, args.weights_name)
        if args.image_size < smallest:
            raise UserError(f"--image-size {args.image_size} is too small for {args.model}: it takes at least "
                            f"{smallest} pixels")
    for key in ("logdir", "ckpt_dir", "cache_dir"):
        if getattr(args, key, None) and Path(getattr(args, key)).exists() and not Path(getattr(args, key)).is_dir():
            raise UserError(f"{flag(key)} {getattr(args, key)} is a file, not a folder")
    if not args.scratch and args.weights and not Path(args.weights).expanduser().is_file():
        raise UserError(f"--weights {args.weights} does not exist")


def min_image_size(model, weights_name=None):
    """The smallest --image-size `model` takes: MIN_IMAGE_SIZE, or more where torchvision's weights say so
    (Inception: 75); ViTs are resized to any multiple of their patch (caltech.model.arch_kwargs)."""
    if model.startswith(("vit_", "maxvit_")):
        return MIN_IMAGE_SIZE
    return max(MIN_IMAGE_SIZE, *resolve_weights(model, weights_name).meta.get("min_size", (0, 0)))


def shares_prefix(args, epochs):
    """Whether an `epochs`-epoch run with `args`' recipe is exactly the first epochs of `args`' run: the
    seed of every epoch depends on (seed, epoch) only, so the learning rates decide (optim.is_prefix)."""
    return is_prefix(epochs, args.epochs, args.schedule, args.step_size, args.gamma, args.warmup_epochs)


def main(args, on_epoch=None, horizons=None, on_horizon=None):
    """Train one run; returns its final metrics. `on_epoch(stats)` is called after each epoch, its
    checkpoints handed to the saver (the Ray backend reports to Tune through it).

    `horizons` {epochs: run_name} are shorter runs of the same recipe that this one trains on the way
    (see `shares_prefix`): each is saved, tested and handed to `on_horizon(metrics)` when its last
    epoch ends, exactly as if it had been trained on its own.
    """
    args = copy.copy(args)  # resolved below; the caller's namespace (a grid's) stays as it was
    check_args(args)
    for epochs in horizons or {}:
        if not shares_prefix(args, epochs):
            raise UserError(f"a {epochs}-epoch run is not the first epochs of this {args.epochs}-epoch one "
                            f"(its learning rates would differ); train it on its own")
    resume = None
    if args.resume:
        last = checkpoint.run_paths(args.run_name, args.ckpt_dir, args.logdir).last
        if not last.is_file():
            raise UserError(f"--resume: run {args.run_name} has no {last} to continue from; start it without --resume")
        resume = checkpoint.load(last)
        restore_recipe(args, resume["hparams"])
    resolve_model(args)  # after restore_recipe: a resumed run keeps its model
    args.run_name = args.run_name or default_run_name(args)
    again = resume_command(args)  # before the runtime flags are resolved: the command as the user would type it
    paths = checkpoint.run_paths(args.run_name, args.ckpt_dir, args.logdir)
    if resume is None and paths.last.exists():
        raise UserError(f"run {args.run_name} already exists in {args.ckpt_dir}; pass --resume to continue it "
                        "or choose another --run-name")

    rt = runtime.decide(args.device, args.amp, args.batch_size, args.eval_batch_size, args.threads)
    split = ensure_split(args.data, DEFAULT_DATA, args.source)
    check_classes(split, args.data)
    if resume is not None and (resume["classes"] != split.classes
                               or resume["hparams"].get("split_sha256", split.sha256) != split.sha256):
        raise UserError(f"the split {args.data} differs from the one run {args.run_name} was trained on")
    args.device, args.eval_batch_size = str(rt.device), rt.eval_batch_size
    args.cache_dir = args.cache_dir or cache.default_dir(args.data)
    args.precision, args.split_sha256 = rt.dtype, split.sha256  # for the record: rows and metrics.json carry them
    hparams = {**vars(args), "num_classes": len(split.classes)}
    hparams.pop("resume")

    seed_everything(args.seed)
    model = build_model(len(split.classes), pretrained=not args.scratch, weights=args.weights, name=args.model,
                        weights_name=args.weights_name, image_size=args.image_size, load_weights=resume is None)
    model.to(rt.device, memory_format=rt.memory_format)
    optimizer = build_optimizer(param_groups(model, args.lr_fc, args.lr_base), args.optimizer, args.weight_decay,
                                args.momentum)
    scheduler = build_scheduler(optimizer, args.schedule, args.epochs, args.step_size, args.gamma, args.warmup_epochs)
    state = {"epoch": 0, "best_val_acc": -1.0, "best_epoch": -1, "history": [], "train_seconds": 0.0}
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        rt.scaler.load_state_dict(resume["scaler"])
        state = {k: resume[k] for k in state}
    net = torch.compile(model) if args.compile else model
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)  # training only: val/test loss is plain
    mix = engine.batch_mixer(args.mixup, args.cutmix, len(split.classes))

    train_loader = build_loader(split, "train", args, rt)
    val_loader = build_loader(split, "val", args, rt)
    print(f"run {args.run_name}: {args.model} {'from scratch' if args.scratch else 'fine-tuned'}, "
          f"{args.image_size} px, {len(split.classes)} classes, "
          f"{len(split.samples['train'])}/{len(split.samples['val'])}/{len(split.samples['test'])} "
          f"train/val/test images, {rt.device} {rt.dtype}, {args.loader} loader"
          + (f", resuming after epoch {state['epoch']}" if resume is not None else "")
          + (f"; also the runs of its first {', '.join(map(str, sorted(horizons)))} epochs" if horizons else ""))
    for epochs, name in sorted((horizons or {}).items()):
        if epochs <= state["epoch"]:  # grid_search.plan_groups never asks for one: it would resume on its own
            raise UserError(f"run {name} ends at epoch {epochs}, which run {args.run_name} has already passed")
    # the shorter runs first, this one last: each ends, is tested and closed in the order of its epochs
    outputs = [RunOutput(shorter_run(args, epochs, name), hparams, HPARAMS, on_finish=on_horizon)
               for epochs, name in sorted((horizons or {}).items())]
    outputs.append(RunOutput(args, hparams, HPARAMS, carrier=True))
    saver = checkpoint.BackgroundSaver()
    saved = state["epoch"]  # epochs whose last.pth is written (or queued): what a Ctrl-C keeps
    interrupted = metrics = None
    meta = {"classes": split.classes}
    tester = Tester(net, model, lambda run_args: build_loader(split, "test", run_args, rt), len(split.classes), rt)
    active = []
    try:
        for out in outputs:
            out.open(state, paths.best)
            active.append(out)

        for epoch in range(state["epoch"], args.epochs):
            if patience_ran_out(state, args.patience):  # checked first: a resumed run that had stopped stays stopped
                break
            start = time.perf_counter()
            seed_everything(derive_seed(args.seed, epoch))  # each epoch's randomness depends only on (seed, epoch)
            train_loader.set_epoch(epoch)
            lrs = {f"lr_{g['name']}": g["lr"] for g in optimizer.param_groups}
            desc = f"epoch {epoch + 1}/{args.epochs}"
            train = engine.train_one_epoch(net, train_loader, criterion, optimizer, rt, len(split.classes),
                                           desc=f"{desc} train", mix=mix)
            val = engine.evaluate(net, val_loader, nn.CrossEntropyLoss(), rt, len(split.classes), desc=f"{desc} val",
                                  tta=args.tta).summary()
            scheduler.step()
            stats = {"epoch": epoch, **{f"train_{k}": v for k, v in train.items()},
                     **{f"val_{k}": v for k, v in val.items()}, **lrs}
            state["epoch"] = epoch + 1
            state["history"].append(stats)
            state["train_seconds"] += time.perf_counter() - start
            is_best = val["acc"] > state["best_val_acc"]  # ties keep the earlier epoch
            if is_best:
                state["best_val_acc"], state["best_epoch"] = val["acc"], epoch
            best = {"model": model.state_dict(), "epoch": epoch + 1, "val_acc": val["acc"]} if is_best else None
            last = {**state, "model": model.state_dict(), "val_acc": val["acc"], "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "scaler": rt.scaler.state_dict()}
            stopping = patience_ran_out(state, args.patience)
            ending = [out for out in active if out.epochs == state["epoch"] or stopping]
            for out in active:
                out.log_epoch(epoch, stats)  # flushed before this epoch's checkpoints are written
                out.save(saver, meta, best, last, ends=out in ending)
            saved = state["epoch"]
            print(epoch_line(desc, train, val, lrs, time.perf_counter() - start, is_best))
            if on_epoch is not None:
                on_epoch(stats)
            if stopping:
                print(f"early stop after {state['epoch']} of {args.epochs} epochs: no better validation accuracy "
                      f"since epoch {state['best_epoch'] + 1} (--patience {args.patience})")
            for out in ending:
                metrics = out.finish(saver, tester, state)
                active.remove(out)
        for out in list(active):  # a resumed run that had finished its epochs, or had stopped early
            metrics = out.finish(saver, tester, state)
            active.remove(out)
    except KeyboardInterrupt as e:
        interrupted = e
    finally:
        try:
            saver.close()  # a Ctrl-C still leaves the last finished epoch's checkpoints on disk
        finally:
            for out in outputs:
                out.discard() if saved == 0 else out.close()  # nothing finished: no empty run folder is left
    if interrupted is not None:
        raise Interrupted(interruption(args, state, saved), resume=again if saved else None) from interrupted
    return metrics


def shorter_run(args, epochs, run_name):
    """`args` of the run of the same recipe that ends after `epochs`, named `run_name`."""
    shorter = copy.copy(args)
    shorter.epochs, shorter.run_name = epochs, run_name
    return shorter


def interruption(args, state, saved):
    """What a Ctrl-C during run `args.run_name` kept, and the command that goes on from there."""
    where = f"run {args.run_name} was interrupted in epoch {state['epoch'] + 1} of {args.epochs}"
    if saved == args.epochs or patience_ran_out(state, args.patience):
        where = f"run {args.run_name} was interrupted after its last epoch, before its test evaluation finished"
    if saved == 0:
        return f"{where} before any epoch finished: nothing was saved and its folders were removed"
    best = f", best.pth from epoch {state['best_epoch'] + 1}" if state["best_epoch"] >= 0 else ""
    epochs = "its first epoch is" if saved == 1 else f"its first {saved} epochs are"
    kept = (f"{epochs} saved in {Path(args.ckpt_dir) / args.run_name} (last.pth{best}) "
            f"and logged in {Path(args.logdir) / args.run_name}")
    return f"{where}; {kept}"


def resume_command(args):
    """`python train.py --run-name NAME --resume` with the paths and runtime flags this run was given, as given
    (its recipe comes from last.pth)."""
    defaults = default_settings()
    words = ["python", "train.py", "--run-name", args.run_name, "--resume"]
    for key in ("logdir", "ckpt_dir", "cache_dir", "device", "workers", "threads", "eval_batch_size"):
        if getattr(args, key) != defaults[key]:
            words += [flag(key), str(getattr(args, key))]
    words += ["--no-amp"] * (not args.amp) + ["--compile"] * args.compile
    return shlex.join(words)


def check_classes(split, data):
    if len(split.classes) < 2:
        raise UserError(f"--data {data} has {len(split.classes)} class; a classifier needs at least 2 (make the "
                        "split from a folder with two or more class folders)")


def epoch_line(desc, train, val, lrs, seconds, is_best):
    return (f"{desc}  train loss {train['loss']:.4f} acc {train['acc']:.4f}  val loss {val['loss']:.4f} "
            f"acc {val['acc']:.4f} mean-class {val['mean_class_acc']:.4f}  lr {lrs['lr_base']:.0e}/{lrs['lr_fc']:.0e}  "
            f"{seconds:.0f}s" + ("  *best" if is_best else ""))


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
