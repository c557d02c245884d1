"""The whole report (report.py's logic): whatever runs exist (a grid's results CSV, single train.py runs, both)
become figures 1-9 (caltech.plots) and RESULTS.md (caltech.tables). Everything is read, never recomputed:
the results CSV, each run folder's TensorBoard scalars and hparams.json, its metrics.json, evaluate.py's tables;
and only from where report.py is told, so no figure mixes in a run from elsewhere.

    write_report("runs", "grid_search_results.csv", "reports", epochs=[30], eval_dir="eval", defaults=recipe)
    write_report("runs", None, "reports")     # no results CSV: the run folders alone
"""
import math
from dataclasses import dataclass
from pathlib import Path

from . import grid, labels, reproduce
from .plots import (
    COLOURS,
    SCRATCH_STYLES,
    check_eval_name,
    compare_series,
    eval_figures,
    grid_figures,
    plot_budgets,
    versus_figures,
)
from .results import ACCURACIES, read_results, row_settings
from .tables import (
    best_sentence,
    describe,
    eval_sentence,
    grid_table,
    reproduction_table,
    results_markdown,
    runs_table,
    seed_table,
)
from .tblog import Logs, Run, check_run_folder, locate, name_settings, read_hparams, read_run_folders
from .utils import UserError, atomic_write_text, warn

HOW_OURS = "the configuration with the highest mean Best_Val_Acc over its seeds, then its best seed"
HOW_PUBLISHED = "the highest Best_Val_Acc, ties to the lower experiment"
METRIC_KEYS = dict(zip(ACCURACIES, ("best_val_acc", "test_acc", "test_mean_class_acc"), strict=True))  # metrics.json's
BUDGET_FIGURE = "fig9_accuracy_vs_epochs.png"


def parse_compare(value):
    """(label, folder) of a --compare LABEL=RUN_DIR value, checked; a UserError (one sentence) if it is wrong."""
    label, sep, folder = value.partition("=")
    label, folder = label.strip(), folder.strip()
    if not sep or not label or not folder:
        raise UserError(f"--compare {value!r} is not LABEL=RUN_DIR; write it as --compare "
                        '"this code, scratch=runs/scratch"')
    return label, check_run_folder(folder, f"--compare {label}:")


# ---- what each run is ----

def run_settings(run, defaults):
    """The settings a run's label is made of: what its hparams.json or Settings cell records, else what its
    results row's columns (and Recipe cell) or its folder's name (scratch*, the default run names) say. Settings
    a run does not record are train.py's defaults (`defaults`), as a run from before an option existed ran
    without it; its epochs, learning rates and seed are never guessed."""
    recipe = {k: v for k, v in defaults.items() if k not in labels.IDENTITY}
    recorded = {k: v for k, v in run.hparams.items() if k in defaults or k in labels.IDENTITY or k == "num_classes"}
    if run.row is None:
        return {**recipe, **name_settings(run.folder.name), **recorded}
    row = run.row
    said = {"epochs": int(row["Epochs"]), "lr_fc": float(row["LR_FC"]), "lr_base": float(row["LR_Base"]),
            "scratch": row.get("Scratch", "False") == "True"}
    if row.get("Seed"):
        said["seed"] = int(row["Seed"])
    recorded = {**row_settings(row), **recorded}
    if recorded:
        return {**recipe, **said, **recorded}
    # Only the Recipe cell (train.recipe_tag's name part) tells this row's options: the optimizer for the label's
    # learning rates, the rest as written.
    tags = [t for t in (row.get("Recipe") or "").split("_") if t]
    optimizer = next((t for t in tags if t in labels.OPTIMIZERS), recipe.get("optimizer"))
    rest = " ".join(t for t in tags if t != optimizer)
    return {**recipe, **said, "optimizer": optimizer, **({"recipe": rest} if rest else {})}


