"""A run's settings made ready before any work: checked (one sentence naming the flag), resolved (what the
model's weights decide), restored on --resume, named, and the command that resumes it.

    check_args(args)       # every bad value, path and combination of train.py's flags: a UserError
    resolve_model(args)    # args.weights_name, args.image_size, args.mean, args.std filled in
    recipe_tag(args)       # 'adamw_wd0.05': the run-name part of what differs from the published recipe
"""
import copy
import shlex
from pathlib import Path

from .. import names, recipe
from ..cli import check_limits, flag
from ..data.cache import missing_bytes
from ..data.transforms import resize_sizes
from ..disk import check_folder, check_room
from ..layout import cache_dir
from ..utils import UserError
from .model import min_image_size, preprocessing, resolve_weights
from .optim import is_prefix

LOG_BYTES = 2**20  # a run's TensorBoard events and hparams.json: tens of KB, rounded up


def check_image_sizes(run, keys):
    """Refuse a size (the settings `keys` of `run`) that the run's model cannot take: train.py's and evaluate.py's
    --image-size / --eval-image-size."""
    smallest = min_image_size(run.model, run.weights_name)
    for key in keys:
        size = getattr(run, key)
        if size is not None and size < smallest:
            raise UserError(f"{flag(key)} {size} is too small for {run.model}: it takes at least {smallest} pixels")
    if "eval_image_size" in keys and run.eval_image_size is not None and run.model.startswith(("vit_", "maxvit_")) \
            and run.eval_image_size != run.image_size:
        raise UserError(f"--eval-image-size: {run.model} takes only the size it is built for, --image-size "
                        f"{run.image_size}")


def check_args(args):
    """Refuse every bad value, path and combination before any work, one sentence naming the flag."""
    if args.resume and not args.run_name:
        raise UserError("--resume needs --run-name (the folder name of the run to continue)")
    if args.run_name is not None and (not args.run_name or Path(args.run_name).name != args.run_name
                                      or args.run_name in (".", "..")):
        raise UserError(f"--run-name {args.run_name!r} must be a plain folder name, without /")
    check_limits(args)
    if not 0 <= args.warmup_epochs < args.epochs:
        raise UserError(f"--warmup-epochs {args.warmup_epochs} is out of range: it must be between 0 and "
                        f"--epochs - 1 ({args.epochs - 1})")
    check_image_sizes(args, ("image_size", "eval_image_size"))
    for key in ("logdir", "ckpt_dir", "cache_dir"):  # writable folders (or folders that can be made)
        if getattr(args, key, None):
            check_folder(flag(key), getattr(args, key))
    if not args.scratch and args.weights and not Path(args.weights).expanduser().is_file():
        raise UserError(f"--weights {args.weights} does not exist")


def resolve_model(args):
    """What the model's weights decide, filled in: their name, the default image size, the normalisation."""
    side, args.mean, args.std = preprocessing(args.model, args.weights_name)  # UserError for an unknown name
    weights = resolve_weights(args.model, args.weights_name)
    args.weights_name = weights.name if weights is not None else None
    args.image_size = args.image_size or side


def recipe_tag(args):
    """The recipe settings of `args` off their defaults as a run-name part (names.recipe_tag); the model's
    default weights are not tagged."""
    default = resolve_weights(args.model)
    untagged = {"weights_name"} if args.weights_name is None or default is None or \
        args.weights_name == default.name else set()
    return names.recipe_tag(vars(args), untagged)


def default_run_name(args):
    return names.run_name(args.scratch, args.epochs, args.lr_fc, args.lr_base, args.seed, recipe_tag(args))


def restore_recipe(args, saved):
    """On --resume, take the run's saved recipe; refuse a flag whose value is neither the run's nor the default
    (a flag given at its default cannot be told from one not given, so it is taken as not given)."""
    defaults, old = recipe.defaults(), recipe.old_values()
    for key in recipe.RECIPE:
        value = saved.get(key, old[key])  # a run saved before a setting existed ran with its old value
        if getattr(args, key) not in (value, defaults[key]):
            raise UserError(f"{flag(key)} {getattr(args, key)} differs from run {args.run_name}'s "
                            f"{value}; resume with the run's settings or start a new --run-name")
        setattr(args, key, value)
    args.weights = saved["weights"]  # for the record: the resumed weights come from last.pth
    if args.data == defaults["data"]:
        args.data = saved["data"]


def resume_command(args):
    """`python train.py --run-name NAME --resume` with the paths and runtime flags this run was given, as given
    (its recipe comes from last.pth)."""
    defaults = recipe.defaults()
    words = ["python", "train.py", "--run-name", args.run_name, "--resume"]
    for key in ("logdir", "ckpt_dir", "cache_dir", "device", "workers", "threads", "eval_batch_size"):
        if getattr(args, key) != defaults[key]:
            words += [flag(key), str(getattr(args, key))]
    words += ["--no-amp"] * (not args.amp) + ["--compile"] * args.compile
    return shlex.join(words)


def check_room_for(args, split, model, runs=1):
    """Refuse a run whose files will not fit: `runs` runs' best.pth and last.pth (the weights; last.pth also the
    optimizer's state and, with --ema, the trained weights), their logs, and the caches not built yet."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    moments = {"adam": 2, "adamw": 2, "sgd": 1 if args.momentum else 0}[args.optimizer]
    checkpoints = runs * weights * (2 + moments + (1 if args.ema else 0))
    needs = {"--ckpt-dir": (args.ckpt_dir, checkpoints), "--logdir": (args.logdir, runs * LOG_BYTES)}
    if args.loader == "cached":
        resize, _ = resize_sizes(args.image_size)
        side = args.eval_image_size or args.image_size
        needs["--cache-dir"] = (args.cache_dir or cache_dir(args.data),
                                missing_bytes(args.cache_dir, split, {"train": resize, "val": side, "test": side}))
    check_room(needs)


def check_classes(split, data):
    if len(split.classes) < 2:
        raise UserError(f"--data {data} has {len(split.classes)} class; a classifier needs at least 2 (make the "
                        "split from a folder with two or more class folders)")


def shares_prefix(args, epochs):
    """Whether an `epochs`-epoch run with `args`' recipe is exactly the first epochs of `args`' run: the
    seed of every epoch depends on (seed, epoch) only, so the learning rates decide (optim.is_prefix)."""
    return is_prefix(epochs, args.epochs, args.schedule, args.step_size, args.gamma, args.warmup_epochs)


def shorter_run(args, epochs, run_name):
    """`args` of the run of the same recipe that ends after `epochs`, named `run_name`."""
    shorter = copy.copy(args)
    shorter.epochs, shorter.run_name = epochs, run_name
    return shorter
