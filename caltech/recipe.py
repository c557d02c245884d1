"""The recipe, declared once: one entry per flag of train.py, the settings that decide what a run computes (its
recipe) and the data, runtime and output flags around them.

    SETTINGS["label_smoothing"].limit        # Range(0, 1, ...): what --label-smoothing accepts
    defaults()                               # {name: default}: the published recipe, train.py with no flags
    unused({"optimizer": "adam", ...})       # {"momentum", ...}: settings this recipe ignores

An entry holds the flag's type, default and help, its group in --help, its limits, its run-name tag and legend
words, the recipe in which it does something (`used_with`), the value assumed for runs recorded before it existed
(`before`), and whether a grid may list several values of it. train.py's and grid_search.py's parsers
(caltech.cli), the checks (caltech.training.setup), the row identity (caltech.grid.trials), resume, the run-name
tag, the settings of older checkpoints and the report's legends all read this table. A new setting is one entry
here plus the code that implements it.
"""
import math
from dataclasses import dataclass, field

from .layout import CKPT_DIR, DEFAULT_SPLIT, LOGDIR
from .utils import default_workers

SEED = 107  # the published seed: of the split and of every run
MIN_IMAGE_SIZE = 32  # the output stride of torchvision's CNNs: a smaller input leaves nothing to classify
DEFAULT = object()  # `before` left out: runs recorded before this setting existed ran with its default


@dataclass(frozen=True)
class Range:
    """The values a number may take, and how a refusal says it (`text`): [low, high) by default, NaN and the
    infinities always refused. None, a default worked out at run time, is never checked."""
    low: float = -math.inf
    high: float = math.inf
    text: str = ""
    low_open: bool = False
    high_open: bool = True

    def __contains__(self, value):
        return (math.isfinite(value) and (value > self.low if self.low_open else value >= self.low)
                and (value < self.high if self.high_open else value <= self.high))

    def outside(self, integer=False):
        """Values just outside the range, for the tests: below, above (where bounded), and NaN and infinity for
        a float."""
        step = 1 if integer else 0.5
        values = [] if self.low == -math.inf else [self.low if self.low_open else self.low - step]
        values += [] if self.high == math.inf else [self.high if self.high_open else self.high + step]
        return values + ([] if integer else [math.nan, math.inf, -math.inf])


# --help's groups, in their order; a table entry names its group by key
GROUPS = {
    "data": "data",
    "run": "this run's hyperparameters",
    "model": "model and optimisation",
    "options": "recipe options (off by default: the published recipe)",
    "runtime": "runtime (speed and placement, not the recipe)",
    "outputs": "outputs",
    "name": "run name and resume",
}


@dataclass(frozen=True)
class Setting:
    name: str  # the attribute; the flag is --name-with-dashes
    group: str  # a key of GROUPS
    help: str  # what it does; --help adds "(default: SHOWN)"
    default: object = None  # or a function of nothing, for a default worked out when the parser is made
    shown: str = None  # the default in words, where its value is not enough (None: worked out at run time)
    type: type = None
    choices: tuple = None
    switch: bool = False  # an on/off flag: `--tta` alone is on (grid_search.py: `--tta off on`)
    recipe: bool = True  # decides the run's numbers: its identity, kept on resume, shown in HParams
    limit: Range = None
    tag: str = None  # the run-name part when off its default, e.g. "ls{}"
    short: str = None  # legend words before the value, e.g. "ls" (default: the name in words)
    used_with: dict = field(default_factory=dict)  # the other settings under which it does something
    before: object = DEFAULT  # its value in runs recorded before it existed
    optional: bool = False  # added after rows recorded their settings: part of a row's identity only when off
    # `before`, so rows written before it existed keep theirs
    several: bool = True  # grid_search.py may list several values of it (a recipe setting)
    metavar: str = None

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")

    @property
    def default_text(self):
        """The default as --help and docs/FLAGS.md state it."""
        if self.shown is not None:
            return self.shown
        if self.switch:
            return "on" if self.value else "off"
        return f"{self.value:g}" if isinstance(self.value, float) else str(self.value)

    @property
    def full_help(self):
        return f"{self.help} (default: {self.default_text})"

    @property
    def value(self):
        """The default now (`default`, or what it works out)."""
        return self.default() if callable(self.default) else self.default

    @property
    def old_value(self):
        return self.value if self.before is DEFAULT else self.before