class Catalogue:
    """Every run of the report with its settings, label parts and configuration."""

    def __init__(self, runs, defaults):
        self.runs = runs
        self.settings = {run: run_settings(run, defaults) for run in runs}
        self.parts = {run: labels.run_parts(self.settings[run], defaults) for run in runs}

    def scratch(self, run):
        return self.settings[run].get("scratch") is True

    def epochs(self, run):
        return self.settings[run].get("epochs")

    def key(self, run):
        return labels.config_key(self.parts[run])

    def configurations(self, runs):
        """[(key, runs)] of `runs` by configuration, in the order of each one's first run."""
        groups = {}
        for run in runs:
            groups.setdefault(self.key(run), []).append(run)
        return list(groups.items())

    def label_parts(self, runs):
        """A configuration's label parts: its runs' seed too when there is one run."""
        return self.parts[runs[0]] if len(runs) == 1 else dict(self.key(runs[0]))

    def labels(self, groups, keep=("lr",)):
        """One distinguishing label per [runs] group; groups that would read the same get their first run's
        folder name."""
        texts = labels.distinguishing_labels([self.label_parts(runs) for runs in groups], keep)
        return [f"{text} ({runs[0].name})" if texts.count(text) > 1 else text or runs[0].name
                for text, runs in zip(texts, groups, strict=True)]


# ---- choosing on validation ----

def has_metrics(run):
    return isinstance(run.metrics, dict) and all(
        isinstance(run.metrics.get(k), (int, float)) for k in ("best_val_acc", "test_acc", "test_mean_class_acc"))


def folder_rows(runs, catalogue):
    """Rows in the results CSV's form for grid.choose_best and grid.seed_stats: one experiment number per
    configuration, which also stands in the Recipe column so that the grid groups the runs by it alone."""
    numbers, rows = {}, []
    for run in runs:
        n = numbers.setdefault(catalogue.key(run), len(numbers) + 1)
        rows.append({"Experiment": n, "Epochs": 0, "LR_FC": 0.0, "LR_Base": 0.0, "Scratch": "", "Recipe": str(n),
                     "Seed": catalogue.settings[run].get("seed", ""),
                     **{c: run.metrics[k] for c, k in METRIC_KEYS.items()}})
    return rows


def choose(runs, catalogue):
    """The run of `runs` grid_search.py would choose on validation: results rows as they are, folder runs with
    a metrics.json; None when there is nothing to choose from."""
    listed = [r for r in runs if r.row is not None]
    if listed:
        row = grid.choose_best([r.row for r in listed])
        return next(r for r in listed if r.row is row)
    measured = [r for r in runs if has_metrics(r)]
    if not measured:
        return None
    rows = folder_rows(measured, catalogue)
    best = grid.choose_best(rows)
    return measured[next(i for i, row in enumerate(rows) if row is best)]


@dataclass
class Plan:
    """Which runs the figures show: figures 1-3's, and the chosen ones."""
    mode: str  # 'fine-tuned' or 'from-scratch': figures 1-3 show the fine-tuned runs, else the from-scratch ones
    members: list  # the runs of that mode: the results CSV's if there is one, else the run folders'
    plotted: list  # those under --epochs
    subject: str  # what figures 1-3 show, for their titles
    where: str  # where the members come from, for messages
    how: str  # how the best run is chosen, for RESULTS.md
    best: Run = None  # the members' choice on validation, when there are two or more to choose from
    shown: Run = None  # the fine-tuned run figures 4-6 show
    shown_chosen: bool = False  # chosen on validation among several


