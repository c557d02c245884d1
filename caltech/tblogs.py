"""Run folders and their TensorBoard scalars, read back for report.py's figures (caltech.runlog writes them).

    logs = Logs()
    logs.curve(Run(Path("runs/scratch")), "Accuracy/val", "fig4.png")   # (epochs from 1, values), or None
"""
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tensorboard.backend.event_processing import event_accumulator

from .tables import describe
from .utils import UserError, warn

# Keep every scalar (0 = no limit); the report reads nothing else, so other kinds keep one item.
SIZE_GUIDANCE = {event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 1, event_accumulator.IMAGES: 1,
                 event_accumulator.AUDIO: 1, event_accumulator.HISTOGRAMS: 1,
                 event_accumulator.COMPRESSED_HISTOGRAMS: 1}


@dataclass(eq=False)
class Run:
    folder: Path
    row: dict = None  # its results row; None for a from-scratch run, found by its folder alone


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
                        "events.out.tfevents.* files")
    if not any(folder.glob("events.out.tfevents.*")):
        raise UserError(f"{what} {folder} holds no events.out.tfevents.* file; pass one run's folder, not a "
                        "TensorBoard root or a checkpoint folder")
    return folder


def read_hparams(folder):
    """A run's hparams.json as train.py writes it; {} when absent (the published runs have none) or unreadable."""
    try:
        hparams = json.loads((folder / "hparams.json").read_text())
    except (OSError, ValueError):
        return {}
    return hparams if isinstance(hparams, dict) else {}


def scratch_runs(runs_dir):
    """From-scratch runs: folders named scratch* (as train.py and grid_search.py name them), or so marked in
    hparams.json."""
    folders = sorted(p for p in runs_dir.iterdir() if p.is_dir())
    return [Run(f) for f in folders if f.name.startswith("scratch") or read_hparams(f).get("scratch") is True]


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
