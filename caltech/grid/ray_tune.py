"""The grid's Ray Tune backend: each Tune trial runs one group of grid trials in a Ray worker, several at a time.

    python grid_search.py --backend ray                          # one trial per GPU on this machine
    python grid_search.py --backend ray --gpus-per-trial 0.25    # four trials share each GPU
    python grid_search.py --backend ray --address auto           # join a cluster made with `ray start`

A group is what one training run covers (search.run_group: trials that differ only in --epochs
share their first epochs); the driver hands the callable that trains it to `run_trials`, so this
module knows nothing of the scripts. Rows reach the results CSV from the driver as each grid trial
finishes, exactly as with the sequential backend, so grid_search.py's resume, best-checkpoint choice
and table are the same for both. A crashed group is retried (--max-failures) from its own last.pth.
Tune's own files (per-trial result.json / progress.csv, experiment state) go to
CKPT_DIR/ray_results/{grid,scratch}_<timestamp>, a new folder per invocation; they are a record
only, never read back.
"""
import copy
import os
from datetime import datetime
from pathlib import Path

import torch

from ..utils import UserError

ROOT = Path(__file__).resolve().parents[2]  # holds the scripts and caltech/: what workers must import
FINAL = "grid_final"  # marks a report that carries a grid trial's test metrics


def run_trials(groups, args, run_group, on_result):
    """Run `groups` (lists of grid trials, the longest last) with Ray Tune, one Tune trial per group.

    `run_group(args, group, on_epoch, on_result)` trains a group in a worker and calls its `on_result`
    for each of the group's trials there; `on_result(trial, metrics)` is called in this process as
    each grid trial ends."""
    # Each trial's epoch lines differ only in numbers, which Ray's log deduplication would fold into one.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import ray
        from ray import tune
    except ImportError:
        raise UserError("--backend ray needs Ray Tune: pip install -r requirements-ray.txt") from None
    args = absolute_paths(args)
    started = not ray.is_initialized()  # a caller's (or a test's) Ray is reused and left running
    if started:
        init_ray(args.address)
    try:
        writer = row_writer(tune, groups, on_result)
        results = make_tuner(tune, groups, args, run_group, writer).fit()
    finally:
        if started:
            ray.shutdown()
    failed = [t.run_name for r in results if r.error is not None
              for t in groups[r.config["group"]] if t.run_name not in writer.written]
    if failed:
        raise UserError(f"{len(failed)} run(s) failed after {args.max_failures} retries: {', '.join(failed)} "
                        f"(tracebacks above and in {storage_path(args)}); rerun the same command to resume them")


def init_ray(address=None, num_cpus=None):
    """Join `address`, or start a local Ray ("local": never attach by surprise to a `ray start` cluster)."""
    import ray
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    # Workers start in Ray's own folders: PYTHONPATH lets them import the scripts and caltech from this checkout
    # (on a cluster, the checkout must be at the same path on every node).
    ray.init(address=address or "local", num_cpus=None if address else num_cpus, include_dashboard=False,
             log_to_driver=True, runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})


def absolute_paths(args):
    """A copy of the grid's flags with every path absolute: workers do not run in this process's cwd."""
    args = copy.copy(args)
    for key in ("data", "logdir", "ckpt_dir", "cache_dir", "weights", "source"):
        if getattr(args, key, None):
            setattr(args, key, str(Path(getattr(args, key)).expanduser().resolve()))
    return args


def storage_path(args):
    # Under --ckpt-dir, not --logdir: Tune writes TensorBoard events of its own, which would show every run twice.
    return Path(args.ckpt_dir) / "ray_results"


def make_tuner(tune, groups, args, run_group, writer):
    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else (1 if torch.cuda.is_available() else 0)
    fn = tune.with_parameters(trainable, groups=groups, args=args, run_group=run_group)

    def run_name(tune_trial):  # Tune's folders and messages then use our run names (a group's: its longest)
        return groups[tune_trial.config["group"]][-1].run_name
    return tune.Tuner(
        tune.with_resources(fn, {"cpu": args.cpus_per_trial, "gpu": gpus}),
        param_space={"group": tune.grid_search(list(range(len(groups))))},
        tune_config=tune.TuneConfig(max_concurrent_trials=args.max_concurrent, trial_name_creator=run_name,
                                    trial_dirname_creator=run_name),
        run_config=tune.RunConfig(
            # A new experiment per invocation: a killed driver's folder is never resumed nor in the way;
            # the CSV, not Tune's state, says which trials are done.
            name=f"{'scratch' if all(t.scratch for g in groups for t in g) else 'grid'}_"
                 f"{datetime.now().strftime('%Y%m%d_%H%M%S_%f')}",
            storage_path=str(storage_path(args)), callbacks=[writer], verbose=0,
            failure_config=tune.FailureConfig(max_failures=args.max_failures)))


def row_writer(tune, groups, on_result):
    by_name = {t.run_name: t for group in groups for t in group}

    class RowWriter(tune.Callback):
        """Hands each grid trial's final metrics to on_result in the driver once, as soon as they arrive."""

        def __init__(self):
            self.written = set()  # run names; a retried group reports its finished trials again

        def on_trial_result(self, iteration, trials, trial, result, **info):  # Tune passes these by name
            run = result.get("run")
            if result.get(FINAL) and run not in self.written:
                on_result(by_name[run], result)
                self.written.add(run)
                print(f"grid: {run} finished ({len(self.written)}/{len(by_name)} of this invocation)")
    return RowWriter()


def trainable(config, groups, args, run_group):
    """One group in a Ray worker, reporting every epoch and each grid trial's test metrics to Tune."""
    from ray import tune
    args = copy.copy(args)
    args.threads = args.threads or args.cpus_per_trial  # torch would otherwise use every core of the node
    # Trial namespaces are made here, not in the driver: a retried group finds its last.pth and resumes.
    run_group(args, groups[config["group"]], on_epoch=lambda stats: tune.report({**stats, FINAL: False}),
              on_result=lambda trial, metrics: tune.report({**metrics, FINAL: True}))
