"""The published hyperparameter grid: epochs x lr_fc x lr_base (x seeds), each run through train.py.

    python grid_search.py                          # the published 8 runs, fine-tuning
    python grid_search.py --seeds 107 108 109      # every configuration three times: seed noise
    python grid_search.py --scratch --epochs 30 --lr-fc 1e-3 --lr-base 1e-4   # from-scratch grid

One row per run is appended to --results; the best run on validation (never on test) has its
best.pth copied to CKPT_DIR/best.pth (best_scratch.pth with --scratch). Rerunning the same command
after a kill skips finished runs and resumes an interrupted one from its last.pth.
"""
import argparse
from pathlib import Path

import train
from caltech import grid
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


def run_sequential(trials, args, on_result):
    for i, trial in enumerate(trials, 1):
        print(f"\n=== run {i}/{len(trials)}: {trial.run_name} ===")
        on_result(trial, train.main(trial_args(args, trial)))


def main(args):
    trials = grid.make_trials(args.epochs, args.lr_fc, args.lr_base, args.seeds, args.scratch, train.recipe_tag(args))
    if args.fresh:
        grid.forget(args.results, trials, args.logdir, args.ckpt_dir)
    done = {grid.row_key(r) for r in grid.read_results(args.results)}
    todo = [t for t in trials if t.key not in done]
    print(f"grid: {len(trials)} runs, {len(trials) - len(todo)} already in {args.results}, {len(todo)} to do")
    if todo:
        ensure_split(args.data, train.DEFAULT_DATA, args.source)  # once, before any run needs it

    def on_result(trial, metrics):
        grid.append_result(args.results, grid.make_row(trial, metrics))

    if todo and args.backend == "ray":
        from caltech import ray_tune  # Ray is optional: imported only when asked for
        ray_tune.run_trials(todo, args, trial_args, on_result)
    elif todo:
        run_sequential(todo, args, on_result)

    keys = {t.key for t in trials}
    rows = [r for r in grid.read_results(args.results) if grid.row_key(r) in keys]
    if len(rows) != len(trials):
        raise UserError(f"only {len(rows)} of {len(trials)} runs finished; rerun the same command to resume")
    best = grid.choose_best(rows)
    dest = grid.copy_best(best, args.ckpt_dir, "best_scratch.pth" if args.scratch else "best.pth")
    print(f"\nresults ({args.results}; * = chosen on validation accuracy):")
    print(grid.format_table(sorted(rows, key=lambda r: (int(r['Experiment']), int(r['Seed']))), best))
    if len(args.seeds) > 1:
        print(f"\nper configuration over {len(args.seeds)} seeds:")
        print(grid.format_seed_stats(grid.seed_stats(rows)))
    print(f"\nbest run {best['Run']}: val {float(best['Best_Val_Acc']):.4f}, test {float(best['Test_Acc']):.4f} "
          f"(mean per-class {float(best['Test_Mean_Class_Acc']):.4f}); its best.pth copied to {dest}")
    return {"rows": rows, "best": best, "best_checkpoint": str(dest)}


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
