"""Grid search: the published grid (epochs x lr_fc x lr_base) by default, or the Cartesian product of any recipe
settings given several values, each configuration once per --seeds value, every run through train.py's loop.

    python grid_search.py                          # the published 8 runs, fine-tuning
    python grid_search.py --seeds 107 108 109      # every configuration three times: seed noise
    python grid_search.py --scratch --epochs 30 --lr 1e-3 2e-3 --optimizer adam adamw   # 4 from-scratch runs

Every recipe flag of train.py takes several values here (--image-size 112 224, --tta off on, ...); the published
axes vary fastest, so a grid that varies nothing else keeps the published experiment numbers. --lr ties the two
learning rates (one rate for every layer, as from-scratch runs want) instead of crossing --lr-fc with --lr-base.
A setting that changes nothing in a configuration (--momentum without SGD, --step-size and --gamma under cosine,
--min-scale without the resized crop) does not multiply it: `--optimizer adam sgd --momentum 0.9 0.8` is 3 runs.

One row per run is appended to --results, with the run's full recipe (Settings) and the SHA-256 of its
split.csv: a finished row is reused only for exactly those settings and that split, and the table printed
shows this grid's rows only. The best run on validation (never on test) has its best.pth copied to
CKPT_DIR/best.pth (best_scratch.pth for from-scratch runs) for the default --results, the file evaluate.py
and predict.py read by default; a grid with another --results keeps its choice beside that file instead
(other.csv: other_best.pth). Runs that differ only in --epochs are trained once, to the longest: with the
step schedule a 20-epoch run is exactly the first 20 epochs of the 30-epoch one, so the published grid
trains 120 epochs instead of 200 (each run still gets its own checkpoints, logs, test evaluation and row).
Rerunning the same command after a kill skips finished runs and resumes an interrupted one from its last.pth.
"""
import argparse
import hashlib
import math
import shlex
import sys
from pathlib import Path

import train
from caltech import checkpoint, grid, results, tables
from caltech.split import ensure_split
from caltech.utils import Interrupted, UserError, run_cli

PUBLISHED_LR_FC, PUBLISHED_LR_BASE = [1e-3, 5e-4], [1e-4, 1e-5]
# train.RECIPE's settings beside the published axes: they vary slowest, so the published numbering holds
OTHER_SETTINGS = [k for k in train.RECIPE if k not in (*grid.AXES, "seed")]


def get_args_parser(add_help=True):
    parser = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("the grid (published values by default)")
    group.add_argument("--epochs", type=int, nargs="+", default=[20, 30], help="epochs values (default: 20 30)")
    group.add_argument("--lr-fc", type=float, nargs="+", default=None,
                       help=f"learning rates of the new fc (default: {' '.join(map(str, PUBLISHED_LR_FC))})")
    group.add_argument("--lr-base", type=float, nargs="+", default=None,
                       help="learning rates of the other layers, crossed with --lr-fc "
                            f"(default: {' '.join(map(str, PUBLISHED_LR_BASE))})")
    group.add_argument("--lr", type=float, nargs="+", default=None,
                       help="one learning rate for every layer (lr_fc = lr_base), one run per value, instead of "
                            "--lr-fc x --lr-base: for training from scratch, where a lower body rate has nothing "
                            "to preserve (default: off)")
    group.add_argument("--seeds", type=int, nargs="+", default=[107],
                       help="repeat every configuration once per seed (default: 107)")
    group.add_argument("--results", default=results.DEFAULT_RESULTS,
                       help=f"results CSV, one row per run (default: {results.DEFAULT_RESULTS})")
    group.add_argument("--share-prefixes", action=argparse.BooleanOptionalAction, default=True,
                       help="train runs that differ only in --epochs once, to the longest, and save, test and "
                            "record the shorter ones on the way; only where that is exact, i.e. their learning "
                            "rates are the longest's first ones (step schedule: yes; cosine: no) (default: on)")
    group.add_argument("--fresh", action="store_true",
                       help="forget this grid's rows, logs and checkpoints and start over (default: resume)")
    # every recipe flag takes one or more values (on/off for switches: --scratch alone is on)
    train.add_data_args(parser, several=True)
    train.add_recipe_args(parser, several=True)
    train.add_runtime_args(parser)
    train.add_output_args(parser)
    group = parser.add_argument_group("backend")
    group.add_argument("--backend", choices=("sequential", "ray"), default="sequential",
                       help="sequential: one run after another in this process; ray: parallel trials "
                            "with Ray Tune, see README 'Scaling out' (default: sequential)")
    group.add_argument("--address", default=None,
                       help="ray: cluster to join, e.g. auto (default: start a local Ray)")
    group.add_argument("--gpus-per-trial", type=float, default=None,
                       help="ray: GPUs per trial, fractions share a GPU (default: 1 if there is a GPU, else 0)")
    group.add_argument("--cpus-per-trial", type=int, default=1,
                       help="ray: CPU cores (and torch threads) per trial (default: 1)")
    group.add_argument("--max-concurrent", type=int, default=None,
                       help="ray: trials at once (default: as many as the resources allow)")
    group.add_argument("--max-failures", type=int, default=2,
                       help="ray: retries of a crashed trial, each from its last.pth (default: 2)")
    return parser


