"""The whole report (report.py's logic): whatever runs exist (a grid's results CSV, single train.py runs, both)
become figures 1-9 (caltech.report.figures) and RESULTS.md (caltech.report.markdown). Everything is read,
never recomputed: the results CSV, each run folder's TensorBoard scalars and hparams.json, its metrics.json,
evaluate.py's tables; and only from where report.py is told, so no figure mixes in a run from elsewhere.

    write_report("runs", "grid_search_results.csv", "reports", epochs=[30], eval_dir="eval")
    write_report("runs", None, "reports")     # no results CSV: the run folders alone
"""
from pathlib import Path

from ..grid.results import read_results, row_settings
from ..grid.trials import seed_stats
from ..recipe import recipe_defaults
from ..utils import UserError, atomic_write_text, warn
from . import labels, reproduce
from .catalogue import Catalogue, describe_run, folder_rows, has_metrics, measured, plan
from .figures import (
    COLOURS,
    SCRATCH_STYLES,
    check_eval_name,
    compare_series,
    eval_figures,
    grid_figures,
    plot_budgets,
    versus_figures,
)
from .markdown import (
    best_sentence,
    eval_sentence,
    grid_table,
    intro,
    reproduction_sentence,
    reproduction_table,
    results_markdown,
    runs_table,
    seed_table,
    settings_text,
)
from .runs import Logs, Run, check_run_folder, locate, read_hparams, read_run_folders

BUDGET_FIGURE = "fig9_accuracy_vs_epochs.png"
FIGURES = "fig[1-9]_*.png"  # the names of every figure a report draws: what it removes of an earlier report


def parse_compare(value):
    """(label, folder) of a --compare LABEL=RUN_DIR value, checked; a UserError (one sentence) if it is wrong."""
    label, sep, folder = value.partition("=")
    label, folder = label.strip(), folder.strip()
    if not sep or not label or not folder:
        raise UserError(f"--compare {value!r} is not LABEL=RUN_DIR; write it as --compare "
                        '"this code, scratch=runs/scratch"')
    return label, check_run_folder(folder, f"--compare {label}:")


def budget_figure(catalogue, epochs, out, source):
    """Figure 9, drawn when a configuration (everything but epochs and seed) ran for two or more epoch budgets
    (under --epochs: two of those): each such configuration's best validation and test accuracy against its
    budget, over its seeds. Returns [(path, title)]."""
    groups = {}
    for run in catalogue.runs:
        budget, values = catalogue.epochs(run), measured(run)
        if budget is None or "Best_Val_Acc" not in values or (epochs and budget not in epochs):
            continue
        key = tuple(part for part in catalogue.key(run) if part[0] != "epochs")
        for column, value in values.items():
            groups.setdefault(key, {}).setdefault(int(budget), {}).setdefault(column, []).append(value)
    curves = [(key, points) for key, points in groups.items() if len(points) > 1]
    if not curves:
        return []
    texts = labels.distinguishing_labels([dict(key) for key, _ in curves], keep=("mode", "lr"))
    points = [values for _, budgets in curves for values in budgets.values()]
    # the published CSV has no mean per-class accuracy: its runs are drawn with the overall one
    test = "Test_Mean_Class_Acc" if all("Test_Mean_Class_Acc" in p for p in points) else "Test_Acc"
    seeds = " (mean over seeds, bar min-max)" if any(len(p["Best_Val_Acc"]) > 1 for p in points) else ""
    title = f"Accuracy against the epochs trained{seeds}\n{source}"
    path = plot_budgets(list(zip(texts, [budgets for _, budgets in curves], strict=True)), ["Best_Val_Acc", test],
                        out / BUDGET_FIGURE, title)
    return [(path, title)]


