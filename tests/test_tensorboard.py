"""TensorBoard's HParams as the dashboard reads them: the experiment summary (the recipe's columns, the
declared metrics) in the logdir root and in every run, each run's session, and the plugin's own answers."""
import json

import pytest
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2, backend_context, get_experiment, list_session_groups, metadata
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as torch_hparams

import grid_search
from caltech import recipe
from caltech.report.runs import check_run_folder
from caltech.training import tblog
from caltech.utils import UserError
from conftest import grid_flags

COLUMNS = [*recipe.RECIPE, "num_classes", "split_sha256"]
METRICS = {"hparam/best_val_acc": "best_val_acc", "hparam/test_acc": "test_acc",
           "hparam/test_mean_class_acc": "test_mean_class_acc", "hparam/epochs_run": "epochs_run"}


def plugin_content(folder, tag):
    """The HParams plugin data under `tag` in the event files of `folder` itself (not its subfolders)."""
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return acc.PluginTagToContent(metadata.PLUGIN_NAME)[tag]


def experiment_in(folder):
    return metadata.parse_experiment_plugin_data(plugin_content(folder, metadata.EXPERIMENT_TAG))


def dashboard(logdir):
    """(experiment, session groups) as `tensorboard --logdir logdir` serves them to the HPARAMS dashboard."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    backend = backend_context.Context(base_plugin.TBContext(data_provider=provider, logdir=str(logdir)))
    request = context.RequestContext()
    experiment = get_experiment.Handler(request, backend, "", api_pb2.GetExperimentRequest()).run()
    groups = list_session_groups.Handler(request, backend, "", api_pb2.ListSessionGroupsRequest(
        allowed_statuses=[api_pb2.STATUS_SUCCESS], start_index=0, slice_size=100)).run()
    return experiment, groups.session_groups


def test_grid_writes_the_recipe_columns_and_the_declared_metrics(tiny_split, tmp_path):
    # 1 and 2 epochs: the 1-epoch run is written on the way by the 2-epoch one (grid_search's shared prefix)
    args = grid_search.get_args_parser().parse_args(grid_flags(tmp_path, tiny_split.root, "--epochs", 1, 2,
                                                                          "--lr-base", 1e-4))
    grid_search.main(args)
    runs = sorted(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert len(runs) == 2

    root = experiment_in(tmp_path / "runs")  # beside the run folders: TensorBoard's run "."
    assert [h.name for h in root.hparam_infos] == COLUMNS  # the recipe's order, then num_classes and the split
    assert [h.name for h in root.hparam_infos if h.differs] == ["epochs"]  # what varies among the runs
    types = {h.name: h.type for h in root.hparam_infos}
    assert (types["epochs"], types["scratch"], types["model"]) == (
        api_pb2.DATA_TYPE_FLOAT64, api_pb2.DATA_TYPE_BOOL, api_pb2.DATA_TYPE_STRING)
    assert {m.name.tag: m.display_name for m in root.metric_infos} == METRICS
    assert list(METRICS) == [m.name.tag for m in root.metric_infos] == list(tblog.HPARAM_METRICS.values())

    for run in runs:
        assert experiment_in(run) == root  # the same copy in every run
        session = metadata.parse_session_start_info_plugin_data(
            plugin_content(run, metadata.SESSION_START_INFO_TAG)).hparams
        saved = json.loads((run / "hparams.json").read_text())
        assert set(session) == set(COLUMNS)
        for name in COLUMNS:
            field = tblog.value_type(saved[name])[0]
            shown = "null" if saved[name] is None else saved[name]  # the weights of a model that has none
            assert getattr(session[name], field) == shown, name  # a bool stays a bool, not 0/1
        end = metadata.parse_session_end_info_plugin_data(plugin_content(run, metadata.SESSION_END_INFO_TAG))
        assert end.status == api_pb2.STATUS_SUCCESS

    # what the dashboard gets: what varies first (TensorBoard 2.15+ sorts by the flag, then by name), the metrics
    # in order
    experiment, groups = dashboard(tmp_path / "runs")
    shown = [h.name for h in experiment.hparam_infos]
    assert shown[0] == "epochs" and sorted(shown) == sorted(COLUMNS)
    assert [m.display_name for m in experiment.metric_infos] == list(tblog.HPARAM_METRICS)
    assert sorted(g.name for g in groups) == [run.name for run in runs]  # one row per run, named after it
    for group in groups:
        saved = json.loads((tmp_path / "ckpt" / group.name / "metrics.json").read_text())
        values = {v.name.tag: v.value for v in group.metric_values}
        assert values == {tag: pytest.approx(saved[key]) for key, tag in tblog.HPARAM_METRICS.items()}
        assert group.hparams["epochs"].number_value == saved["epochs"]


def log_run(folder, hparams, metrics):
    logger = tblog.RunLogger(folder)
    logger.log_hparams(hparams, metrics, step=0)
    logger.close()


def test_the_root_summary_wins_over_the_one_an_older_run_holds(tmp_path):
    """A run logged before this change (torch's add_hparams: its own experiment, alphabetical columns,
    `hparam/*` metric names) sorts before the new runs; the root's summary still leads the table."""
    hparams = {"epochs": 2, "lr_fc": 1e-3, "lr_base": 1e-4, "seed": 107, "scratch": True, "model": "resnet18",
               "batch_size": 8, "auto_augment": "none", "num_classes": 4}
    metrics = {"best_val_acc": 0.5, "test_acc": 0.25, "test_mean_class_acc": 0.25, "epochs_run": 2}
    with SummaryWriter(str(tmp_path / "runs" / "a_published_run")) as old:
        for summary in torch_hparams(hparams, {tag: metrics[key] for key, tag in tblog.HPARAM_METRICS.items()}):
            old._get_file_writer().add_summary(summary)
    log_run(tmp_path / "runs" / "b_new_run", hparams, metrics)
    experiment, groups = dashboard(tmp_path / "runs")
    assert {h.name for h in experiment.hparam_infos if h.differs} == set(tblog.LEAD)  # torch's has no lead
    assert [m.display_name for m in experiment.metric_infos] == list(tblog.HPARAM_METRICS)
    assert {g.name for g in groups} == {"a_published_run", "b_new_run"}  # the older run keeps its row


