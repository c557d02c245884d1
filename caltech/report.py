"""The whole report (report.py's logic): the grid's results CSV and the runs' TensorBoard scalars (read,
never recomputed) and evaluate.py's tables become figures 1-8 (caltech.plots) and RESULTS.md (caltech.tables).

    write_report("runs", "grid_search_results.csv", "task1", epochs=[30], eval_dir="eval")
"""
from pathlib import Path

from . import grid
from .plots import check_eval_name, eval_figures, grid_figures, versus_figures
from .tables import describe, eval_sentence, finetuned, read_results, results_markdown
from .tblogs import Logs, Run, check_run_folder, locate, scratch_runs
from .utils import UserError, atomic_write_text, warn


def parse_compare(value):
    """(label, folder) of a --compare LABEL=RUN_DIR value, checked; a UserError (one sentence) if it is wrong."""
    label, sep, folder = value.partition("=")
    label, folder = label.strip(), folder.strip()
    if not sep or not label or not folder:
        raise UserError(f"--compare {value!r} is not LABEL=RUN_DIR; write it as --compare "
                        '"this code, scratch=runs/scratch"')
    return label, check_run_folder(folder, f"--compare {label}:")


def write_report(runs_dir, results_path, out, epochs=None, eval_dir=None, compare=(), eval_name=None):
    """Figures 1-8 (as far as their inputs exist) and RESULTS.md into `out`; returns the paths written.

    `compare`: (label, run folder) pairs from any folder, added to figures 4-6. `eval_name` names the model
    evaluated in `eval_dir` (figures 7-8's file names and titles).
    """
    runs_dir, out = Path(runs_dir), Path(out)
    if not runs_dir.is_dir():
        raise UserError(f"runs folder {runs_dir} not found; pass --runs, the --logdir the grid was trained with")
    compare = [(label, check_run_folder(folder, f"--compare {label}:")) for label, folder in compare]
    if eval_name is not None:
        check_eval_name(eval_name)
        if eval_dir is None:
            raise UserError(f"--eval-name {eval_name} names figures 7-8, but there is no --eval folder to draw "
                            "them from")
    results = read_results(results_path)
    all_finetuned = finetuned(results.rows)
    rows = [r for r in all_finetuned if not epochs or int(r["Epochs"]) in epochs]
    if all_finetuned and not rows:
        have = sorted({int(r["Epochs"]) for r in all_finetuned})
        raise UserError(f"{results.path} has no fine-tuned run with --epochs {' '.join(map(str, epochs))}; "
                        f"its runs have {' '.join(map(str, have))} epochs")
    out.mkdir(parents=True, exist_ok=True)
    logs = Logs()
    runs = [Run(folder, row) for row in rows if (folder := locate(row, runs_dir)) is not None]
    if not runs:
        why = f"no fine-tuned run with a log folder in {runs_dir}" if rows else "no fine-tuned run"
        warn(f"{results.path} has {why}; figures 1-3 not written")
    figures, styles = grid_figures(runs, out, logs, epochs) if runs else ([], {})

    # Figures 4-6 compare the best among the plotted runs: under --epochs that may not be the grid's overall best.
    # grid.choose_best also reads the published CSV: one seed per configuration, so the highest Best_Val_Acc
    # wins, ties to the lower experiment.
    best = grid.choose_best(all_finetuned) if all_finetuned else None
    shown = grid.choose_best(rows) if rows else None
    shown_run = next((r for r in runs if r.row is shown), None)
    if shown is not None and shown_run is None:
        warn(f"the best fine-tuned run ({describe(shown)}) has no logs; figures 4-6 show the from-scratch runs alone")
    compared = {folder.resolve() for _, folder in compare}  # a --compare run under --runs is drawn once, labelled
    scratch = [run for run in scratch_runs(runs_dir) if run.folder.resolve() not in compared]
    if not scratch:
        alone = "" if compare else "; figures 4-6 show the fine-tuned run alone"
        warn(f"no from-scratch run in {runs_dir} (a folder named scratch*, or whose hparams.json has "
             f'"scratch": true){alone}')
    figures += versus_figures(shown_run, styles, scratch, out, logs, compare)
    notes = []
    if compare:
        notes.append("Figures 4-6 also show " + ", ".join(f"*{label}* (`{folder}`)" for label, folder in compare) + ".")
    if eval_dir is not None:
        drawn = eval_figures(Path(eval_dir), out, eval_name)
        figures += drawn
        notes += [eval_sentence(eval_dir, eval_name)] if drawn else []

    atomic_write_text(out / "RESULTS.md", results_markdown(results, runs_dir, best, shown, epochs, figures, notes))
    return [path for path, _ in figures] + [out / "RESULTS.md"]