def comparison(chosen, catalogue, styles, compare, out, logs, runs_dir):
    """Figures 4-6: the chosen fine-tuned run (in its colour of figures 1-3), every from-scratch configuration,
    and the --compare runs; drawn when at least two of the three kinds are there."""
    compared = {folder.resolve() for _, folder in compare}  # a --compare run under --runs is drawn once, labelled
    finetuned = chosen.shown if chosen.shown is not None and chosen.shown.folder is not None else None
    scratch = catalogue.configurations([r for r in catalogue.runs if catalogue.scratch(r) and r.folder is not None
                                        and r.folder.resolve() not in compared])
    if finetuned is None and not scratch:
        return []
    if not compare and not (finetuned and scratch):
        what = ('from-scratch run in {} (a folder named scratch*, or whose hparams.json has "scratch": true)'
                if finetuned else "fine-tuned run in {}")
        # nothing is wrong: these runs have nothing to be compared with (a newcomer's from-scratch run, say)
        print(f"note: figures 4-6 set fine-tuned runs against runs from scratch; there is no {what.format(runs_dir)} "
              "and no --compare run, so they are not drawn")
        return []
    groups = ([[finetuned]] if finetuned else []) + [runs for _, runs in scratch]
    texts = catalogue.labels(groups, keep=("mode", "lr"))
    series = []
    if finetuned:  # its colour of figures 1-3; one they do not use when they show the from-scratch grid
        free = next((c for c in COLOURS if c not in [s["color"] for s in styles.values()]), COLOURS[0])
        series.append((texts.pop(0), styles.get(catalogue.key(finetuned), {"color": free}), [finetuned]))
    # from-scratch runs dashed; in their colour of figures 1-3 when those show them
    series += [(text, {**styles[key], "linestyle": "--"} if key in styles else SCRATCH_STYLES[i % len(SCRATCH_STYLES)],
                runs) for i, ((key, runs), text) in enumerate(zip(scratch, texts, strict=True))]
    series += compare_series(compare)
    who = f"{'best ' if chosen.shown_chosen else ''}fine-tuned run"
    others = " and other runs" if compare else ""
    subject = (f"{who} vs training from scratch{others}" if finetuned and scratch else
               f"{who}{others}" if finetuned else f"training from scratch{others}")
    source = f"from {runs_dir}/" + (" and the --compare folders" if compare else "")
    return versus_figures(series, out, logs, subject, source)


# ---- the report ----

def write_report(runs_dir, results_path, out, epochs=None, eval_dir=None, compare=(), eval_name=None,
                 eval_found=None):
    """Figures 1-8 (as far as their inputs exist) and RESULTS.md into `out`; returns the paths written.

    `results_path`: the grid's results CSV, or None to read the run folders of `runs_dir` alone (its folders that
    no CSV row names are always read too). `compare`: (label, run folder) pairs from any folder, added to figures
    4-6. `eval_name` names the model evaluated in `eval_dir` (figures 7-8's file names and titles); `eval_found`
    says how eval_dir was found when it was not given.
    """
    runs_dir, out = Path(runs_dir), Path(out)
    if not runs_dir.is_dir():
        raise UserError(f"runs folder {runs_dir} not found; pass --runs, the --logdir the runs were trained with")
    compare = [(label, check_run_folder(folder, f"--compare {label}:")) for label, folder in compare]
    if eval_name is not None:
        check_eval_name(eval_name)
        if eval_dir is None:
            raise UserError(f"--eval-name {eval_name} names figures 7-8, but there is no --eval folder to draw "
                            "them from")
    results = read_results(results_path) if results_path is not None else None
    listed = []
    for row in results.rows if results else []:
        folder = locate(row, runs_dir)
        listed.append(Run(folder, row, read_hparams(folder) if folder else {}))
    found, empty = read_run_folders(runs_dir, skip={r.folder.resolve() for r in listed if r.folder})
    if empty:
        warn(f"{len(empty)} folder(s) in {runs_dir} hold no event file (a run that crashed before it logged, or not "
             f"a run), skipped: {', '.join(empty)}")
    if not listed and not found:
        raise UserError(f"no run in {runs_dir} (no folder with an events.out.tfevents.* file) and no results CSV; "
                        "train first, or pass --runs, the --logdir the runs were trained with")
    catalogue = Catalogue(listed + found)
    chosen = plan(listed or found, found, catalogue, epochs, results, runs_dir)
    out.mkdir(parents=True, exist_ok=True)
    logs = Logs()
    grid_groups = catalogue.configurations([r for r in chosen.plotted if r.folder is not None])
    figures, styles = [], {}
    if grid_groups:
        configs = [(key, label, runs) for (key, runs), label in
                   zip(grid_groups, catalogue.labels([runs for _, runs in grid_groups]), strict=True)]
        figures, styles = grid_figures(configs, out, logs, chosen.subject, f"from {runs_dir}/")
    else:
        warn(f"{chosen.where} has no {chosen.mode} run with a log folder in {runs_dir}; figures 1-3 not "
             "written")
    versus = comparison(chosen, catalogue, styles, compare, out, logs, runs_dir)
    if not versus or (chosen.shown is not None and chosen.shown.folder is None):
        chosen.shown = None  # figures 4-6 do not show it: RESULTS.md marks no run as theirs
    figures += versus

    notes = []
    if compare:
        notes.append("Figures 4-6 also show " + ", ".join(f"*{label}* (`{folder}`)" for label, folder in compare) + ".")
    if eval_dir is not None:
        drawn = eval_figures(Path(eval_dir), out, eval_name)
        figures += drawn
        notes += [eval_sentence(eval_dir, eval_name, eval_found)] if drawn else []
    figures += budget_figure(catalogue, epochs, out, f"from {runs_dir}/" + (f" and {results.path}" if results else ""))
    text = results_markdown(intro(results, found, runs_dir, notes),
                            sections(results, listed, found, catalogue, chosen, epochs, runs_dir), figures)
    atomic_write_text(out / "RESULTS.md", text)
    written = [path for path, _ in figures] + [out / "RESULTS.md"]
    for stale in set(out.glob(FIGURES)) - set(written):  # an earlier report's figure that this one did not draw
        stale.unlink()
    return written


