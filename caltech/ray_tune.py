"""The grid's Ray Tune backend: each trial is one train.main(args) in a Ray worker, several at a time.

    python grid_search.py --backend ray                          # one trial per GPU on this machine
    python grid_search.py --backend ray --gpus-per-trial 0.25    # four trials share each GPU
    python grid_search.py --backend ray --address auto           # join a cluster made with `ray start`

Rows reach the results CSV from the driver as each trial finishes, exactly as with the sequential
backend, so grid_search.py's resume, best-checkpoint choice and table are the same for both. A
crashed trial is retried (--max-failures) from its own last.pth. Tune's own files (per-trial
result.json / progress.csv, experiment state) go to CKPT_DIR/ray_results/{grid,scratch}_<timestamp>,
a new folder per invocation; they are a record only, never read back.
"""
import copy
import os
from datetime import datetime
from pathlib import Path

import torch

import train

from .utils import UserError

ROOT = Path(__file__).resolve().parents[1]  # holds train.py and caltech/: what workers must import
FINAL = "grid_final"  # marks the report that carries a trial's test metrics
FAIL_ONCE_ENV = "CALTECH_TEST_FAIL_ONCE"  # test hook: see _fail_once


def run_trials(todo, args, trial_args, on_result):
    """Run the trials `todo` with Ray Tune; `on_result(trial, metrics)` is called in this process as each ends."""
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
        writer = row_writer(tune, todo, on_result)
        results = make_tuner(tune, todo, args, trial_args, writer).fit()
    finally:
        if started:
            ray.shutdown()
    failed = [todo[r.config["trial"]].run_name for r in results
              if r.error is not None and r.config["trial"] not in writer.written]
    if failed:
        raise UserError(f"{len(failed)} run(s) failed after {args.max_failures} retries: {', '.join(failed)} "
                        f"(tracebacks above and in {storage_path(args)}); rerun the same command to resume them")


def init_ray(address=None, num_cpus=None):
    """Join `address`, or start a local Ray ("local": never attach by surprise to a `ray start` cluster)."""
    import ray
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    # Workers start in Ray's own folders: PYTHONPATH lets them import train and caltech from this checkout
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


def make_tuner(tune, todo, args, trial_args, writer):
    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else (1 if torch.cuda.is_available() else 0)
    fn = tune.with_parameters(trainable, trials=todo, args=args, trial_args=trial_args,
                              fail_once=os.environ.get(FAIL_ONCE_ENV))

    def run_name(tune_trial):  # Tune's folders and messages then use our run names
        return todo[tune_trial.config["trial"]].run_name
    return tune.Tuner(
        tune.with_resources(fn, {"cpu": args.cpus_per_trial, "gpu": gpus}),
        param_space={"trial": tune.grid_search(list(range(len(todo))))},
        tune_config=tune.TuneConfig(max_concurrent_trials=args.max_concurrent, trial_name_creator=run_name,
                                    trial_dirname_creator=run_name),
        run_config=tune.RunConfig(
            # A new experiment per invocation: a killed driver's folder is never resumed nor in the way;
            # the CSV, not Tune's state, says which trials are done.
            name=f"{'scratch' if args.scratch else 'grid'}_{datetime.now().strftime('%Y%m%d_%H%M%S_%f')}",
            storage_path=str(storage_path(args)), callbacks=[writer], verbose=0,
            failure_config=tune.FailureConfig(max_failures=args.max_failures)))


def row_writer(tune, todo, on_result):
    class RowWriter(tune.Callback):
        """Hands each trial's final metrics to on_result in the driver once, as soon as they arrive."""

        def __init__(self):
            self.written = set()  # trial indices; Tune may deliver a trial's last result twice

        def on_trial_result(self, iteration, trials, trial, result, **info):
            index = trial.config["trial"]
            if result.get(FINAL) and index not in self.written:
                on_result(todo[index], result)
                self.written.add(index)
                print(f"grid: {todo[index].run_name} finished ({len(self.written)}/{len(todo)} of this invocation)")
    return RowWriter()


def trainable(config, trials, args, trial_args, fail_once=None):
    """One trial in a Ray worker: train.py's main with this trial's flags, reporting every epoch to Tune."""
    from ray import tune
    trial = trials[config["trial"]]
    targs = trial_args(args, trial)  # here, not in the driver: a retried trial finds its last.pth and resumes
    targs.threads = args.threads or args.cpus_per_trial  # torch would otherwise use every core of the node

    def report(stats):
        tune.report({**stats, FINAL: False})
        _fail_once(fail_once)
    metrics = train.main(targs, on_epoch=report)
    tune.report({**metrics, FINAL: True})


def _fail_once(marker):
    """Test hook ($CALTECH_TEST_FAIL_ONCE=path): the first trial to get here creates `path` and crashes,
    after its epoch's checkpoint is on disk, so tests can watch a retry resume from last.pth."""
    if not marker:
        return
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))  # atomic: one crash, whichever trial is first
    except FileExistsError:
        return
    raise RuntimeError(f"{FAIL_ONCE_ENV}: crashing once on purpose")