def check_grid_args(args):
    """The grid's own flags, and each list of values, refused in one sentence before anything runs."""
    if args.lr is not None and (args.lr_fc is not None or args.lr_base is not None):
        raise UserError("--lr sets both learning rates: give it alone, or --lr-fc and --lr-base")
    for value in args.lr or []:
        if not (math.isfinite(value) and value > 0):
            raise UserError(f"--lr {value} is out of range: it must be a positive number")
    lists = {"epochs": args.epochs, "lr_fc": args.lr_fc, "lr_base": args.lr_base, "lr": args.lr, "seeds": args.seeds,
             **{k: getattr(args, k) for k in OTHER_SETTINGS}}
    for key, values in lists.items():
        twice = next((v for i, v in enumerate(values or []) if v in values[:i]), None)
        if twice is not None:
            shown = ("on" if twice else "off") if isinstance(twice, bool) else twice
            raise UserError(f"{train.flag(key)} lists {shown} twice; give each value once")
    ray = {"cpus_per_trial": (args.cpus_per_trial >= 1, "at least 1"),
           "gpus_per_trial": (args.gpus_per_trial is None or args.gpus_per_trial >= 0, "0 or more"),
           "max_concurrent": (args.max_concurrent is None or args.max_concurrent >= 1, "at least 1"),
           "max_failures": (args.max_failures >= 0, "0 or more")}
    for key, (ok, valid) in ray.items():
        if not ok:
            raise UserError(f"{train.flag(key)} {getattr(args, key)} is out of range: it must be {valid}")
    if Path(args.results).is_dir():
        raise UserError(f"--results {args.results} is a folder; pass a CSV file name")


def run_args(args, settings):
    """train.py's namespace for one run: its defaults, this grid's paths and runtime flags, then `settings`."""
    targs = train.get_args_parser().parse_args([])
    for key, value in vars(args).items():
        if hasattr(targs, key) and key not in train.RECIPE:
            setattr(targs, key, value)
    for key, value in settings.items():
        if hasattr(targs, key):  # weights_sha256 is a fingerprint, not a flag
            setattr(targs, key, value)
    return targs


def trial_args(args, trial):
    """train.py's namespace for one trial: its settings, its run name, and --resume when it has a last.pth."""
    targs = run_args(args, trial.settings)
    targs.run_name = trial.run_name
    targs.resume = last_path(args, trial).exists()
    return targs


def last_path(args, trial):
    return checkpoint.run_paths(trial.run_name, args.ckpt_dir, args.logdir).last


