"""The published hyperparameter grid: epochs x lr_fc x lr_base (x seeds), each run through train.py.

    python grid_search.py                          # the published 8 runs, fine-tuning
    python grid_search.py --seeds 107 108 109      # every configuration three times: seed noise
    python grid_search.py --scratch --epochs 30 --lr-fc 1e-3 --lr-base 1e-4   # from-scratch grid

One row per run is appended to --results; the best run on validation (never on test) has its
best.pth copied to CKPT_DIR/best.pth (best_scratch.pth with --scratch). Runs that differ only in
--epochs are trained once, to the longest: with the step schedule a 20-epoch run is exactly the
first 20 epochs of the 30-epoch one, so the published grid trains 120 epochs instead of 200 (each
run still gets its own checkpoints, logs, test evaluation and row). Rerunning the same command
after a kill skips finished runs and resumes an interrupted one from its last.pth.
"""
import argparse
from pathlib import Path

import train
from caltech import checkpoint, grid, tables
from caltech.split import ensure_split
from caltech.utils import UserError, run_cli


def get_args_parser(add_help=True):
    parser = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("the grid (published values by default)")
    group.add_argument("--epochs", type=int, nargs="+", default=[20, 30], help="epochs values (default: 20 30)")
    group.add_argument("--lr-fc", type=float, nargs="+", default=[1e-3, 5e-4],
                       help="learning rates of the new fc (default: 1e-3 5e-4)")
    group.add_argument("--lr-base", type=float, nargs="+", default=[1e-4, 1e-5],
                       help="learning rates of the other layers (default: 1e-4 1e-5)")
    group.add_argument("--seeds", type=int, nargs="+", default=[107],
                       help="repeat every configuration once per seed (default: 107)")
    group.add_argument("--results", default="grid_search_results.csv",
                       help="results CSV, one row per run (default: grid_search_results.csv)")
    group.add_argument("--share-prefixes", action=argparse.BooleanOptionalAction, default=True,
                       help="train runs that differ only in --epochs once, to the longest, and save, test and "
                            "record the shorter ones on the way; only where that is exact, i.e. their learning "
                            "rates are the longest's first ones (step schedule: yes; cosine: no) (default: on)")
    group.add_argument("--fresh", action="store_true",
                       help="forget this grid's rows, logs and checkpoints and start over (default: resume)")
    train.add_data_args(parser)
    train.add_recipe_args(parser)
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


def trial_args(args, trial):
    """train.py's namespace for one trial: its defaults, this grid's pass-through flags, the trial's values."""
    targs = train.get_args_parser().parse_args([])
    for key, value in vars(args).items():
        if hasattr(targs, key) and key not in ("epochs", "lr_fc", "lr_base"):
            setattr(targs, key, value)
    targs.epochs, targs.lr_fc, targs.lr_base, targs.seed = trial.epochs, trial.lr_fc, trial.lr_base, trial.seed
    targs.run_name = trial.run_name
    targs.resume = (Path(args.ckpt_dir) / trial.run_name / "last.pth").exists()
    return targs


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
        done = checkpoint.load(Path(args.ckpt_dir) / longest.run_name / "last.pth")["epoch"] if targs.resume else 0
        shared = [t for t in shorter if train.shares_prefix(targs, t.epochs) and t.epochs > done
                  and not (Path(args.ckpt_dir) / t.run_name / "last.pth").exists()]
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


def main(args):
    trials = grid.make_trials(args.epochs, args.lr_fc, args.lr_base, args.seeds, args.scratch, train.recipe_tag(args))
    if args.fresh:
        grid.forget(args.results, trials, args.logdir, args.ckpt_dir)
    done = {grid.row_key(r) for r in grid.read_results(args.results)}
    todo = [t for t in trials if t.key not in done]
    print(f"grid: {len(trials)} runs, {len(trials) - len(todo)} already in {args.results}, {len(todo)} to do")
    groups = plan_groups(todo, args)
    if len(groups) < len(todo):
        print(f"grid: runs that differ only in --epochs share their first epochs: {len(groups)} trainings, "
              f"{sum(g[-1].epochs for g in groups)} epochs instead of {sum(t.epochs for t in todo)}")
    if todo:
        ensure_split(args.data, train.DEFAULT_DATA, args.source)  # once, before any run needs it

    def on_result(trial, metrics):
        grid.append_result(args.results, grid.make_row(trial, metrics))

    if todo and args.backend == "ray":
        from caltech import ray_tune  # Ray is optional: imported only when asked for
        ray_tune.run_trials(groups, args, run_group, on_result)
    elif todo:
        run_sequential(groups, args, on_result)

    keys = {t.key for t in trials}
    rows = [r for r in grid.read_results(args.results) if grid.row_key(r) in keys]
    if len(rows) != len(trials):
        raise UserError(f"only {len(rows)} of {len(trials)} runs finished; rerun the same command to resume")
    best = grid.choose_best(rows)
    dest = grid.copy_best(best, args.ckpt_dir, "best_scratch.pth" if args.scratch else "best.pth")
    print(f"\nresults ({args.results}; * = chosen on validation accuracy):")
    print(tables.console_grid_table(sorted(rows, key=lambda r: (int(r['Experiment']), int(r['Seed']))), best))
    if len(args.seeds) > 1:
        print(f"\nper configuration over {len(args.seeds)} seeds:")
        print(tables.console_seed_table(grid.seed_stats(rows)))
    print(f"\nbest run {best['Run']}: val {float(best['Best_Val_Acc']):.4f}, test {float(best['Test_Acc']):.4f} "
          f"(mean per-class {float(best['Test_Mean_Class_Acc']):.4f}); its best.pth copied to {dest}")
    return {"rows": rows, "best": best, "best_checkpoint": str(dest)}


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
