"""The grid's trials: each run's full recipe and split (its identity) and run name, the Cartesian product of
settings, the prefix groups, --fresh, and the choice on validation with seed statistics (its rows are kept by
caltech.grid.results).

Backends (sequential in caltech.grid.search, Ray Tune in caltech.grid.ray_tune) only decide where each group of
trials runs (search.run_group: one fit.train for trials that differ only in epochs); everything here is shared,
so both give the same table.
"""
import dataclasses
import hashlib
import itertools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import names
from ..layout import run_paths
from ..names import ACCURACY_COLUMNS as ACCURACIES
from ..recipe import AXES, RECIPE, identity
from ..utils import UserError, atomic_path
from .results import remove_rows, row_settings


@dataclass(frozen=True)
class Trial:
    experiment: int  # the configuration's number in the grid's order, the same for every seed
    epochs: int
    lr_fc: float
    lr_base: float
    seed: int
    scratch: bool
    recipe: str = ""  # the non-default recipe options as a name part (names.recipe_tag): readable run names
    options: tuple = ()  # ((setting, value), ...): the rest of the run's resolved recipe, in recipe.RECIPE order
    split: str = ""  # SHA-256 of the split.csv it trains on

    @property
    def settings(self):
        """The run's full recipe: every setting that decides its numbers, in recipe.RECIPE order."""
        return {"epochs": self.epochs, "lr_fc": self.lr_fc, "lr_base": self.lr_base, "seed": self.seed,
                "scratch": self.scratch, **dict(self.options)}

    @property
    def settings_json(self):
        """The row's Settings, its identity: the full recipe, but a setting added later at its old value
        (recipe.identity), so that rows written before it existed keep theirs."""
        return json.dumps({**identity(self.settings), **self.fingerprints}, separators=(",", ":"))

    @property
    def fingerprints(self):
        return {k: v for k, v in self.options if k not in RECIPE}  # weights_sha256: not a flag

    @property
    def run_name(self):
        """Readable, and unique to its settings and split: a grid with other settings or another split never
        writes into this run's folders."""
        digest = hashlib.sha256(f"{self.settings_json}|{self.split}".encode()).hexdigest()[:6]
        return names.run_name(self.scratch, self.epochs, self.lr_fc, self.lr_base, self.seed, self.recipe,
                              experiment=self.experiment, digest=digest)

    @property
    def key(self):
        """The results.row_key of this trial's row: how the results CSV tells which trials are done."""
        return self.settings_json, self.split


def configurations(axes):
    """The Cartesian product of `axes` [(setting, [values])...], slowest first, as dicts."""
    names = [name for name, _ in axes]
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(v for _, v in axes))]


def make_trials(epochs, lr_fcs, lr_bases, seeds, scratch=False, recipe="", options=(), split=""):
    """The published grid's trials: configurations numbered as published (epochs, then lr_fc, then lr_base
    vary slowest to fastest), all with the same `options`.

    Seed-major order: the whole grid for the first seed finishes before any repeat starts.
    """
    configs = configurations(list(zip(AXES, (epochs, lr_fcs, lr_bases), strict=True)))
    return [Trial(i, c["epochs"], c["lr_fc"], c["lr_base"], seed, scratch, recipe, tuple(options), split)
            for seed in seeds for i, c in enumerate(configs, 1)]


def prefix_groups(trials):
    """Trials that differ only in their number of epochs, together and shortest first, in the order of
    each group's first trial: with a step schedule, the longest run trains the others on its way."""
    groups = {}
    for trial in trials:
        groups.setdefault(dataclasses.replace(trial, experiment=0, epochs=0), []).append(trial)
    return [sorted(group, key=lambda t: t.epochs) for group in groups.values()]


def forget(path, trials, logdir, ckpt_dir):
    """--fresh: drop these trials' rows, logs and checkpoints (other rows in the CSV stay)."""
    remove_rows(path, {t.key for t in trials})
    for t in trials:
        paths = run_paths(t.run_name, ckpt_dir, logdir)
        shutil.rmtree(paths.logdir, ignore_errors=True)
        shutil.rmtree(paths.ckpt_dir, ignore_errors=True)


# a configuration: a row but for its seed (_recipe: its Settings without the seed, empty in older files; _split: its
# Split_SHA256): seeds on another split are another configuration, never pooled
CONFIG = ["Epochs", "LR_FC", "LR_Base", "Scratch", "Recipe", "_recipe", "_split"]


def by_config(rows):
    """The rows as a DataFrame with numeric accuracies, grouped by configuration in order of appearance.

    The published CSV has no Scratch column (all its grid runs fine-tune) and older ones no Recipe."""
    frame = pd.DataFrame(rows).assign(_row=range(len(rows)))
    frame["_recipe"] = [json.dumps({k: v for k, v in row_settings(r).items() if k != "seed"}) for r in rows]
    frame["_split"] = [r.get("Split_SHA256") or "" for r in rows]
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
             "Settings": json.loads(e["_recipe"]), "Split": e["_split"],
             **{c: (e[f"{c} mean"], e[f"{c} std"]) for c in ACCURACIES}} for e in stats.to_dict("records")]


def apart(stats):
    """What tells seed_stats' configurations apart beside their epochs, rates and mode: the settings whose values
    differ among them, and 'Split' when they come from two or more splits."""
    keys = list(dict.fromkeys(k for e in stats for k in e["Settings"]))
    shown = [k for k in keys if k not in ("epochs", "lr_fc", "lr_base", "scratch")
             and len({json.dumps(e["Settings"].get(k)) for e in stats}) > 1]
    return shown + (["Split"] if len({e["Split"] for e in stats}) > 1 else [])


def copy_best(row, ckpt_dir, dest):
    """Copy the chosen run's best.pth (in ckpt_dir) to `dest`, atomically; returns `dest`. A run whose best.pth is
    gone (its row reused, its folder deleted) is a UserError: its row stands, but there is nothing to copy."""
    dest, source = Path(dest), run_paths(row["Run"], ckpt_dir).best
    if not source.is_file():
        raise UserError(f"run {row['Run']}, chosen on validation, has no {source} (its folder was deleted?), so it "
                        f"cannot be copied to {dest}; restore the folder, or train the grid again with --fresh")
    with atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)
    return dest
