"""The grid: its trials, the results CSV, resuming, choosing the best run on validation, seed statistics.

Backends (sequential in grid_search.py, Ray Tune in caltech.ray_tune) only decide where each group of
trials runs (grid_search.run_group: one train.main for trials that differ only in epochs); everything
here is shared, so both give the same table.
"""
import dataclasses
import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from filelock import FileLock

from .utils import atomic_path, atomic_write_text

PUBLISHED = ["Experiment", "Epochs", "LR_FC", "LR_Base", "Best_Val_Acc", "Test_Acc"]
# Recipe: the run's non-default recipe options (train.recipe_tag), empty for the published recipe;
# Epochs_Run: the epochs the run really trained, fewer than Epochs after an early stop (--patience)
COLUMNS = PUBLISHED + ["Test_Mean_Class_Acc", "Seed", "Scratch", "Train_Seconds", "Run", "Recipe", "Epochs_Run"]
LATER = ["Recipe", "Epochs_Run"]  # absent from results files written before they existed: read as empty
ACCURACIES = ["Best_Val_Acc", "Test_Acc", "Test_Mean_Class_Acc"]


@dataclass(frozen=True)
class Trial:
    experiment: int  # the configuration's number in the published order, the same for every seed
    epochs: int
    lr_fc: float
    lr_base: float
    seed: int
    scratch: bool
    recipe: str = ""  # the grid's non-default recipe options, so that their runs never pass for published ones

    @property
    def run_name(self):
        mode = "scratch" if self.scratch else "grid"
        name = f"{mode}_exp{self.experiment}_ep{self.epochs}_fc{self.lr_fc}_base{self.lr_base}_s{self.seed}"
        return f"{name}_{self.recipe}" if self.recipe else name

    @property
    def key(self):
        """The row_key of this trial's row: how the results CSV tells which trials are done."""
        return row_key({"Epochs": self.epochs, "LR_FC": self.lr_fc, "LR_Base": self.lr_base, "Seed": self.seed,
                        "Scratch": str(self.scratch), "Recipe": self.recipe})


def make_trials(epochs, lr_fcs, lr_bases, seeds, scratch=False, recipe=""):
    """Configurations numbered as published (epochs, then lr_fc, then lr_base vary slowest to fastest).

    Seed-major order: the whole grid for the first seed finishes before any repeat starts.
    """
    configs = list(itertools.product(epochs, lr_fcs, lr_bases))
    return [Trial(i, e, fc, base, seed, scratch, recipe)
            for seed in seeds for i, (e, fc, base) in enumerate(configs, 1)]


def prefix_groups(trials):
    """Trials that differ only in their number of epochs, together and shortest first, in the order of
    each group's first trial: with a step schedule, the longest run trains the others on its way."""
    groups = {}
    for trial in trials:
        groups.setdefault(dataclasses.replace(trial, experiment=0, epochs=0), []).append(trial)
    return [sorted(group, key=lambda t: t.epochs) for group in groups.values()]


def row_key(row):
    return (int(row["Epochs"]), float(row["LR_FC"]), float(row["LR_Base"]), int(row["Seed"]),
            row["Scratch"] == "True", row.get("Recipe") or "")


def make_row(trial, metrics):
    return {"Experiment": trial.experiment, "Epochs": trial.epochs, "LR_FC": trial.lr_fc, "LR_Base": trial.lr_base,
            "Best_Val_Acc": f"{metrics['best_val_acc']:.4f}", "Test_Acc": f"{metrics['test_acc']:.4f}",
            "Test_Mean_Class_Acc": f"{metrics['test_mean_class_acc']:.4f}", "Seed": trial.seed,
            "Scratch": str(trial.scratch), "Train_Seconds": f"{metrics['train_seconds']:.1f}",
            "Run": trial.run_name, "Recipe": trial.recipe,
            "Epochs_Run": metrics.get("epochs_run", trial.epochs)}  # metrics from before --patience: all epochs


