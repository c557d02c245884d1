"""The grid, run: its plan (the product of every recipe setting's values, each checked as train.py checks it),
its runs (sequential here, or Ray Tune), its rows, its table and its choice on validation. grid_search.py's logic.

    search.run(grid_search.get_args_parser().parse_args(["--seeds", "107", "108"]))
"""
import argparse
import hashlib
import shlex
import sys
from pathlib import Path

from .. import recipe
from ..cli import check, flag
from ..data.split import ensure_split
from ..disk import check_file
from ..layout import chosen_path, run_paths
from ..recipe import OPTIONS, Range
from ..training import checkpoint, fit
from ..training.setup import check_args, check_classes, recipe_tag, resolve_model, shares_prefix
from ..utils import Interrupted, UserError
from . import results
from . import trials as grid
from .tables import console_grid_table, console_seed_table

PUBLISHED_LR_FC, PUBLISHED_LR_BASE = [1e-3, 5e-4], [1e-4, 1e-5]
# the grid's own numbers: what each takes
LIMITS = {"lr": recipe.SETTINGS["lr_fc"].limit, "cpus_per_trial": Range(1, text="at least 1"),
          "gpus_per_trial": Range(0, text="0 or more"),
          "max_concurrent": Range(1, text="at least 1"), "max_failures": Range(0, text="0 or more")}


def check_grid_args(args):
    """The grid's own flags, and each list of values, refused in one sentence before anything runs."""
    if args.lr is not None and (args.lr_fc is not None or args.lr_base is not None):
        raise UserError("--lr sets both learning rates: give it alone, or --lr-fc and --lr-base")
    for value in args.lr or []:
        check("lr", value, LIMITS["lr"])
    lists = {"epochs": args.epochs, "lr_fc": args.lr_fc, "lr_base": args.lr_base, "lr": args.lr, "seeds": args.seeds,
             **{k: getattr(args, k) for k in OPTIONS}}
    for key, values in lists.items():
        twice = next((v for i, v in enumerate(values or []) if v in values[:i]), None)
        if twice is not None:
            shown = ("on" if twice else "off") if isinstance(twice, bool) else twice
            raise UserError(f"{flag(key)} lists {shown} twice; give each value once")
    for key in ("cpus_per_trial", "gpus_per_trial", "max_concurrent", "max_failures"):
        check(key, getattr(args, key), LIMITS[key])
    check_file("--results", args.results)  # before the first run, not after the last


def run_args(args, settings):
    """train.py's namespace for one run: its defaults, this grid's paths and runtime flags, then `settings`."""
    targs = argparse.Namespace(**recipe.defaults())
    for key, value in vars(args).items():
        if hasattr(targs, key) and key not in recipe.RECIPE:
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
    return run_paths(trial.run_name, args.ckpt_dir, args.logdir).last


