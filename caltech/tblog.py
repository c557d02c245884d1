"""TensorBoard both ways, and the one home of its tag names: a run's per-epoch scalars and HParams written
(`RunLogger`), and run folders read back for report.py's figures, with each run's settings (hparams.json)
and final metrics (metrics.json, in its checkpoint folder).

    tensorboard --logdir runs     # SCALARS: the curves; HPARAMS: one row per run, the recipe first
    logs = Logs()
    logs.curve(Run(Path("runs/scratch")), EPOCH_TAGS["val_acc"], "fig4.png")  # (epochs from 1, values), or None
    runs, empty = read_run_folders(Path("runs"))                              # every run folder with an event file

Tags `Loss/train`, `Loss/val`, `Accuracy/val`, `LR/base`, `LR/fc` are the published ones, so old
and new logs overlay in one TensorBoard; `Accuracy/train` is new. The step is the epoch index, from 0.

HParams: each run folder holds its session (its settings and status) and its final metrics as `hparam/*`
scalars, the only place the plugin reads metric values from. The experiment summary (which columns the
table has, in what order) goes into the TensorBoard root, beside the run folders, and into each run
folder. The plugin shows the first experiment summary it comes across and merges none; the root's run,
".", comes first with both of TensorBoard's loaders, so it also wins over the per-run summaries that
runs logged before this change hold (torch's `add_hparams`: alphabetical, `hparam/*` columns). The copy
in each run folder serves a run viewed on its own or moved to another root.
"""
import io
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.summary.writer.record_writer import RecordWriter
from torch.utils.tensorboard import SummaryWriter

from .checkpoint import CKPT_DIR, run_paths
from .tables import describe
from .utils import UserError, atomic_path, warn

# ---- the tags ----

# metrics dict key -> TensorBoard tag
EPOCH_TAGS = {"train_loss": "Loss/train", "train_acc": "Accuracy/train", "val_loss": "Loss/val",
              "val_acc": "Accuracy/val", "lr_base": "LR/base", "lr_fc": "LR/fc"}
ACCURACY_TAGS = frozenset(tag for key, tag in EPOCH_TAGS.items() if key.endswith("_acc"))  # logged as fractions of 1
# final metrics shown in the HParams dashboard
HPARAM_METRICS = {"best_val_acc": "hparam/best_val_acc", "test_acc": "hparam/test_acc",
                  "test_mean_class_acc": "hparam/test_mean_class_acc",
                  "epochs_run": "hparam/epochs_run"}  # fewer than the recipe's epochs after an early stop
# What the experiments vary (the grid: epochs and learning rates; --seeds; the scratch baseline; --model).
# TensorBoard 2.15+ sorts the columns by the `differs` flag, then by name, and ticks the first five
# (tensorboard#6500, #6588): these are flagged so they lead. Earlier versions keep the summary's order.
LEAD = ("epochs", "lr_fc", "lr_base", "seed", "scratch", "model")
EVENT_FILES = "events.out.tfevents.*"  # what makes a folder a TensorBoard run
EXPERIMENT_FILE = "events.out.tfevents.hparams"  # in the TensorBoard root, beside the run folders


# ---- writing: one run's logs ----

def value_type(value):
    """The google.protobuf.Value field and the HParams data type of a plain setting."""
    if isinstance(value, bool):  # before int: a bool is an int to Python
        return "bool_value", api_pb2.DATA_TYPE_BOOL
    if isinstance(value, (int, float)):
        return "number_value", api_pb2.DATA_TYPE_FLOAT64
    return "string_value", api_pb2.DATA_TYPE_STRING


def plugin_summary(tag, **data):
    """A Summary holding one HParamsPluginData field: experiment, session_start_info or session_end_info."""
    meta = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(**data))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=metadata.NULL_TENSOR)])