def read_results(path):
    """Rows (dicts of strings, as written) of a results CSV of ours; [] when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)  # strings: rows are rewritten exactly as read
    if not {"Seed", "Scratch"} <= set(frame.columns):  # the published CSV: not one of ours
        return []
    return frame.to_dict("records")


def write_results(path, rows):
    # object: a column of ints and an older row's missing value stays ints (and an empty cell), not floats
    frame = pd.DataFrame(rows, columns=COLUMNS, dtype=object)
    atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))


def results_lock(path):
    """An exclusive lock beside the CSV for its read-modify-write: two grids started at once on one
    results file (two terminals with different --seeds, say) then never overwrite each other's rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.with_name(f".{path.name}.lock")))


def append_result(path, row):
    """Rewrite the CSV with `row` added (replacing a row of the same trial): valid after a kill at any moment."""
    with results_lock(path):
        rows = [r for r in read_results(path) if row_key(r) != row_key({k: str(v) for k, v in row.items()})]
        write_results(path, rows + [row])


def forget(path, trials, logdir, ckpt_dir):
    """--fresh: drop these trials' rows, logs and checkpoints (other rows in the CSV stay)."""
    keys = {t.key for t in trials}
    with results_lock(path):
        write_results(path, [r for r in read_results(path) if row_key(r) not in keys])
    for t in trials:
        shutil.rmtree(Path(logdir) / t.run_name, ignore_errors=True)
        shutil.rmtree(Path(ckpt_dir) / t.run_name, ignore_errors=True)


CONFIG = ["Epochs", "LR_FC", "LR_Base", "Scratch", "Recipe"]  # a configuration: a row but for its seed


def by_config(rows):
    """The rows as a DataFrame with numeric accuracies, grouped by configuration in order of appearance.

    The published CSV has no Scratch column (all its grid runs fine-tune) and older ones no Recipe."""
    frame = pd.DataFrame(rows).assign(_row=range(len(rows)))
    for col, default in (("Scratch", "False"), ("Recipe", "")):
        frame[col] = frame[col].fillna(default) if col in frame else default
    frame[["Epochs", "Experiment"]] = frame[["Epochs", "Experiment"]].astype(int)
    frame[["LR_FC", "LR_Base"]] = frame[["LR_FC", "LR_Base"]].astype(float)
    for col in ACCURACIES:
        if col in frame:
            frame[col] = frame[col].astype(float)
    return frame, frame.groupby(CONFIG, sort=False)


def choose_best(rows):
    """The run whose best.pth the grid keeps: chosen on validation, never on test.

    The configuration with the highest mean Best_Val_Acc over its seeds (with one seed, simply the
    highest) wins, ties to the earlier experiment; within it, the seed with the highest
    Best_Val_Acc, ties to the earlier row.
    """
    frame, groups = by_config(rows)
    frame["_mean"] = groups["Best_Val_Acc"].transform("mean")
    frame["_first"] = groups["Experiment"].transform("first")
    frame["_config"] = groups.ngroup()
    order = frame.sort_values(["_mean", "_first", "_config", "Best_Val_Acc", "_row"],
                              ascending=[False, True, True, False, True], kind="stable")
    return rows[int(order["_row"].iloc[0])]


def seed_stats(rows):
    """Per configuration: n, and mean and sample std of each accuracy (std 0 for a single seed)."""
    frame, groups = by_config(rows)
    stats = groups.agg(Experiment=("Experiment", "first"), n=("Experiment", "size"),
                       **{f"{c} {f}": (c, f) for c in ACCURACIES for f in ("mean", "std")}).reset_index()
    stats = stats.fillna({f"{c} std": 0.0 for c in ACCURACIES}).sort_values("Experiment", kind="stable")
    return [{"Experiment": int(e["Experiment"]), "Epochs": int(e["Epochs"]), "LR_FC": e["LR_FC"],
             "LR_Base": e["LR_Base"], "Scratch": e["Scratch"], "n": int(e["n"]),
             **{c: (e[f"{c} mean"], e[f"{c} std"]) for c in ACCURACIES}} for e in stats.to_dict("records")]


def epochs_run(row):
    """The epochs a run really trained: rows from before early stopping ran all of theirs."""
    return row.get("Epochs_Run") or row["Epochs"]


def copy_best(row, ckpt_dir, name):
    """Copy the chosen run's best.pth to ckpt_dir/name, atomically."""
    dest = Path(ckpt_dir) / name
    with atomic_path(dest) as tmp:
        shutil.copyfile(Path(ckpt_dir) / row["Run"] / "best.pth", tmp)
    return dest
