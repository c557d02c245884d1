"""Figures and RESULTS.md from the grid's TensorBoard logs and results CSV; nothing is retrained.

    python report.py                      # runs/ + grid_search_results.csv (+ eval/ if present) -> task1/
    python report.py --epochs 30          # only the 30-epoch runs, as in the published figures
    python report.py --runs /work/shared/original_runs \\
        --results /work/shared/original_runs/grid_search_results.csv --out /tmp/published --epochs 30
    python evaluate.py --out eval/ && python report.py --eval eval/   # adds figures 7 and 8
    python report.py --compare "ours, scratch=runs/scratch" --compare "published, scratch=/elsewhere/scratch_run"
    python evaluate.py --ckpt checkpoints/RUN/best.pth --out eval/RUN && \\
        python report.py --eval eval/RUN --eval-name RUN    # fig7_RUN_worst_classes.png, fig8_RUN_confusion.png

Figures 1-3: validation accuracy, training loss and validation loss of every grid configuration (the
mean over seeds with a min-max band when it has several). Figures 4-6: the same curves for the best
fine-tuned run on validation (the best among the plotted runs under --epochs) against every
from-scratch run in --runs, and every --compare run, from any folder. Figures 7-8: the 15 worst
classes and the confusion matrix, from the tables of `evaluate.py --out DIR`. RESULTS.md: the grid
table, mean +- std over seeds, the figures. Defaults are the paths train.py, grid_search.py and
evaluate.py write to.
"""
import argparse
import sys
from pathlib import Path

from caltech.report import parse_compare, write_report
from caltech.utils import UserError, run_cli

DEFAULT_EVAL = "eval"


def get_args_parser(add_help=True):
    parser = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("inputs")
    group.add_argument("--runs", default="runs",
                       help="TensorBoard root with one folder per run, grid_search.py's --logdir (default: runs)")
    group.add_argument("--results", default="grid_search_results.csv",
                       help="the grid's results CSV, ours or the published one (default: grid_search_results.csv)")
    group.add_argument("--eval", default=None,
                       help="folder of evaluate.py --out tables for figures 7-8 "
                            f"(default: {DEFAULT_EVAL}/ if it exists, else none)")
    group.add_argument("--compare", action="append", default=[], metavar="LABEL=RUN_DIR",
                       help="add one run's curves, from any folder, to figures 4-6 under the legend LABEL; RUN_DIR "
                            "holds its events.out.tfevents.* files; repeat for more runs (default: none)")
    group = parser.add_argument_group("selection")
    group.add_argument("--epochs", type=int, nargs="+", default=None,
                       help="plot only the grid runs with these epochs values, e.g. 30 (default: all)")
    group = parser.add_argument_group("outputs")
    group.add_argument("--out", default="task1", help="folder for the figures and RESULTS.md (default: task1)")
    group.add_argument("--eval-name", default=None, metavar="NAME",
                       help="name of the model --eval evaluated, e.g. scratch: figures 7-8 become "
                            "fig7_NAME_worst_classes.png and fig8_NAME_confusion.png and their titles say it "
                            "(default: none, fig7_worst_classes.png and fig8_confusion.png)")
    return parser


def main(args):
    eval_dir = args.eval
    if eval_dir is None and Path(DEFAULT_EVAL).is_dir():
        eval_dir = DEFAULT_EVAL
    elif eval_dir is not None and not Path(eval_dir).is_dir():
        raise UserError(f"--eval folder {eval_dir} not found; write it with python evaluate.py --out {eval_dir}")
    compare = [parse_compare(value) for value in args.compare]
    written = write_report(args.runs, args.results, args.out, epochs=args.epochs, eval_dir=eval_dir,
                           compare=compare, eval_name=args.eval_name)
    print(f"report: {len(written) - 1} figures and RESULTS.md written to {args.out}/", file=sys.stdout)
    for path in written:
        print(f"  {path}")
    return [str(p) for p in written]


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