def file_sha256(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def plan_trials(args, split_sha256):
    """This grid's trials: the product of every recipe setting's values (published axes fastest) for each seed,
    each checked and resolved as train.py would, so a bad value stops the grid before its first run. Values of a
    setting the recipe ignores (recipe.unused: SGD momentum for Adam, ...) are not multiplied: such
    configurations are one trial, recorded with the setting's default."""
    lrs = ([{"lr_fc": lr, "lr_base": lr} for lr in args.lr] if args.lr else
           grid.configurations([("lr_fc", args.lr_fc or PUBLISHED_LR_FC),
                                ("lr_base", args.lr_base or PUBLISHED_LR_BASE)]))
    axes = [(k, getattr(args, k)) for k in OPTIONS] + [("epochs", args.epochs), ("lrs", lrs)]
    configs = [{**{k: v for k, v in c.items() if k != "lrs"}, **c["lrs"]} for c in grid.configurations(axes)]
    weights = {}  # a fine-tuning run's local weights file decides its numbers: its fingerprint joins the recipe
    defaults = recipe.defaults()
    trials, ignored = [], set()
    for seed in args.seeds:
        seen = set()
        for config in configs:
            targs = run_args(args, {**config, "seed": seed})
            check_args(targs)
            resolve_model(targs)
            # configurations that differ only in a setting their recipe ignores are one run, at its default
            for key in recipe.unused(vars(targs)):
                setattr(targs, key, defaults[key])
                if len(getattr(args, key)) > 1:
                    ignored.add(key)
            options = [(k, getattr(targs, k)) for k in OPTIONS if k != "scratch"]
            if not targs.scratch and targs.weights:
                weights.setdefault(targs.weights, file_sha256(targs.weights))
                options.append(("weights_sha256", weights[targs.weights]))
            distinct = (targs.epochs, targs.lr_fc, targs.lr_base, targs.scratch, tuple(options))
            if distinct in seen:
                continue
            seen.add(distinct)
            trials.append(grid.Trial(len(seen), targs.epochs, targs.lr_fc, targs.lr_base, seed, targs.scratch,
                                     recipe_tag(targs), tuple(options), split_sha256))
    if ignored:
        flags = ", ".join(map(flag, sorted(ignored)))
        print(f"grid: {len(configs)} configurations are {len(seen)} distinct recipes: {flags} "
              f"{'changes' if len(ignored) == 1 else 'change'} nothing in some of them, which run once")
    return trials


def varying(trials):
    """The settings (beside epochs, learning rates and seed, always shown) whose values differ between trials."""
    return [k for k in OPTIONS if len({t.settings.get(k) for t in trials}) > 1]


def plan_groups(trials, args):
    """The training runs that cover `trials`, as groups [shorter trials..., longest]: one group per set
    of trials that differ only in --epochs when the shorter ones are exactly the longest's first epochs
    (setup.shares_prefix: a step schedule, not cosine); every other trial alone. A shorter trial that
    has a last.pth of its own (from a run made without sharing), or whose epochs the longest has already
    passed, resumes on its own too."""
    if not args.share_prefixes:
        return [[t] for t in trials]
    groups, alone = [], []
    for *shorter, longest in grid.prefix_groups(trials):
        targs = trial_args(args, longest)
        done = checkpoint.load(last_path(args, longest))["epoch"] if targs.resume else 0
        shared = [t for t in shorter if shares_prefix(targs, t.epochs) and t.epochs > done
                  and not last_path(args, t).exists()]
        groups.append([*shared, longest])
        alone.extend([t] for t in shorter if t not in shared)
    return groups + alone


def run_group(args, group, on_epoch=None, on_result=None):
    """Train one group with fit.train: its longest trial, with the shorter ones as its horizons.
    `on_result(trial, metrics)` is called for each trial as it finishes, shortest first."""
    *shorter, longest = group
    by_name = {t.run_name: t for t in shorter}
    metrics = fit.train(trial_args(args, longest), on_epoch=on_epoch,
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


def run(args):
    """grid_search.py's flags -> the grid run, its rows and table printed, its choices copied; returns
    {rows, best, best_checkpoint, best_checkpoints}."""
    check_grid_args(args)
    # The split comes first: its fingerprint is part of every row's identity.
    split = ensure_split(args.data, source=args.source)
    check_classes(split, args.data)
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
            from . import ray_tune  # Ray is optional: imported only when asked for
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
            copies[grid.copy_best(chosen, args.ckpt_dir, chosen_path(args.results, args.ckpt_dir, scratch))] = chosen
    print(f"\nresults ({args.results}; * = chosen on validation accuracy):")
    print(console_grid_table(rows, best, varying(trials)))
    if len(args.seeds) > 1:
        print(f"\nper configuration over {len(args.seeds)} seeds:")
        print(console_seed_table(grid.seed_stats(rows)))
    for dest, chosen in copies.items():
        print(f"\nbest {'from-scratch' if chosen['Scratch'] == 'True' else 'fine-tuned'} run {chosen['Run']}: "
              f"val {float(chosen['Best_Val_Acc']):.4f}, test {float(chosen['Test_Acc']):.4f} (mean per-class "
              f"{float(chosen['Test_Mean_Class_Acc']):.4f}); its best.pth copied to {dest}")
    dest = next(d for d, chosen in copies.items() if chosen is best)
    return {"rows": rows, "best": best, "best_checkpoint": str(dest), "best_checkpoints": [str(d) for d in copies]}