def _settings(*entries):
    return {s.name: s for s in entries}


# In the order of a row's Settings (its identity) and of the grid's product (slowest first): never reorder, append.
# `help` is the flag's meaning; --help and docs/FLAGS.md (python -m caltech.cli) add its default.
SETTINGS = _settings(
    Setting("data", "data", recipe=False, default=DEFAULT_SPLIT, metavar="DIR",
            help="split folder made by split_dataset.py; built on first use when it is the default or --source is "
                 "given"),
    Setting("source", "data", recipe=False, metavar="PATH", shown="look in data/, else download",
            help="101_ObjectCategories folder, caltech-101.zip or 101_ObjectCategories.tar.gz to build a missing "
                 "split from, as split_dataset.py --source does"),
    Setting("epochs", "run", type=int, default=30, limit=Range(1, text="at least 1"), help="training epochs"),
    Setting("lr_fc", "run", type=float, default=1e-3, limit=Range(0, low_open=True, text="a positive number"),
            metavar="LR", shown="1e-3",
            help="learning rate of the new head (ResNet's fc, whatever the model calls it), for every --optimizer"),
    Setting("lr_base", "run", type=float, default=1e-4, metavar="LR", shown="1e-4",
            limit=Range(0, text="a positive number, or 0 to freeze every layer but the head"),
            help="learning rate of every other layer; 0 freezes them"),
    Setting("seed", "run", type=int, default=SEED,
            help="seed of initialisation, shuffling and augmentation (per epoch, so a resume is exact)"),
    Setting("scratch", "model", switch=True, default=False, before=False,
            help="random initialisation instead of ImageNet weights"),
    Setting("model", "model", default="resnet18", tag="{}", metavar="NAME",
            help="any classification model of torchvision's registry (resnet50, efficientnet_b0, convnext_tiny, "
                 "vit_b_16, ...: torchvision.models.list_models(module=torchvision.models)), or tiny_cnn, a small "
                 "CNN for smoke tests; its ImageNet classifier is replaced by a new head"),
    Setting("weights_name", "model", tag="{}", metavar="NAME",
            shown="the model's DEFAULT, IMAGENET1K_V1 for resnet18",
            help="which of the model's torchvision weights, e.g. IMAGENET1K_V2; they also set the normalisation and "
                 "the default --image-size"),
    Setting("weights", "model", recipe=False, metavar="PATH",
            shown="torchvision's cache, $TORCH_HOME/hub/checkpoints, downloading when possible",
            help="a local torchvision ImageNet state dict of --model"),
    Setting("batch_size", "model", type=int, default=32, limit=Range(1, text="at least 1"), short="batch",
            help="training batch size"),
    Setting("step_size", "model", type=int, default=10, limit=Range(1, text="at least 1 epoch"), short="step every",
            used_with={"schedule": "step"}, help="StepLR period in epochs"),
    Setting("gamma", "model", type=float, default=0.1, limit=Range(0, 1, "in (0, 1]", low_open=True, high_open=False),
            used_with={"schedule": "step"}, metavar="F", help="StepLR factor"),
    # its limit depends on the model: training.model.min_image_size, checked by training.setup.check_args
    Setting("image_size", "data", type=int, before=224, shown="the weights' eval size, 224 for resnet18",
            help=f"crop and eval side, at least {MIN_IMAGE_SIZE} (more for a few models); the train resize is "
                 "round(N x 256 / 224), 256 at 224; small values for quick runs"),
    Setting("loader", "data", choices=("cached", "pil"), default="cached",
            help="cached: decode and resize once into --cache-dir, augment whole batches on the device; pil: "
                 "per-image PIL transforms in --workers processes, no cache"),
    Setting("cache_dir", "data", recipe=False, metavar="DIR", shown="cache/ beside --data",
            help="where the cached loader keeps its resized images (about 1.4 GB for the full split at 224 px)"),
    Setting("train_crop", "options", choices=("random", "resized"), default="random", tag="crop-{}", short="crop",
            help="random: random crop of the 256x256 resize (published); resized: torchvision's RandomResizedCrop "
                 "of it, scale (--min-scale, 1), ratio (3/4, 4/3)"),
    Setting("min_scale", "options", type=float, default=0.08,
            limit=Range(0, 1, "in (0, 1]", low_open=True, high_open=False), tag="scale{}", short="min scale",
            used_with={"train_crop": "resized"}, metavar="F",
            help="smallest crop area, as a fraction of the image, for --train-crop resized"),
    Setting("auto_augment", "options", choices=("none", "trivial", "randaugment"), default="none", tag="{}",
            help="torchvision's TrivialAugmentWide or RandAugment after crop and flip"),
    Setting("label_smoothing", "options", type=float, default=0.0, limit=Range(0, 1, "in [0, 1)"), tag="ls{}",
            short="ls", metavar="F",
            help="label smoothing of the training loss (validation and test losses stay plain)"),
    Setting("optimizer", "options", choices=("adam", "adamw", "sgd"), default="adam", tag="{}",
            help="adam (published), adamw (decoupled weight decay), or sgd with Nesterov momentum; all keep the "
                 "fc/base learning rates"),
    Setting("weight_decay", "options", type=float, default=0.0, limit=Range(0, text="0 or more"), tag="wd{}",
            short="wd", metavar="F", help="weight decay of every parameter; decoupled for adamw"),
    Setting("momentum", "options", type=float, default=0.9, limit=Range(0, 1, "in [0, 1)"), tag="mom{}",
            used_with={"optimizer": "sgd"}, metavar="F", help="SGD momentum"),
    Setting("schedule", "options", choices=("step", "cosine"), default="step", tag="{}",
            help="step: StepLR --step-size/--gamma (published); cosine: cosine annealing to 0 at the last epoch "
                 "(per epoch, like StepLR)"),
    Setting("warmup_epochs", "options", type=int, default=0, tag="warm{}", short="warm-up",
            help="linear warm-up epochs before the schedule, from 1/(N+1) of each rate; fewer than --epochs"),
    Setting("mixup", "options", type=float, default=0.0, limit=Range(0, text="0 (off) or a positive alpha"),
            tag="mixup{}", metavar="ALPHA", shown="0, off", help="MixUp alpha (torchvision.transforms.v2.MixUp)"),
    Setting("cutmix", "options", type=float, default=0.0, limit=Range(0, text="0 (off) or a positive alpha"),
            tag="cutmix{}", metavar="ALPHA", shown="0, off",
            help="CutMix alpha (torchvision.transforms.v2.CutMix); with --mixup too, one of the two per batch"),
    Setting("tta", "options", switch=True, default=False, before=False, tag="tta",
            help="validate and test on the mean prediction of each image and its mirror"),
    Setting("patience", "options", type=int, default=0, limit=Range(0, text="0 (off) or a number of epochs"),
            tag="pat{}", shown="0, off",
            help="early stopping: stop when validation accuracy has not improved for N epochs; best.pth is still "
                 "tested"),
    Setting("device", "runtime", recipe=False, metavar="D", shown="CUDA, else MPS, else CPU",
            help="cuda, cuda:1, mps or cpu"),
    Setting("workers", "runtime", recipe=False, type=int, default=default_workers, before=0,
            limit=Range(0, text="0 or more"), shown=f"CPU count - 1, here {default_workers()}",
            help="loader processes for --loader pil"),
    Setting("threads", "runtime", recipe=False, type=int, limit=Range(1, text="at least 1"),
            shown="torch's choice, usually one per core", help="torch CPU threads"),
    Setting("amp", "runtime", recipe=False, switch=True, default=True,
            help="mixed precision. CUDA: bf16 autocast, or fp16 with loss scaling where bf16 is unsupported. A CPU "
                 "with native bf16 (AMX or AVX512-BF16): bf16 autocast, 2.5x fp32's training speed for ResNet-18 on a "
                 "2-core Xeon (docs/BENCHMARKS.md). Any other CPU, and MPS: no effect, fp32 (emulated bf16 is "
                 "slower). evaluate.py and predict.py use the run's setting"),
    Setting("compile", "runtime", recipe=False, switch=True, default=False, help="torch.compile the model"),
    Setting("eval_batch_size", "runtime", recipe=False, type=int, limit=Range(1, text="at least 1"),
            shown="256 on CUDA, else --batch-size", help="batch size for validation and test"),
    Setting("logdir", "outputs", recipe=False, default=LOGDIR, metavar="DIR",
            help="TensorBoard root; one folder per run"),
    Setting("ckpt_dir", "outputs", recipe=False, default=CKPT_DIR, metavar="DIR",
            help="checkpoint root; one folder per run"),
    Setting("run_name", "name", recipe=False, metavar="NAME",
            shown="mode, epochs, learning rates, seed and a timestamp, e.g. "
                  "finetune_ep30_fc0.001_base0.0001_s107_0527_165803",
            help="the run's folder under --logdir and --ckpt-dir; used once (another run of that name is refused "
                 "without --resume)"),
    Setting("resume", "name", recipe=False, switch=True, default=False,
            help="continue --run-name from its last.pth, with its saved settings (a changed recipe or another "
                 "split is refused)"),
    Setting("ema", "options", type=float, default=0.0, limit=Range(0, 1, "0 (off) or a decay in (0, 1)"),
            tag="ema{}", short="EMA", optional=True, metavar="DECAY", shown="0, off",
            help="an exponential moving average of the weights (and BatchNorm statistics), updated after every "
                 "optimizer step with this decay; validation, test and best.pth use the average"),
    # its limit depends on the model, as --image-size's
    Setting("eval_image_size", "options", type=int, tag="eval{}", short="eval size", optional=True,
            shown="--image-size",
            help="the side validation and test images are resized to (FixRes, Touvron et al. 2019: above the "
                 "training crop, objects appear at the size the random crops showed them)"),
    Setting("dropout", "options", type=float, default=0.0, limit=Range(0, 1, "in [0, 1)"), tag="drop{}",
            optional=True, metavar="P", shown="0, off", short="dropout",
            help="dropout before the new head (a model whose classifier has one keeps it too)"),
    Setting("loss", "options", choices=("ce", "cosine"), default="ce", tag="loss-{}", optional=True, short="loss",
            help="ce: cross-entropy (published); cosine: 1 - the cosine similarity of the output and the one-hot "
                 "target (Barz & Denzler 2020), smoothed by --label-smoothing; validation and test report the "
                 "same loss, unsmoothed"),
)
RECIPE = tuple(name for name, s in SETTINGS.items() if s.recipe)  # what a run computes: its identity, in this order
RUNTIME = tuple(name for name, s in SETTINGS.items() if s.group == "runtime")
AXES = ("epochs", "lr_fc", "lr_base")  # the published grid's axes, slowest first: its experiment numbers
# the recipe beside the published axes and the seed: what a grid crosses with them, slowest first
OPTIONS = tuple(name for name in RECIPE if name not in (*AXES, "seed"))


def defaults():
    """{name: default} of every flag: the published recipe, train.py with no flags."""
    return {name: s.value for name, s in SETTINGS.items()}


def recipe_defaults():
    return {name: SETTINGS[name].value for name in RECIPE}


def old_values():
    """{name: value} that runs recorded before a setting existed ran with."""
    return {name: s.old_value for name, s in SETTINGS.items()}


def unused(settings):
    """The settings that change nothing in the recipe `settings` (a dict): a grid runs their values there once."""
    return {name for name, s in SETTINGS.items()
            if any(settings.get(other) != value for other, value in s.used_with.items())}


def identity(settings):
    """The recipe settings a row records as its identity, in RECIPE order: every setting, but an `optional` one
    at the value runs had before it existed."""
    return {name: settings[name] for name in RECIPE if name in settings
            and not (SETTINGS[name].optional and settings[name] == SETTINGS[name].old_value)}
