"""Run folders, read back for the report: every folder of a TensorBoard root that holds a run's event file,
with its settings (hparams.json), its final metrics (metrics.json, in its checkpoint folder) and its scalars.

    runs, empty = read_run_folders(Path("runs"))      # every run folder with an event file
    Logs().curve(run, EPOCH["val_acc"].tag, "fig1")    # (epochs from 1, values), or None after a warning
"""
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tensorboard.backend.event_processing import event_accumulator

from ..layout import CKPT_DIR, run_paths
from ..names import parse_run_name
from ..training.tblog import EVENT_FILES, EXPERIMENT_FILE
from ..utils import UserError, warn
from .markdown import describe

# ---- reading: run folders, for report.py ----

# Keep every scalar (0 = no limit); the report reads nothing else, so other kinds keep one item.
SIZE_GUIDANCE = {event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 1, event_accumulator.IMAGES: 1,
                 event_accumulator.AUDIO: 1, event_accumulator.HISTOGRAMS: 1,
                 event_accumulator.COMPRESSED_HISTOGRAMS: 1}

@dataclass(eq=False)
class Run:
    folder: Path = None  # its TensorBoard folder; None for a results row without one
    row: dict = None  # its row of the results CSV; None for a run known by its folder alone
    hparams: dict = field(default_factory=dict)  # its hparams.json; {} when it has none (the published runs)
    metrics: dict = None  # its metrics.json, for a run known by its folder alone; None when not found

    @property
    def name(self):
        return self.folder.name if self.folder is not None else describe(self.row)


def has_events(folder):
    """Whether `folder` holds a run's event file (the experiment summary alone marks a TensorBoard root)."""
    return any(path.name != EXPERIMENT_FILE for path in Path(folder).glob(EVENT_FILES))


def read_metrics(folder, hparams):
    """A run's metrics.json: beside its events, else in its checkpoint folder, found beside the TensorBoard
    root as it was beside train.py's --logdir (its --ckpt-dir), else in checkpoints/ there; None if none."""
    folder = Path(folder)
    roots = [folder.parent]  # its own folder: a run whose metrics.json was copied beside its events
    logdir, ckpt_dir = hparams.get("logdir"), hparams.get("ckpt_dir")
    if isinstance(logdir, str) and isinstance(ckpt_dir, str) and os.path.isabs(logdir) == os.path.isabs(ckpt_dir):
        roots.append(folder.parent / os.path.relpath(ckpt_dir, logdir))
    roots.append(folder.parent.parent / CKPT_DIR)
    for root in roots:
        try:
            metrics = json.loads(run_paths(folder.name, root).metrics.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(metrics, dict):
            return metrics
    return None


def read_run_folders(runs_dir, skip=()):
    """(runs, empty): a Run (hparams.json, metrics.json) for every folder of runs_dir holding an event file,
    by name, but those in `skip`; and the names of the folders holding none (a run that crashed before it
    logged, or not a run)."""
    runs, empty = [], []
    for folder in sorted(p for p in Path(runs_dir).iterdir() if p.is_dir()):
        if folder.resolve() in skip:
            continue
        if not has_events(folder):
            empty.append(folder.name)
            continue
        hparams = read_hparams(folder)
        runs.append(Run(folder, hparams=hparams, metrics=read_metrics(folder, hparams)))
    return runs, empty


def locate(row, runs_dir):
    """A row's log folder: our CSV's Run column names it; the published folders start grid_exp{N}_."""
    if row.get("Run"):
        folder = runs_dir / row["Run"]
        if folder.is_dir():
            return folder
        warn(f"run folder {folder} ({describe(row)}) not found; left out of the figures")
        return None
    matches = sorted(p for p in runs_dir.glob(f"grid_exp{int(row['Experiment'])}_*") if p.is_dir())
    if not matches:
        warn(f"no folder grid_exp{row['Experiment']}_* in {runs_dir} for {describe(row)}; left out of the figures")
        return None
    if len(matches) > 1:  # the folder names end in a timestamp: the last is the newest
        warn(f"{len(matches)} folders in {runs_dir} match {describe(row)}; using the newest, {matches[-1].name}")
    return matches[-1]


def check_run_folder(folder, what):
    """`folder` as a Path, if it is a folder holding a TensorBoard event file; else a UserError naming `what`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{what} {folder} is not a folder; pass one run's folder, the one holding its "
                        f"{EVENT_FILES} files")
    if not has_events(folder):
        raise UserError(f"{what} {folder} holds no {EVENT_FILES} file; pass one run's folder, not a "
                        "TensorBoard root or a checkpoint folder")
    return folder


def read_hparams(folder):
    """A run's hparams.json as train.py writes it; {} when absent (the published runs have none) or unreadable."""
    try:
        hparams = json.loads(run_paths(folder.name, logdir=folder.parent).hparams.read_text())
    except (OSError, ValueError):
        return {}
    return hparams if isinstance(hparams, dict) else {}


def is_scratch(run):
    """A from-scratch run: so marked in hparams.json, else by its name (scratch*, as train.py and grid_search.py
    name them)."""
    if "scratch" in run.hparams:
        return run.hparams["scratch"] is True
    return parse_run_name(run.folder.name).get("scratch", False)


def scratch_runs(runs_dir):
    """The from-scratch runs among runs_dir's run folders."""
    return [run for run in read_run_folders(runs_dir)[0] if is_scratch(run)]


def read_scalars(folder):
    """{tag: (epochs, values)} of a run folder; the step is the epoch index from 0, drawn from 1.

    EventAccumulator merges the event files of a resumed run; a step logged twice keeps its last value.
    """
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance=SIZE_GUIDANCE)
    acc.Reload()
    curves = {}
    for tag in acc.Tags()["scalars"]:
        values = pd.Series({e.step: e.value for e in acc.Scalars(tag)}, dtype=float).sort_index()
        curves[tag] = (values.index.to_numpy() + 1, values.to_numpy())
    return curves


class Logs:
    """The scalars of run folders, each folder read once however many figures draw it."""

    def __init__(self):
        self._scalars = {}

    def curve(self, run, tag, figure):
        """(epochs, values) of `tag` in `run`, or None after a one-line warning."""
        if run.folder not in self._scalars:
            try:
                self._scalars[run.folder] = read_scalars(run.folder)
            except Exception as e:  # a corrupt or vanished event file costs one run, not the report
                warn(f"could not read the event files of {run.folder} ({type(e).__name__}); left out of the figures")
                self._scalars[run.folder] = None
            if self._scalars[run.folder] == {}:  # one line, rather than one per figure
                warn(f"{run.folder} has no scalars (no event file, or an unreadable one); left out of the figures")
                self._scalars[run.folder] = None
        scalars = self._scalars[run.folder]
        if scalars is None:
            return None
        if tag not in scalars:
            warn(f"{run.folder} has no {tag} scalars; left out of {figure}")
            return None
        return scalars[tag]