def plan(pool, found, catalogue, epochs, results, runs_dir):
    """Figures 1-3 show the fine-tuned runs of `pool` (the results CSV's runs, else the run folders), or its
    from-scratch runs when it has none; figures 4-6 the best fine-tuned run on validation among those plotted."""
    def in_epochs(run):
        return not epochs or catalogue.epochs(run) in epochs

    finetuned = [r for r in pool if not catalogue.scratch(r)]
    scratch = [r for r in pool if catalogue.scratch(r)]
    mode, members = ("fine-tuned", finetuned) if finetuned else ("from-scratch", scratch)
    where = str(results.path) if results else str(runs_dir)
    # in experiment order (a resumed or parallel grid appends its rows in any order), run folders by name
    plotted = sorted((r for r in members if in_epochs(r)), key=lambda r: int(r.row["Experiment"]) if r.row else 0)
    if members and not plotted:
        have = sorted({catalogue.epochs(r) for r in members if catalogue.epochs(r) is not None})
        raise UserError(f"{where} has no {mode} run with --epochs {' '.join(map(str, epochs))}; its runs have "
                        f"{' '.join(map(str, have))} epochs")
    if results:
        noun = "fine-tuning grid" if finetuned else "from-scratch grid"
    else:
        noun = f"{mode} run" + ("s" if len(plotted) > 1 else "")
    which = f" ({', '.join(map(str, epochs))}-epoch runs)" if epochs else ""
    how = HOW_PUBLISHED if results and not results.ours else HOW_OURS
    result = Plan(mode, members, plotted, f"the {noun}{which}", where, how)
    result.best = choose(members, catalogue) if len(members) > 1 else None
    # Under --epochs the run figures 4-6 show may not be the overall best. A from-scratch grid's CSV leaves the
    # fine-tuned runs to the run folders.
    candidates = plotted if finetuned else [r for r in found if not catalogue.scratch(r) and in_epochs(r)]
    result.shown = choose(candidates, catalogue) or (candidates[0] if len(candidates) == 1 else None)
    result.shown_chosen = result.shown is not None and len(candidates) > 1
    if candidates and result.shown is None:
        warn(f"no fine-tuned run in {runs_dir} has a metrics.json yet, so none can be chosen on validation; "
             "figures 4-6 leave them out")
    elif result.shown is not None and result.shown.folder is None:
        warn(f"the best fine-tuned run ({describe_run(result.shown)}) has no logs; figures 4-6 leave it out")
    return result


def measured(run):
    """{results column: fraction} of the accuracies a run measured: its results row's, else its metrics.json's;
    a missing or non-numeric value is left out."""
    if run.row is not None:
        values = {c: run.row.get(c) for c in ACCURACIES}
    else:
        metrics = run.metrics if isinstance(run.metrics, dict) else {}
        values = {c: metrics.get(k) for c, k in METRIC_KEYS.items()}
    found = {}
    for column, value in values.items():
        try:
            found[column] = float(value)
        except (TypeError, ValueError):
            continue
    return {c: v for c, v in found.items() if math.isfinite(v)}


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


def describe_run(run):
    return describe(run.row) if run.row is not None else f"`{run.folder.name}`"


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
        warn(f"no {what.format(runs_dir)} and no --compare run; figures 4-6 (fine-tuned vs from scratch) not written")
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

def write_report(runs_dir, results_path, out, epochs=None, eval_dir=None, compare=(), eval_name=None, defaults=None,
                 eval_found=None):
    """Figures 1-8 (as far as their inputs exist) and RESULTS.md into `out`; returns the paths written.

    `results_path`: the grid's results CSV, or None to read the run folders of `runs_dir` alone (its folders that
    no CSV row names are always read too). `compare`: (label, run folder) pairs from any folder, added to figures
    4-6. `eval_name` names the model evaluated in `eval_dir` (figures 7-8's file names and titles); `eval_found`
    says how eval_dir was found when it was not given. `defaults`: train.py's recipe defaults, for the labels.
    """
    runs_dir, out, defaults = Path(runs_dir), Path(out), dict(defaults or {})
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
    catalogue = Catalogue(listed + found, defaults)
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
                            sections(results, listed, found, catalogue, chosen, epochs, runs_dir, defaults), figures)
    atomic_write_text(out / "RESULTS.md", text)
    return [path for path, _ in figures] + [out / "RESULTS.md"]


def runs(n):
    return f"{n} run{'s' if n != 1 else ''}"


def intro(results, found, runs_dir, notes):
    """RESULTS.md's first paragraph: where every number and curve comes from."""
    sources = []
    if results:
        sources.append(f"`{results.path}` ({runs(len(results.rows))}) with their TensorBoard logs in `{runs_dir}`")
    if found:
        sources.append(f"{'the other' if results else 'the'} run folders in `{runs_dir}` ({runs(len(found))}: "
                       "TensorBoard logs, and hparams.json and metrics.json where they have them)")
    return " ".join([f"Written by `report.py` from {' and '.join(sources)}; nothing was retrained. Accuracies are "
                     "in percent.", *notes])


