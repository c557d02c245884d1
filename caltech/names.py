"""Names that several parts of the project write and read back: each metric's key, results column, TensorBoard
tag and words (one table), and the run-name formats beside their parser.

    FINAL["test_mean_class_acc"].column       # 'Test_Mean_Class_Acc', the results CSV's column
    EPOCH["val_acc"].tag                      # 'Accuracy/val', its TensorBoard scalar
    parse_run_name("grid_exp3_ep20_fc0.0005_base0.0001_s107_3fa2c1")   # {'scratch': False, 'epochs': 20, ...}

Metrics are named `{split}_{metric}` (test_acc, val_mean_class_acc, ...) from the engine to the report; the
results CSV and TensorBoard keep the published names (Best_Val_Acc, Accuracy/val, ...).
"""
import re
from dataclasses import dataclass
from datetime import datetime

from .recipe import SETTINGS, defaults, unused


@dataclass(frozen=True)
class Metric:
    key: str  # metrics dict and metrics.json key
    column: str = None  # results CSV column (or the tables' column, Test_Top5)
    tag: str = None  # TensorBoard tag
    label: str = ""  # words for axes, legends and captions
    short: str = ""  # grid_search.py's console column


# logged every epoch, under the published tags (Accuracy/train is new); the step is the epoch index, from 0
EPOCH = {m.key: m for m in (
    Metric("train_loss", tag="Loss/train", label="training loss"),
    Metric("train_acc", tag="Accuracy/train", label="training accuracy (%)"),
    Metric("val_loss", tag="Loss/val", label="validation loss"),
    Metric("val_acc", tag="Accuracy/val", label="validation accuracy (%)"),
    Metric("lr_base", tag="LR/base", label="learning rate of the body"),
    Metric("lr_fc", tag="LR/fc", label="learning rate of the head"),
)}
# a run's final metrics: metrics.json, the results row, HParams (hparam/*) and the report's tables
FINAL = {m.key: m for m in (
    Metric("best_val_acc", "Best_Val_Acc", "hparam/best_val_acc", "best validation", "Val %"),
    Metric("test_acc", "Test_Acc", "hparam/test_acc", "test overall", "Test %"),
    Metric("test_mean_class_acc", "Test_Mean_Class_Acc", "hparam/test_mean_class_acc", "test mean per-class",
           "Test mean-class %"),
    Metric("epochs_run", "Epochs_Run", "hparam/epochs_run", "epochs run"),  # fewer than --epochs after an early stop
    Metric("test_top5", "Test_Top5", label="test top-5"),
    Metric("train_seconds", "Train_Seconds", label="training seconds"),
)}
ACCURACIES = ("best_val_acc", "test_acc", "test_mean_class_acc")  # the accuracies of every results row
ACCURACY_COLUMNS = [FINAL[k].column for k in ACCURACIES]
HPARAM_METRICS = {k: m.tag for k, m in FINAL.items() if m.tag}  # what TensorBoard's HParams table shows
ACCURACY_TAGS = frozenset(m.tag for k, m in EPOCH.items() if k.endswith("_acc"))  # logged as fractions of 1


# ---- run names ----

def recipe_tag(settings, untagged=()):
    """The recipe settings of `settings` off their defaults, as a run-name part in the table's order, e.g.
    'adamw_wd0.05' ('' for the published recipe). Settings their recipe ignores (SGD momentum under Adam, ...)
    and those in `untagged` are left out. Image size, batch size and the StepLR settings have no tag: a grid's
    run names end in a digest of the full recipe instead."""
    default, skip = defaults(), unused(settings) | set(untagged)
    return "_".join(s.tag.format(settings[k]) for k, s in SETTINGS.items()
                    if s.tag and k in settings and settings[k] != default[k] and k not in skip)


def run_name(scratch, epochs, lr_fc, lr_base, seed, tag="", experiment=None, digest=None):
    """A run's default name. train.py's: `finetune|scratch_ep30_fc0.001_base0.0001_s107[_TAG]_MMDD_HHMMSS`; a
    grid's: `grid|scratch_expN_ep..._s107[_TAG]_DIGEST` (DIGEST: of its full recipe and split)."""
    mode = "scratch" if scratch else ("finetune" if experiment is None else "grid")
    exp = "" if experiment is None else f"_exp{experiment}"
    end = digest if digest is not None else datetime.now().strftime("%m%d_%H%M%S")
    return f"{mode}{exp}_ep{epochs}_fc{lr_fc}_base{lr_base}_s{seed}_{tag + '_' if tag else ''}{end}"


# run_name's formats, and the published runs' folder names (grid_expN_ep20_fc0.001_base0.0001_<time>)
RUN_NAME = re.compile(r"^(grid|scratch|finetune)(?:_exp\d+)?_ep(\d+)_fc(\d[\d.]*(?:e-?\d+)?)"
                      r"_base(\d[\d.]*(?:e-?\d+)?)(?:_s(\d+))?(?:_|$)")


def parse_run_name(name):
    """The settings a default run name states (mode, epochs, learning rates, seed); {} for another name but
    scratch* (a from-scratch run)."""
    match = RUN_NAME.match(name)
    if not match:
        return {"scratch": True} if name.startswith("scratch") else {}
    mode, epochs, lr_fc, lr_base, seed = match.groups()
    settings = {"scratch": mode == "scratch", "epochs": int(epochs), "lr_fc": float(lr_fc), "lr_base": float(lr_base)}
    return {**settings, "seed": int(seed)} if seed else settings


def tag_words(tag):
    """The parts of a recipe_tag (a results row's Recipe cell)."""
    return [word for word in (tag or "").split("_") if word]
