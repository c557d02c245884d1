"""TensorBoard, written: a run's per-epoch scalars and its HParams session (`RunLogger`), under the tags of
caltech.names (the published ones, so old and new logs overlay in one TensorBoard; the step is the epoch index,
from 0). caltech.report.runs reads them back.

    tensorboard --logdir runs     # SCALARS: the curves; HPARAMS: one row per run, the recipe first

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
import time
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.summary.writer.record_writer import RecordWriter
from torch.utils.tensorboard import SummaryWriter

from ..names import EPOCH, HPARAM_METRICS
from ..utils import atomic_path

# What the experiments vary (the grid: epochs and learning rates; --seeds; the scratch baseline; --model).
# TensorBoard 2.15+ sorts the columns by the `differs` flag, then by name, and ticks the first five
# (tensorboard#6500, #6588): these are flagged so they lead. Earlier versions keep the summary's order.
LEAD = ("epochs", "lr_fc", "lr_base", "seed", "scratch", "model")  # flagged while nothing differs: a single run
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


def varying(root, hparams):
    """The settings of `hparams` whose values differ among the runs of the TensorBoard root `root` (their
    hparams.json; this run's is among them): the columns an experiment summary marks `differs`. LEAD when
    nothing differs yet (a single run)."""
    seen = {}
    for path in Path(root).glob("*/hparams.json"):
        try:
            other = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(other, dict):
            for name in hparams:
                seen.setdefault(name, set()).add(json.dumps(other.get(name), sort_keys=True))
    differ = [name for name in hparams if len(seen.get(name, ())) > 1]
    return differ or [name for name in hparams if name in LEAD]


def experiment_summary(hparams, differ=LEAD):
    """The HParams experiment: a column per setting in the order of `hparams`, then the HPARAM_METRICS; the
    settings in `differ` flagged as those that vary.

    Built from the names, types and flags alone (no domains but a bool's, no time), so every run of a grid
    writes the same one."""
    columns = []
    for name, value in hparams.items():
        info = api_pb2.HParamInfo(name=name, type=value_type(value)[1], differs=name in differ)
        if isinstance(value, bool):
            info.domain_discrete.extend([False, True])
        columns.append(info)
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=key)
               for key, tag in HPARAM_METRICS.items()]
    return plugin_summary(metadata.EXPERIMENT_TAG,
                          experiment=api_pb2.Experiment(hparam_infos=columns, metric_infos=metrics))


def write_experiment(root, hparams, differ=LEAD):
    """The experiment summary as root/EXPERIMENT_FILE: the same bytes from every run of the same recipe and the
    same varying settings (no wall time), so it is rewritten, atomically, only when those change."""
    buffer = io.BytesIO()
    records = RecordWriter(buffer)
    summary = experiment_summary(hparams, differ)
    for event in (event_pb2.Event(file_version="brain.Event:2"), event_pb2.Event(summary=summary)):
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
        for key, metric in EPOCH.items():
            self.writer.add_scalar(metric.tag, stats[key], epoch)
        self.writer.flush()  # on disk before the epoch's checkpoint is written

    def log_hparams(self, hparams, metrics, step):
        """The run's HParams: its session (settings as plain values, a finished status), its final metrics
        and the experiment summary (columns in the order of `hparams`), in the run and in the root."""
        plain = {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v) for k, v in hparams.items()}
        differ = varying(self.root, plain)  # among the runs beside it, this one included
        writer = self.writer._get_file_writer()
        for summary in (experiment_summary(plain, differ), *session_summaries(plain)):
            writer.add_summary(summary)
        write_experiment(self.root, plain, differ)
        for key, tag in HPARAM_METRICS.items():
            self.writer.add_scalar(tag, metrics[key], step)
        self.writer.flush()

    def close(self):
        self.writer.close()