def sections(results, listed, found, catalogue, chosen, epochs, runs_dir, defaults):
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
        stats = grid.seed_stats(results.rows) if results.ours else []
        if any(e["n"] > 1 for e in stats):
            blocks.append(("Seed variation", ["Per configuration: mean ± sample standard deviation over its seeds.",
                                              seed_table(stats)]))
    if found:
        entries = [(marks.get(r, ""), r.folder.name, "scratch" if catalogue.scratch(r) else "fine-tuned",
                    settings_text(catalogue.parts[r], defaults), catalogue.settings[r].get("seed"), r.metrics)
                   for r in found]
        blocks.append((f"Other runs in `{runs_dir}`" if results else "Runs", [
            "Settings: what each run is and what it changed of train.py's defaults (from its hparams.json, or its "
            "name); accuracies: from its metrics.json ('-': none found, a run still training or one that crashed).",
            runs_table(entries), sentence(found)]))
        measured = [r for r in found if has_metrics(r)]
        stats = grid.seed_stats(folder_rows(measured, catalogue)) if measured else []
        if any(e["n"] > 1 for e in stats):
            groups = [runs for _, runs in catalogue.configurations(measured)]
            names = dict(enumerate(catalogue.labels(groups, keep=("mode", "lr")), 1))
            blocks.append(("Seed variation" + (" of the other runs" if results else ""), [
                "Per configuration: mean ± sample standard deviation over its seeds.", seed_table(stats, names)]))
    table = reproduce.reproduction(published_records(results, listed, found, catalogue, defaults))
    if table is not None:
        blocks.append(("Reproduction of the published grid", [reproduction_sentence(table), reproduction_table(table)]))
    return blocks


def settings_text(parts, defaults):
    """A run's settings in the runs table: its label parts but mode and seed (their own columns) and the default
    model."""
    hidden = {"mode", "seed"} | ({"model"} if parts.get("model") == defaults.get("model") else set())
    return ", ".join(text for key, text in parts.items() if text and key not in hidden)


def published_records(results, listed, found, catalogue, defaults):
    """Epochs, learning rates and accuracies of our runs made with the published recipe: rows of our results CSV
    (the published CSV is what they are set against) and run folders with a hparams.json and a metrics.json."""
    records = []
    if results and results.ours:
        records += [{c: float(r.row[c]) for c in ("Epochs", "LR_FC", "LR_Base", *reproduce.METRICS)}
                    for r in listed if reproduce.published_recipe_row(r.row, row_settings(r.row))]
    for run in found:
        recorded = {k: v for k, v in run.hparams.items() if k in defaults}
        if recorded and has_metrics(run) and reproduce.published_recipe_settings(recorded, defaults):
            s = catalogue.settings[run]
            records.append({"Epochs": s["epochs"], "LR_FC": s["lr_fc"], "LR_Base": s["lr_base"],
                            "Best_Val_Acc": run.metrics["best_val_acc"], "Test_Acc": run.metrics["test_acc"]})
    return records


def reproduction_sentence(table):
    missing = sorted(set(reproduce.PUBLISHED["Experiment"]) - set(table["Experiment"]))
    text = ("Our runs of the published grid's configurations made with the published recipe (fine-tuned ResNet-18 "
            "from ImageNet weights, 224 px, batch 32, Adam, StepLR every 10 epochs x 0.1, no recipe option; a "
            "results row without Settings is taken on its Recipe, Scratch, Epochs and learning-rate columns), set "
            "against the published results. *ours*: the mean ± sample standard deviation over seeds; *within*: "
            f"the published value lies within our mean ± {reproduce.SPREAD} standard deviations ('-': one seed, no "
            "spread to judge by).")
    if missing:
        text += f" Not run here: experiment{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))}."
    return text