def file_sha256(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def plan_trials(args, split_sha256):
    """This grid's trials: the product of every recipe setting's values (published axes fastest) for each seed,
    each checked and resolved as train.py would, so a bad value stops the grid before its first run. Values of a
    setting the recipe ignores (train.UNUSED_WHEN: SGD momentum for Adam, ...) are not multiplied: such
    configurations are one trial, recorded with the setting's default."""
    lrs = ([{"lr_fc": lr, "lr_base": lr} for lr in args.lr] if args.lr else
           grid.configurations([("lr_fc", args.lr_fc or PUBLISHED_LR_FC),
                                ("lr_base", args.lr_base or PUBLISHED_LR_BASE)]))
    axes = [(k, getattr(args, k)) for k in OTHER_SETTINGS] + [("epochs", args.epochs), ("lrs", lrs)]
    configs = [{**{k: v for k, v in c.items() if k != "lrs"}, **c["lrs"]} for c in grid.configurations(axes)]
    weights = {}  # a fine-tuning run's local weights file decides its numbers: its fingerprint joins the recipe
    defaults = train.default_settings()
    trials, ignored = [], set()
    for seed in args.seeds:
        seen = set()
        for config in configs:
            targs = run_args(args, {**config, "seed": seed})
            train.check_args(targs)
            train.resolve_model(targs)
            # configurations that differ only in a setting their recipe ignores are one run, at its default
            for key in train.unused_settings(targs):
                setattr(targs, key, defaults[key])
                if len(getattr(args, key)) > 1:
                    ignored.add(key)
            options = [(k, getattr(targs, k)) for k in OTHER_SETTINGS if k != "scratch"]
            if not targs.scratch and targs.weights:
                weights.setdefault(targs.weights, file_sha256(targs.weights))
                options.append(("weights_sha256", weights[targs.weights]))
            recipe = (targs.epochs, targs.lr_fc, targs.lr_base, targs.scratch, tuple(options))
            if recipe in seen:
                continue
            seen.add(recipe)
            trials.append(grid.Trial(len(seen), targs.epochs, targs.lr_fc, targs.lr_base, seed, targs.scratch,
                                     train.recipe_tag(targs), tuple(options), split_sha256))
    if ignored:
        flags = ", ".join(map(train.flag, sorted(ignored)))
        print(f"grid: {len(configs)} configurations are {len(seen)} distinct recipes: {flags} "
              f"{'changes' if len(ignored) == 1 else 'change'} nothing in some of them, which run once")
    return trials


def varying(trials):
    """The settings (beside epochs, learning rates and seed, always shown) whose values differ between trials."""
    return [k for k in OTHER_SETTINGS if len({t.settings.get(k) for t in trials}) > 1]


def plan_groups(trials, args):
    """The training runs that cover `trials`, as groups [shorter trials..., longest]: one group per set
    of trials that differ only in --epochs when the shorter ones are exactly the longest's first epochs
    (train.shares_prefix: a step schedule, not cosine); every other trial alone. A shorter trial that
    has a last.pth of its own (from a run made without sharing), or whose epochs the longest has already
    passed, resumes on its own too."""
    if not args.share_prefixes:
        return [[t] for t in trials]
    groups, alone = [], []
    for *shorter, longest in grid.prefix_groups(trials):
        targs = trial_args(args, longest)
        done = checkpoint.load(last_path(args, longest))["epoch"] if targs.resume else 0
        shared = [t for t in shorter if train.shares_prefix(targs, t.epochs) and t.epochs > done
                  and not last_path(args, t).exists()]
        groups.append([*shared, longest])
        alone.extend([t] for t in shorter if t not in shared)
    return groups + alone


def run_group(args, group, on_epoch=None, on_result=None):
    """Train one group with train.main: its longest trial, with the shorter ones as its horizons.
    `on_result(trial, metrics)` is called for each trial as it finishes, shortest first."""
    *shorter, longest = group
    by_name = {t.run_name: t for t in shorter}
    metrics = train.main(trial_args(args, longest), on_epoch=on_epoch,
                         horizons={t.epochs: t.run_name for t in shorter},
                         on_horizon=lambda m: on_result(by_name[m["run"]], m))
    on_result(longest, metrics)


def run_sequential(groups, args, on_result):
    for i, group in enumerate(groups, 1):
        also = f" (and on its way {', '.join(t.run_name for t in group[:-1])})" if len(group) > 1 else ""
        print(f"\n=== run {i}/{len(groups)}: {group[-1].run_name}{also} ===")
        run_group(args, group, on_result=on_result)


def same_command():
    """The command that resumes this grid: the one that started it."""
    if Path(sys.argv[0]).name == "grid_search.py":
        return shlex.join(["python", "grid_search.py", *sys.argv[1:]])
    return "the same grid_search.py command"


def main(args):
    check_grid_args(args)
    # The split comes first: its fingerprint is part of every row's identity.
    split = ensure_split(args.data, train.DEFAULT_DATA, args.source)
    train.check_classes(split, args.data)
    trials = plan_trials(args, split.sha256)
    if args.fresh:
        grid.forget(args.results, trials, args.logdir, args.ckpt_dir)
    previous = results.read_rows(args.results)
    unknown = sum(results.row_key(r) is None for r in previous)
    if unknown:
        print(f"grid: {unknown} row(s) of {args.results} do not record their settings and split (written by an "
              "older version): they are never reused, and these runs get rows of their own")
    done = {results.row_key(r) for r in previous}
    todo = [t for t in trials if t.key not in done]
    print(f"grid: {len(trials)} runs, {len(trials) - len(todo)} already in {args.results}, {len(todo)} to do")
    groups = plan_groups(todo, args)
    if len(groups) < len(todo):
        print(f"grid: runs that differ only in --epochs share their first epochs: {len(groups)} trainings, "
              f"{sum(g[-1].epochs for g in groups)} epochs instead of {sum(t.epochs for t in todo)}")

    def on_result(trial, metrics):
        results.append_result(args.results, results.make_row(trial, metrics))

    try:
        if todo and args.backend == "ray":
            from caltech import ray_tune  # Ray is optional: imported only when asked for
            ray_tune.run_trials(groups, args, run_group, on_result)
        elif todo:
            run_sequential(groups, args, on_result)
    except Interrupted as e:
        finished = sum(results.row_key(r) in {t.key for t in trials} for r in results.read_rows(args.results))
        raise Interrupted(f"{e.what}; {finished} of this grid's {len(trials)} runs are finished in {args.results}",
                          resume=same_command()) from None

    # This grid's rows in its own order and numbering: a row made by another grid with the same settings
    # and split (its Experiment numbered there) is this grid's too.
    found = {results.row_key(r): r for r in results.read_rows(args.results)}
    rows = [{**found[t.key], "Experiment": str(t.experiment)} for t in trials if t.key in found]
    if len(rows) != len(trials):
        raise UserError(f"only {len(rows)} of {len(trials)} runs finished; rerun the same command to resume")
    best = grid.choose_best(rows)
    copies = {}
    for scratch in (False, True):  # one choice per mode: fine-tuned runs and from-scratch runs are compared
        mode = [r for r in rows if (r["Scratch"] == "True") == scratch]
        if mode:
            chosen = grid.choose_best(mode)
            copies[grid.copy_best(chosen, args.ckpt_dir, grid.best_path(args.results, args.ckpt_dir, scratch))] = chosen
    print(f"\nresults ({args.results}; * = chosen on validation accuracy):")
    print(tables.console_grid_table(rows, best, varying(trials)))
    if len(args.seeds) > 1:
        print(f"\nper configuration over {len(args.seeds)} seeds:")
        print(tables.console_seed_table(grid.seed_stats(rows)))
    for dest, chosen in copies.items():
        print(f"\nbest {'from-scratch' if chosen['Scratch'] == 'True' else 'fine-tuned'} run {chosen['Run']}: "
              f"val {float(chosen['Best_Val_Acc']):.4f}, test {float(chosen['Test_Acc']):.4f} (mean per-class "
              f"{float(chosen['Test_Mean_Class_Acc']):.4f}); its best.pth copied to {dest}")
    dest = next(d for d, chosen in copies.items() if chosen is best)
    return {"rows": rows, "best": best, "best_checkpoint": str(dest), "best_checkpoints": [str(d) for d in copies]}


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
