"""Figures and RESULTS.md from whatever runs exist: a grid's results CSV, single train.py runs, a from-scratch
grid, any mix of them; nothing is retrained. Everything comes from --runs (its run folders: TensorBoard logs,
hparams.json, and metrics.json from the checkpoint folders beside it), the results CSV and the --eval tables;
never from anywhere else, so no figure mixes in a run that is not the report's.

    python report.py                      # runs/ (+ grid_search_results.csv and eval/ beside it) -> reports/
    python report.py --epochs 30          # only the 30-epoch runs, as in the published figures
    python report.py --out task1          # the write-up's figures: task1/ is written only when asked
    python report.py --runs /work/shared/original_runs --out /tmp/published --epochs 30   # the published logs
    python evaluate.py --out eval/ && python report.py --eval eval/   # adds figures 7 and 8
    python report.py --compare "ours, scratch=runs/scratch" --compare "published, scratch=/elsewhere/scratch_run"
    python evaluate.py --ckpt checkpoints/RUN/best.pth --out eval/RUN && \\
        python report.py --eval eval/RUN --eval-name RUN    # fig7_RUN_worst_classes.png, fig8_RUN_confusion.png

The runs: the rows of the results CSV (--results, or grid_search_results.csv beside or inside --runs), and every
run folder of --runs no row names (a train.py run, a crashed one without an event file is skipped). Figures 1-3:
validation accuracy, training loss and validation loss of every fine-tuned configuration, the grid's when there
is a CSV (the mean over seeds with a min-max band when it has several); of the from-scratch ones when there is
no fine-tuned run. Figures 4-6: the same curves for the best fine-tuned run on validation (the best among the
plotted runs under --epochs) against every from-scratch configuration and every --compare run, from any folder.
Figures 7-8: the 15 worst classes and the confusion matrix, from the tables of `evaluate.py --out DIR`.
Figure 9, when a configuration ran for several --epochs budgets (a grid over --epochs 30 60 120, or the
published 20 and 30): its best validation and test accuracy against the budget, one point per budget.
RESULTS.md: the tables of runs, mean +- std over seeds, our published-recipe runs against the published grid,
the figures. Titles, legends and captions say which runs, from where; legends name runs by their settings.
"""
import argparse
import sys
from pathlib import Path

from caltech.cli import ArgumentParser
from caltech.disk import check_folder
from caltech.layout import DEFAULT_RESULTS as RESULTS
from caltech.layout import EVAL, LOGDIR
from caltech.layout import REPORTS as OUT
from caltech.report.build import parse_compare, write_report
from caltech.utils import UserError, run_cli


def get_args_parser(add_help=True):
    parser = ArgumentParser(description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("inputs")
    group.add_argument("--runs", default=LOGDIR,
                       help="TensorBoard root with one folder per run, train.py's and grid_search.py's --logdir "
                            f"(default: {LOGDIR})")
    group.add_argument("--results", default=None,
                       help=f"the grid's results CSV, ours or the published one (default: {RESULTS} beside --runs "
                            "or inside it, if there is one; else the run folders alone)")
    group.add_argument("--eval", default=None,
                       help="folder of evaluate.py --out tables for figures 7-8 "
                            f"(default: {EVAL}/ beside --runs if it exists, else none)")
    group.add_argument("--compare", action="append", default=[], metavar="LABEL=RUN_DIR",
                       help="add one run's curves, from any folder, to figures 4-6 under the legend LABEL; RUN_DIR "
                            "holds its events.out.tfevents.* files; repeat for more runs (default: none)")
    group = parser.add_argument_group("selection")
    group.add_argument("--epochs", type=int, nargs="+", default=None,
                       help="plot only the runs with these epochs values, e.g. 30 (default: all)")
    group = parser.add_argument_group("outputs")
    group.add_argument("--out", default=OUT,
                       help=f"folder for the figures and RESULTS.md; task1 rewrites the write-up's (default: {OUT}, "
                            "not tracked by git)")
    group.add_argument("--eval-name", default=None, metavar="NAME",
                       help="name of the model --eval evaluated, e.g. scratch: figures 7-8 become "
                            "fig7_NAME_worst_classes.png and fig8_NAME_confusion.png and their titles say it "
                            "(default: none, fig7_worst_classes.png and fig8_confusion.png)")
    return parser


def results_beside(runs):
    """grid_search.py's results CSV beside the runs folder (where their defaults put both), or inside it (the
    published folder); None if neither holds one."""
    for path in (Path(runs).parent / RESULTS, Path(runs) / RESULTS):
        if path.is_file():
            return str(path)
    return None


def eval_beside(runs):
    path = Path(runs).parent / EVAL
    return str(path) if path.is_dir() else None


def main(args):
    results = args.results if args.results is not None else results_beside(args.runs)
    eval_dir, eval_found = args.eval, None
    if eval_dir is None:  # only beside --runs: another folder's evaluation is never passed off as these runs'
        eval_dir = eval_beside(args.runs)
        eval_found = f"beside {args.runs}" if eval_dir else None
    elif not Path(eval_dir).is_dir():
        raise UserError(f"--eval folder {eval_dir} not found; write it with python evaluate.py --out {eval_dir}")
    compare = [parse_compare(value) for value in args.compare]
    check_folder("--out", args.out)
    written = write_report(args.runs, results, args.out, epochs=args.epochs, eval_dir=eval_dir, compare=compare,
                           eval_name=args.eval_name, eval_found=eval_found)
    print(f"report: {len(written) - 1} figures and RESULTS.md written to {args.out}/", file=sys.stdout)
    for path in written:
        print(f"  {path}")
    return [str(p) for p in written]


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