def experiment_summary(hparams):
    """The HParams experiment: a column per setting in the order of `hparams`, then the HPARAM_METRICS.

    Built from the names and types alone (no domains but a bool's, no time), so every run of a grid
    writes the same one."""
    columns = []
    for name, value in hparams.items():
        info = api_pb2.HParamInfo(name=name, type=value_type(value)[1], differs=name in LEAD)
        if isinstance(value, bool):
            info.domain_discrete.extend([False, True])
        columns.append(info)
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=key)
               for key, tag in HPARAM_METRICS.items()]
    return plugin_summary(metadata.EXPERIMENT_TAG,
                          experiment=api_pb2.Experiment(hparam_infos=columns, metric_infos=metrics))


def write_experiment(root, hparams):
    """The experiment summary as root/EXPERIMENT_FILE: the same bytes from every run of the same recipe
    (no wall time), so it is rewritten, atomically, only when the settings change."""
    buffer = io.BytesIO()
    records = RecordWriter(buffer)
    for event in (event_pb2.Event(file_version="brain.Event:2"), event_pb2.Event(summary=experiment_summary(hparams))):
        records.write(event.SerializeToString())
    path = Path(root) / EXPERIMENT_FILE
    if not path.is_file() or path.read_bytes() != buffer.getvalue():
        with atomic_path(path) as tmp:
            tmp.write_bytes(buffer.getvalue())


def session_summaries(hparams):
    """A finished HParams session: its settings, then its end (the metric values are the scalars)."""
    start = plugin_data_pb2.SessionStartInfo()
    for name, value in hparams.items():
        setattr(start.hparams[name], value_type(value)[0], value)
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=time.time())
    return (plugin_summary(metadata.SESSION_START_INFO_TAG, session_start_info=start),
            plugin_summary(metadata.SESSION_END_INFO_TAG, session_end_info=end))


class RunLogger:
    def __init__(self, logdir, resume_epoch=0):
        self.root = Path(logdir).parent  # train.py's --logdir: runs are its folders
        # On resume, purge_step makes TensorBoard drop anything logged at or after the resumed epoch
        # by the interrupted process, so no step appears twice.
        self.writer = SummaryWriter(str(logdir), purge_step=resume_epoch or None)

    def log_epoch(self, epoch, stats):
        for key, tag in EPOCH_TAGS.items():
            self.writer.add_scalar(tag, stats[key], epoch)
        self.writer.flush()  # on disk before the epoch's checkpoint is written

    def log_hparams(self, hparams, metrics, step):
        """The run's HParams: its session (settings as plain values, a finished status), its final metrics
        and the experiment summary (columns in the order of `hparams`), in the run and in the root."""
        plain = {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v) for k, v in hparams.items()}
        writer = self.writer._get_file_writer()
        for summary in (experiment_summary(plain), *session_summaries(plain)):
            writer.add_summary(summary)
        write_experiment(self.root, plain)
        for key, tag in HPARAM_METRICS.items():
            self.writer.add_scalar(tag, metrics[key], step)
        self.writer.flush()

    def close(self):
        self.writer.close()


# ---- reading: run folders, for report.py ----

# Keep every scalar (0 = no limit); the report reads nothing else, so other kinds keep one item.
SIZE_GUIDANCE = {event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 1, event_accumulator.IMAGES: 1,
                 event_accumulator.AUDIO: 1, event_accumulator.HISTOGRAMS: 1,
                 event_accumulator.COMPRESSED_HISTOGRAMS: 1}
# The default run names of train.py and grid_search.py, and the published ones: what a folder without
# hparams.json (the published runs) says of itself
RUN_NAME = re.compile(r"^(grid|scratch|finetune)(?:_exp\d+)?_ep(\d+)_fc(\d[\d.]*(?:e-?\d+)?)"
                      r"_base(\d[\d.]*(?:e-?\d+)?)(?:_s(\d+))?(?:_|$)")


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


def name_settings(name):
    """The settings a default run name states (mode, epochs, learning rates, seed); {} for another name."""
    match = RUN_NAME.match(name)
    if not match:
        return {"scratch": True} if name.startswith("scratch") else {}
    mode, epochs, lr_fc, lr_base, seed = match.groups()
    settings = {"scratch": mode == "scratch", "epochs": int(epochs), "lr_fc": float(lr_fc), "lr_base": float(lr_base)}
    return {**settings, "seed": int(seed)} if seed else settings


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
    return name_settings(run.folder.name).get("scratch", False)


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