def test_the_root_summary_is_rewritten_only_when_the_settings_change(tmp_path):
    hparams = {"epochs": 2, "scratch": False, "model": "resnet18"}
    tblog.write_experiment(tmp_path, hparams)
    path = tmp_path / tblog.EXPERIMENT_FILE
    first = path.stat()
    tblog.write_experiment(tmp_path, {**hparams, "epochs": 30})  # another run of the same recipe
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    tblog.write_experiment(tmp_path, {**hparams, "mixup": 0.2})  # a new setting: a new column
    assert [h.name for h in experiment_in(tmp_path).hparam_infos] == ["epochs", "scratch", "model", "mixup"]
    assert [p.name for p in tmp_path.iterdir()] == [tblog.EXPERIMENT_FILE]  # no temporary file left


def test_a_root_holding_the_experiment_summary_is_not_taken_for_a_run(tmp_path):
    """report.py --compare takes one run's folder: the root, whose only event file is the experiment summary,
    is refused as a root, while a run folder beside it is accepted."""
    hparams = {"epochs": 2, "lr_fc": 1e-3, "lr_base": 1e-4, "seed": 107, "scratch": True, "model": "resnet18"}
    metrics = {"best_val_acc": 0.5, "test_acc": 0.25, "test_mean_class_acc": 0.25, "epochs_run": 2}
    log_run(tmp_path / "runs" / "a_run", hparams, metrics)
    assert (tmp_path / "runs" / tblog.EXPERIMENT_FILE).is_file()
    assert check_run_folder(tmp_path / "runs" / "a_run", "--compare") == tmp_path / "runs" / "a_run"
    with pytest.raises(UserError, match="not a TensorBoard root"):
        check_run_folder(tmp_path / "runs", "--compare")


def test_the_experiment_summary_flags_what_varies_among_the_runs(tiny_split, tmp_path):
    """A grid over label smoothing ticks label_smoothing, not the fixed LEAD; a single run, the LEAD."""
    grid_search.main(grid_search.get_args_parser().parse_args(grid_flags(
        tmp_path / "g", tiny_split.root, "--lr-base", 1e-4, "--label-smoothing", 0, 0.1)))
    root = experiment_in(tmp_path / "g" / "runs")
    assert [h.name for h in root.hparam_infos if h.differs] == ["label_smoothing"]
    assert "split_sha256" in [h.name for h in root.hparam_infos]
    grid_search.main(grid_search.get_args_parser().parse_args(grid_flags(tmp_path / "one", tiny_split.root,
                                                                         "--lr-base", 1e-4)))
    alone = experiment_in(tmp_path / "one" / "runs")
    assert [h.name for h in alone.hparam_infos if h.differs] == list(tblog.LEAD)  # nothing varies yet