def sections(results, listed, found, catalogue, chosen, epochs, runs_dir):
    """RESULTS.md's (heading, blocks): the grid table, the run folders' table, seed variation, reproduction."""
    marks = {chosen.best: "**best**"} if chosen.best is not None else {}
    if chosen.shown is not None and chosen.shown is not chosen.best and (chosen.best or chosen.shown_chosen):
        marks[chosen.shown] = "*figs 4-6*"

    def sentence(runs):
        here = [r for r in marks if r in runs]
        best, shown = (chosen.best if chosen.best in here else None), (chosen.shown if chosen.shown in here else None)
        return best_sentence(chosen.mode, chosen.how, best, shown, epochs, describe_run,
                             chosen.shown_chosen) if here else ""

    blocks = []
    if results:
        blocks.append(("Grid search", [grid_table(results, {id(r.row): text for r, text in marks.items()
                                                            if r.row is not None}), sentence(listed)]))
        stats = seed_stats(results.rows) if results.ours else []
        if any(e["n"] > 1 for e in stats):
            blocks.append(("Seed variation", [
                "Per configuration (its settings and split): mean ± sample standard deviation over its seeds.",
                seed_table(stats)]))
    if found:
        entries = [(marks.get(r, ""), r.folder.name, "scratch" if catalogue.scratch(r) else "fine-tuned",
                    settings_text(catalogue.parts[r]), catalogue.settings[r].get("seed"), r.metrics)
                   for r in found]
        blocks.append((f"Other runs in `{runs_dir}`" if results else "Runs", [
            "Settings: what each run is and what it changed of train.py's defaults (from its hparams.json, or its "
            "name); accuracies: from its metrics.json ('-': none found, a run still training or one that crashed).",
            runs_table(entries), sentence(found)]))
        measured = [r for r in found if has_metrics(r)]
        rows = folder_rows(measured, catalogue)
        stats = seed_stats(rows) if measured else []
        if any(e["n"] > 1 for e in stats):
            groups = {}  # folder_rows' configurations (settings and split), by their number
            for run, row in zip(measured, rows, strict=True):
                groups.setdefault(row["Experiment"], []).append(run)
            names = dict(zip(groups, catalogue.labels(list(groups.values()), keep=("mode", "lr")), strict=True))
            blocks.append(("Seed variation" + (" of the other runs" if results else ""), [
                "Per configuration (its settings and split): mean ± sample standard deviation over its seeds.",
                seed_table(stats, names)]))
    table = reproduce.reproduction(published_records(results, listed, found, catalogue))
    if table is not None:
        blocks.append(("Reproduction of the published grid", [reproduction_sentence(table), reproduction_table(table)]))
    return blocks


def published_records(results, listed, found, catalogue):
    """Epochs, learning rates and accuracies of our runs made with the published recipe: rows of our results CSV
    (the published CSV is what they are set against) and run folders with a hparams.json and a metrics.json."""
    records = []
    if results and results.ours:
        records += [{c: float(r.row[c]) for c in ("Epochs", "LR_FC", "LR_Base", *reproduce.METRICS)}
                    for r in listed if reproduce.published_recipe_row(r.row, row_settings(r.row))]
    defaults = recipe_defaults()
    for run in found:
        recorded = {k: v for k, v in run.hparams.items() if k in defaults}
        if recorded and has_metrics(run) and reproduce.published_recipe_settings(recorded, defaults):
            s = catalogue.settings[run]
            records.append({"Epochs": s["epochs"], "LR_FC": s["lr_fc"], "LR_Base": s["lr_base"],
                            "Best_Val_Acc": run.metrics["best_val_acc"], "Test_Acc": run.metrics["test_acc"]})
    return records


