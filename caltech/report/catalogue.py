"""What each run of a report is, and which runs it chooses: every run (a results row, a run folder) with its
settings, legend parts and configuration (`Catalogue`), and the choice on validation that grid_search.py makes,
for the figures (`plan`).

    catalogue = Catalogue(runs)
    chosen = plan(runs, found, catalogue, epochs=[30], results=None, runs_dir=Path("runs"))
"""
import math
from dataclasses import dataclass

from .. import names, recipe
from ..grid.results import row_settings
from ..grid.trials import choose_best
from ..names import ACCURACY_COLUMNS as ACCURACIES
from ..names import parse_run_name, tag_words
from ..utils import UserError, warn
from . import labels
from .markdown import describe
from .runs import Run

HOW_OURS = "the configuration with the highest mean Best_Val_Acc over its seeds, then its best seed"
HOW_PUBLISHED = "the highest Best_Val_Acc, ties to the lower experiment"
METRIC_KEYS = {names.FINAL[k].column: k for k in names.ACCURACIES}  # results column -> metrics.json key

# ---- what each run is ----

def run_settings(run):
    """The settings a run's label is made of: what its hparams.json or Settings cell records, else what its
    results row's columns (and Recipe cell) or its folder's name (scratch*, the default run names) say. Settings
    a run does not record are train.py's defaults, as a run from before an option existed ran without it; its
    epochs, learning rates and seed are never guessed."""
    defaults = recipe.recipe_defaults()
    base = {k: v for k, v in defaults.items() if k not in labels.IDENTITY}
    recorded = {k: v for k, v in run.hparams.items() if k in defaults or k in labels.IDENTITY or k == "num_classes"}
    if run.row is None:
        return {**base, **parse_run_name(run.folder.name), **recorded}
    row = run.row
    said = {"epochs": int(row["Epochs"]), "lr_fc": float(row["LR_FC"]), "lr_base": float(row["LR_Base"]),
            "scratch": row.get("Scratch", "False") == "True"}
    if row.get("Seed"):
        said["seed"] = int(row["Seed"])
    recorded = {**row_settings(row), **recorded}
    if recorded:
        return {**base, **said, **recorded}
    # Only the Recipe cell (names.recipe_tag's name part) tells this row's options: the optimizer for the label's
    # learning rates, the rest as written.
    tags = tag_words(row.get("Recipe"))
    optimizer = next((t for t in tags if t in labels.OPTIMIZERS), base.get("optimizer"))
    rest = " ".join(t for t in tags if t != optimizer)
    return {**base, **said, "optimizer": optimizer, **({"recipe": rest} if rest else {})}


class Catalogue:
    """Every run of the report with its settings, label parts and configuration."""

    def __init__(self, runs):
        self.runs = runs
        self.settings = {run: run_settings(run) for run in runs}
        self.parts = {run: labels.run_parts(self.settings[run]) for run in runs}

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
        split = run.hparams.get("split_sha256") or ""  # seeds on another split are another configuration
        n = numbers.setdefault((catalogue.key(run), split), len(numbers) + 1)
        rows.append({"Experiment": n, "Epochs": 0, "LR_FC": 0.0, "LR_Base": 0.0, "Scratch": "", "Recipe": str(n),
                     "Seed": catalogue.settings[run].get("seed", ""), "Split_SHA256": split,
                     **{c: run.metrics[k] for c, k in METRIC_KEYS.items()}})
    return rows


def choose(runs, catalogue):
    """The run of `runs` grid_search.py would choose on validation: results rows as they are, folder runs with
    a metrics.json; None when there is nothing to choose from."""
    listed = [r for r in runs if r.row is not None]
    if listed:
        row = choose_best([r.row for r in listed])
        return next(r for r in listed if r.row is row)
    measured = [r for r in runs if has_metrics(r)]
    if not measured:
        return None
    rows = folder_rows(measured, catalogue)
    best = choose_best(rows)
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


def describe_run(run):
    return describe(run.row) if run.row is not None else f"`{run.folder.name}`"
