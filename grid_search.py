"""Grid search: the published grid (epochs x lr_fc x lr_base) by default, or the Cartesian product of any recipe
settings given several values, each configuration once per --seeds value, every run through train.py's loop
(caltech.training.fit).

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

from caltech.cli import ArgumentParser, add_settings
from caltech.grid import search
from caltech.layout import DEFAULT_RESULTS
from caltech.recipe import SEED
from caltech.utils import run_cli


def get_args_parser(add_help=True):
    parser = ArgumentParser(description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("the grid (published values by default)")
    group.add_argument("--epochs", type=int, nargs="+", default=[20, 30], help="epochs values (default: 20 30)")
    group.add_argument("--lr-fc", type=float, nargs="+", default=None,
                       help=f"learning rates of the new fc (default: {' '.join(map(str, search.PUBLISHED_LR_FC))})")
    group.add_argument("--lr-base", type=float, nargs="+", default=None,
                       help="learning rates of the other layers, crossed with --lr-fc "
                            f"(default: {' '.join(map(str, search.PUBLISHED_LR_BASE))})")
    group.add_argument("--lr", type=float, nargs="+", default=None,
                       help="one learning rate for every layer (lr_fc = lr_base), one run per value, instead of "
                            "--lr-fc x --lr-base: for training from scratch, where a lower body rate has nothing "
                            "to preserve (default: off)")
    group.add_argument("--seeds", type=int, nargs="+", default=[SEED],
                       help=f"repeat every configuration once per seed (default: {SEED})")
    group.add_argument("--results", default=DEFAULT_RESULTS,
                       help=f"results CSV, one row per run (default: {DEFAULT_RESULTS})")
    group.add_argument("--share-prefixes", action=argparse.BooleanOptionalAction, default=True,
                       help="train runs that differ only in --epochs once, to the longest, and save, test and "
                            "record the shorter ones on the way; only where that is exact, i.e. their learning "
                            "rates are the longest's first ones (step schedule: yes; cosine: no) (default: on)")
    group.add_argument("--fresh", action="store_true",
                       help="forget this grid's rows, logs and checkpoints and start over (default: resume)")
    # every recipe flag of train.py takes one or more values (on/off for switches: --scratch alone is on)
    add_settings(parser, ("data", "model", "options", "runtime", "outputs"), several=True)
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


def main(args):
    """Run the grid (caltech.grid.search.run); returns {rows, best, best_checkpoint, best_checkpoints}."""
    return search.run(args)


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
