"""Figures and tables for reports (matplotlib, headless Agg backend).

report.py's logic lives here: the grid's results CSV and the runs' TensorBoard scalars (read, never
recomputed) become learning curves, evaluate.py's tables become figures, and all of it RESULTS.md.
Accuracies are drawn and tabled in percent. `plot_runs` draws one scalar of any run folders, from any
TensorBoard roots, for figures of other scripts:

    plot_runs([("published, scratch", "../shared/original_runs/scratch_ep30_fc0.001_base0.0001_0527_182610"),
               ("ours, scratch", "runs/scratch")], "Accuracy/val", "validation accuracy (%)",
              "From scratch, with and without augmentation", Path("study.png"))
"""
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402

from . import grid  # noqa: E402
from .utils import UserError, atomic_path, atomic_write_text  # noqa: E402

FIGSIZE = (7, 4.5)
# Keep every scalar (0 = no limit); the report reads nothing else, so other kinds keep one item.
SIZE_GUIDANCE = {event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 1, event_accumulator.IMAGES: 1,
                 event_accumulator.AUDIO: 1, event_accumulator.HISTOGRAMS: 1,
                 event_accumulator.COMPRESSED_HISTOGRAMS: 1}
# (file name part, tag, y-axis label, title words) of figures 1-3, and again of figures 4-6
CURVES = [("val_accuracy", "Accuracy/val", "validation accuracy (%)", "Validation accuracy"),
          ("train_loss", "Loss/train", "training loss", "Training loss"),
          ("val_loss", "Loss/val", "validation loss", "Validation loss")]
COLOURS = plt.get_cmap("tab10").colors
# From-scratch runs are dashed, in colours outside tab10, so they never look like a grid configuration.
SCRATCH_STYLES = [{"color": c, "linestyle": "--"} for c in ("black", "dimgray", "darkgoldenrod", "darkslateblue")]
# Runs from other folders (--compare, plot_runs): solid, with markers, so they are told apart from both.
COMPARE_STYLES = [{"color": c, "linestyle": "-", "marker": m, "markersize": 3.5}
                  for c, m in (("crimson", "o"), ("teal", "s"), ("darkorange", "^"), ("darkviolet", "D"))]
WORST_CLASSES = 15


def save_figure(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_confusion(confusion, classes, path, subject=None):
    """Row-normalised confusion matrix (each true class sums to 1), so small classes stay visible; `subject`
    names the model in the title."""
    rows = confusion.double()
    rows = rows / rows.sum(dim=1, keepdim=True).clamp(min=1)
    n = len(classes)
    side = min(max(6.0, n * 0.16), 22.0)
    fig, ax = plt.subplots(figsize=(side, side))
    im = ax.imshow(rows.numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ticks = range(n)
    fontsize = max(3, min(9, int(400 / max(n, 1))))
    ax.set_xticks(ticks, classes, rotation=90, fontsize=fontsize)
    ax.set_yticks(ticks, classes, fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    of = f" of the {subject} model" if subject else ""
    ax.set_title(f"Confusion matrix{of} (row-normalised), {int(confusion.sum())} images")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    save_figure(fig, path)


def warn(message):
    print(f"warning: {message}", file=sys.stderr)


# ---- inputs: the results CSV, the run folders, their scalars ----

@dataclass
class Results:
    path: Path
    rows: list  # dicts of strings, in file order
    columns: list
    ours: bool  # grid_search.py's CSV (Seed, Scratch, Run columns...), else the published 6-column one


@dataclass(eq=False)
class Run:
    folder: Path
    row: dict = None  # its results row; None for a from-scratch run, found by its folder alone


def read_results(path):
    """Our results CSV or the published one, checked enough that later steps cannot fail on it."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--results {path} is a folder; pass the grid's results CSV file")
    if not path.is_file():
        raise UserError(f"results file {path} not found; run grid_search.py first or pass --results")
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows, columns = list(reader), list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"results file {path} could not be read ({type(e).__name__})") from None
    ours = "Seed" in columns and "Scratch" in columns
    missing = [c for c in (grid.COLUMNS if ours else grid.PUBLISHED) if c not in columns and c not in grid.LATER]
    if missing:
        raise UserError(f"{path} lacks the column(s) {', '.join(missing)}, so it is not a grid_search_results.csv")
    if not rows:
        raise UserError(f"{path} has no runs in it yet")
    try:
        for row in rows:
            int(row["Experiment"]), int(row["Epochs"]), float(row["LR_FC"]), float(row["LR_Base"])
            float(row["Best_Val_Acc"]), int(row.get("Seed") or 0)
    except (TypeError, ValueError):
        raise UserError(f"{path} has a short row or a non-numeric value where a number belongs") from None
    return Results(path, rows, columns, ours)


def finetuned(rows):
    """Rows of the fine-tuning grid: our CSV may also hold a --scratch grid's rows."""
    return [r for r in rows if r.get("Scratch", "False") != "True"]


def describe(row):
    seed = f", seed {row['Seed']}" if row.get("Seed") else ""
    return f"experiment {row['Experiment']}{seed}"


def locate(row, runs_dir):
    """A row's log folder: our CSV's Run column names it; the published folders start grid_exp{N}_."""
    if row.get("Run"):
        folder = runs_dir / row["Run"]
        if folder.is_dir():
            return folder
        warn(f"run folder {folder} ({describe(row)}) not found; left out of the figures")
        return None
    matches = sorted(p for p in runs_dir.glob(f"grid_exp{int(row['Experiment'])}_*") if p.is_dir())
    if not matches:
        warn(f"no folder grid_exp{row['Experiment']}_* in {runs_dir} for {describe(row)}; left out of the figures")
        return None
    if len(matches) > 1:  # the folder names end in a timestamp: the last is the newest
        warn(f"{len(matches)} folders in {runs_dir} match {describe(row)}; using the newest, {matches[-1].name}")
    return matches[-1]


def check_run_folder(folder, what):
    """`folder` as a Path, if it is a folder holding a TensorBoard event file; else a UserError naming `what`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{what} {folder} is not a folder; pass one run's folder, the one holding its "
                        "events.out.tfevents.* files")
    if not any(folder.glob("events.out.tfevents.*")):
        raise UserError(f"{what} {folder} holds no events.out.tfevents.* file; pass one run's folder, not a "
                        "TensorBoard root or a checkpoint folder")
    return folder


def parse_compare(value):
    """(label, folder) of a --compare LABEL=RUN_DIR value, checked; a UserError (one sentence) if it is wrong."""
    label, sep, folder = value.partition("=")
    label, folder = label.strip(), folder.strip()
    if not sep or not label or not folder:
        raise UserError(f"--compare {value!r} is not LABEL=RUN_DIR; write it as --compare "
                        '"this code, scratch=runs/scratch"')
    return label, check_run_folder(folder, f"--compare {label}:")


def read_hparams(folder):
    """A run's hparams.json as train.py writes it; {} when absent (the published runs have none) or unreadable."""
    try:
        hparams = json.loads((folder / "hparams.json").read_text())
    except (OSError, ValueError):
        return {}
    return hparams if isinstance(hparams, dict) else {}


def scratch_runs(runs_dir):
    """From-scratch runs: folders named scratch* (as train.py and grid_search.py name them), or so marked in
    hparams.json."""
    folders = sorted(p for p in runs_dir.iterdir() if p.is_dir())
    return [Run(f) for f in folders if f.name.startswith("scratch") or read_hparams(f).get("scratch") is True]


def read_scalars(folder):
    """{tag: (epochs, values)} of a run folder; the step is the epoch index from 0, drawn from 1.

    EventAccumulator merges the event files of a resumed run; a step logged twice keeps its last value.
    """
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance=SIZE_GUIDANCE)
    acc.Reload()
    curves = {}
    for tag in acc.Tags()["scalars"]:
        by_step = {e.step: e.value for e in acc.Scalars(tag)}
        steps = sorted(by_step)
        curves[tag] = (np.array(steps) + 1, np.array([by_step[s] for s in steps], dtype=float))
    return curves


class Logs:
    """The scalars of run folders, each folder read once however many figures draw it."""

    def __init__(self):
        self._scalars = {}

    def curve(self, run, tag, figure):
        """(epochs, values) of `tag` in `run`, or None after a one-line warning."""
        if run.folder not in self._scalars:
            try:
                self._scalars[run.folder] = read_scalars(run.folder)
            except Exception as e:  # a corrupt or vanished event file costs one run, not the report
                warn(f"could not read the event files of {run.folder} ({type(e).__name__}); left out of the figures")
                self._scalars[run.folder] = None
            if self._scalars[run.folder] == {}:  # one line, rather than one per figure
                warn(f"{run.folder} has no scalars (no event file, or an unreadable one); left out of the figures")
                self._scalars[run.folder] = None
        scalars = self._scalars[run.folder]
        if scalars is None:
            return None
        if tag not in scalars:
            warn(f"{run.folder} has no {tag} scalars; left out of {figure}")
            return None
        return scalars[tag]


# ---- learning curves: figures 1-6 ----

def format_lr(lr):
    """1e-3 rather than 0.001: the grid's learning rates read best as powers of ten."""
    mantissa, exponent = f"{lr:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def config_key(row):
    return int(row["Epochs"]), float(row["LR_FC"]), float(row["LR_Base"])


def config_label(config, with_epochs):
    epochs, lr_fc, lr_base = config
    label = f"lr_fc {format_lr(lr_fc)} / lr_base {format_lr(lr_base)}"
    return f"{epochs} epochs, {label}" if with_epochs else label


def mean_band(curves):
    """Epochs, and the mean, min and max over the curves at each epoch any of them reached."""
    by_epoch = {}
    for epochs, values in curves:
        for epoch, value in zip(epochs, values, strict=True):
            by_epoch.setdefault(int(epoch), []).append(value)
    epochs = sorted(by_epoch)
    stacked = [np.array(by_epoch[e]) for e in epochs]
    return (np.array(epochs), np.array([v.mean() for v in stacked]), np.array([v.min() for v in stacked]),
            np.array([v.max() for v in stacked]))


def plot_curves(series, tag, ylabel, title, path, logs):
    """One line per (label, style, runs) of `series`; several runs (seeds) draw their mean and a min-max band.

    Returns the path, or None (with a warning) when no run has the tag.
    """
    fig, ax = plt.subplots(figsize=FIGSIZE)
    scale = 100 if tag.startswith("Accuracy/") else 1  # accuracies in percent, like the tables
    for label, style, runs in series:
        curves = [c for c in (logs.curve(run, tag, path.name) for run in runs) if c is not None]
        if not curves:
            continue
        epochs, mean, low, high = mean_band(curves)
        if len(curves) > 1:
            ax.fill_between(epochs, low * scale, high * scale, color=style["color"], alpha=0.18, linewidth=0)
            label = f"{label} (mean of {len(curves)} seeds, band min-max)"
        ax.plot(epochs, mean * scale, label=label, linewidth=1.6, **style)
    if not ax.lines:
        plt.close(fig)
        warn(f"no run has {tag} scalars; {path.name} not written")
        return None
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    last = max(int(line.get_xdata()[-1]) for line in ax.lines)
    ax.set_xlim(0.5, last + 0.5)
    ax.set_xticks(epoch_ticks(last))
    ax.grid(True, alpha=0.3)
    # Below the axes, so no legend ever hides a curve; short labels share a row.
    short = max(len(line.get_label()) for line in ax.lines) <= 45
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.13),
              ncol=2 if short and len(ax.lines) > 1 else 1, frameon=False)
    save_figure(fig, path)
    return path


def epoch_ticks(last):
    """1, then every 1, 2, 5, 10, ... epochs: at most about 8 ticks, the first epoch always labelled."""
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 10**9) if last / s <= 8)
    return sorted({1, *range(step, last + 1, step)})


def compare_series(pairs):
    """plot_curves' series of (label, folder) or (label, folder, style) pairs; COMPARE_STYLES where no style is
    given."""
    return [(label, style[0] if style else COMPARE_STYLES[i % len(COMPARE_STYLES)], [Run(Path(folder))])
            for i, (label, folder, *style) in enumerate(pairs)]


def plot_runs(series, tag, ylabel, title, path, logs=None):
    """One curve of `tag` per run of `series`, (label, run folder) or (label, run folder, matplotlib style)
    pairs, from any TensorBoard roots; accuracies in percent. Returns the path, or None if no run has the tag.

    Each folder must hold the run's event files (a UserError otherwise); a folder without `tag` is left out
    with a warning. Figures 4-6 draw their --compare runs with the same code.
    """
    for label, folder, *_ in series:
        check_run_folder(folder, f"run {label!r}:")
    return plot_curves(compare_series(series), tag, ylabel, title, Path(path), logs or Logs())


def grid_figures(runs, out, logs, epochs):
    """Figures 1-3: each configuration of the grid, in experiment order, one colour for it in all three."""
    configs = {}
    for run in sorted(runs, key=lambda r: int(r.row["Experiment"])):
        configs.setdefault(config_key(run.row), []).append(run)
    with_epochs = len({c[0] for c in configs}) > 1
    series = [(config_label(c, with_epochs), {"color": COLOURS[i % len(COLOURS)]}, rs)
              for i, (c, rs) in enumerate(configs.items())]
    which = f" ({', '.join(map(str, epochs))}-epoch runs)" if epochs else ""
    figures = []
    for i, (name, tag, ylabel, what) in enumerate(CURVES, 1):
        title = f"{what} of the fine-tuning grid{which}"
        path = plot_curves(series, tag, ylabel, title, out / f"fig{i}_{name}.png", logs)
        figures += [(path, title)] if path else []
    return figures, {c: s for c, (_, s, _) in zip(configs, series, strict=True)}


def versus_figures(best, styles, scratch, out, logs, compare=()):
    """Figures 4-6: the chosen fine-tuned run, in its colour of figures 1-3, against every from-scratch run and
    the (label, folder) runs of `compare`, from any folder."""
    series = []
    if best is not None:
        config = config_key(best.row)
        series.append((f"fine-tuned, {describe(best.row)}: {config_label(config, True)}", styles[config], [best]))
    series += [(f"from scratch: {run.folder.name}", SCRATCH_STYLES[i % len(SCRATCH_STYLES)], [run])
               for i, run in enumerate(scratch)]
    series += compare_series(compare)
    figures = []
    for i, (name, tag, ylabel, what) in enumerate(CURVES, 4):
        title = f"{what}: best fine-tuned run vs training from scratch"
        path = plot_curves(series, tag, ylabel, title, out / f"fig{i}_best_vs_scratch_{name}.png", logs)
        figures += [(path, title)] if path else []
    return figures


# ---- evaluate.py's tables: figures 7-8 ----

def read_per_class(path):
    """[(class, images, correct, accuracy)] of evaluate.py's per_class.csv, without classes that have no images."""
    with open(path, newline="") as f:
        rows = [(r["class"], int(r["images"]), int(r["correct"]), float(r["accuracy"])) for r in csv.DictReader(f)]
    if not rows:
        raise ValueError("no classes in it")
    return [r for r in rows if r[1] > 0]


def read_confusion(path):
    """(long tensor, class names) of evaluate.py's confusion.csv: rows are true classes, columns predictions."""
    with open(path, newline="") as f:
        header, *rows = list(csv.reader(f))
    classes = header[1:]
    if [r[0] for r in rows] != classes:
        raise ValueError("its row and column classes differ")
    confusion = torch.tensor([[int(v) for v in r[1:]] for r in rows], dtype=torch.long)  # ragged rows: ValueError
    if confusion.shape != (len(classes), len(classes)):
        raise ValueError("it is not a square matrix")
    return confusion, classes


def plot_worst_classes(rows, path, n=WORST_CLASSES, subject=None):
    """Horizontal bars of the n lowest per-class accuracies, worst at the top, each with its image count;
    `subject` names the model in the title."""
    worst = sorted(rows, key=lambda r: (r[3], -r[1], r[0]))[:n]  # ties: the class with more images first
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.32 * len(worst) + 1.4)))
    y = np.arange(len(worst))
    ax.barh(y, [100 * r[3] for r in worst], color="tab:red", alpha=0.75)
    for i, (_, images, correct, acc) in enumerate(worst):
        ax.text(100 * acc + 1, i, f"{correct} of {images} correct", va="center", fontsize="small")
    ax.set_yticks(y, [r[0] for r in worst])
    ax.invert_yaxis()
    ax.set_xlim(0, 118)  # room for the labels of the best bars
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("per-class accuracy (%)")
    whose = f"The {subject} model's" if subject else "The"
    ax.set_title(f"{whose} {len(worst)} classes with the lowest accuracy, of {len(rows)}")
    ax.grid(True, axis="x", alpha=0.3)
    save_figure(fig, path)


def check_eval_name(name):
    if not name or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in name):
        raise UserError(f"--eval-name {name!r} must be letters, digits, '_', '.' or '-', as it goes into file names")
    return name


def eval_figures(eval_dir, out, model=None):
    """Figures 7-8 from the tables `evaluate.py --out DIR` writes; a missing or malformed table skips its figure.

    `model` (e.g. scratch) names the evaluated model in the file names (fig7_scratch_worst_classes.png,
    fig8_scratch_confusion.png) and the titles.
    """
    part = f"{check_eval_name(model)}_" if model is not None else ""
    of, whose = (f" of the {model} model", f"The {model} model's") if model else ("", "The")
    figures = []
    for table, read, plot, name, title in (
            ("per_class.csv", read_per_class, lambda data, path: plot_worst_classes(data, path, subject=model),
             f"fig7_{part}worst_classes.png", f"{whose} {WORST_CLASSES} classes with the lowest accuracy"),
            ("confusion.csv", read_confusion, lambda data, path: plot_confusion(*data, path, subject=model),
             f"fig8_{part}confusion.png", f"Confusion matrix{of}, row-normalised")):
        try:
            data = read(eval_dir / table)
        except FileNotFoundError:
            warn(f"{eval_dir / table} not found (python evaluate.py --out {eval_dir} writes it); {name} not written")
            continue
        except (OSError, KeyError, TypeError, ValueError) as e:
            warn(f"{eval_dir / table} could not be read ({type(e).__name__}: {e}); {name} not written")
            continue
        plot(data, out / name)
        figures.append((out / name, title))
    return figures


# ---- RESULTS.md ----

def markdown_table(header, lines, align):
    """`align`: one of 'l' / 'r' per column."""
    rule = ["---:" if a == "r" else "---" for a in align]
    return "\n".join("| " + " | ".join(map(str, cells)) + " |" for cells in [header, rule, *lines])


def format_cell(column, value):
    if column in grid.ACCURACIES:
        try:
            return f"{100 * float(value):.2f}"
        except (TypeError, ValueError):
            return value or ""
    return f"`{value}`" if column == "Run" and value else (value or "")


def table_order(row):
    return row.get("Scratch") == "True", int(row["Experiment"]), int(row.get("Seed") or 0)


def grid_table(results, best, shown):
    """Every CSV row, accuracies in percent; `best` (the grid's choice) and `shown` (figures 4-6's) marked."""
    header = ["", *(f"{c} (%)" if c in grid.ACCURACIES else c for c in results.columns)]
    lines = []
    for row in sorted(results.rows, key=table_order):
        mark = "**best**" if row is best else "*figs 4-6*" if row is shown else ""
        lines.append([mark, *(format_cell(c, row[c]) for c in results.columns)])
    align = ["l", *("l" if c in ("Run", "Scratch") else "r" for c in results.columns)]
    return markdown_table(header, lines, align)


def seed_table(stats):
    """grid.seed_stats as mean +- sample std in percent (a single seed has no std)."""
    header = ["Experiment", "Epochs", "LR_FC", "LR_Base", "Scratch", "Seeds",
              *(f"{c} (%) mean ± std" for c in grid.ACCURACIES)]
    stats = sorted(stats, key=lambda e: (e["Scratch"] == "True", e["Experiment"]))  # as the grid table
    lines = [[e["Experiment"], e["Epochs"], f"{e['LR_FC']:g}", f"{e['LR_Base']:g}", e["Scratch"], e["n"],
              *(f"{100 * e[c][0]:.2f} ± {100 * e[c][1]:.2f}" if e["n"] > 1 else f"{100 * e[c][0]:.2f}"
                for c in grid.ACCURACIES)] for e in stats]
    return markdown_table(header, lines, ["r"] * 4 + ["l"] + ["r"] * 4)


def best_sentence(results, best, shown, epochs):
    """One sentence on the marker(s): how the best run was chosen, and which run figures 4-6 show if another."""
    how = ("the configuration with the highest mean Best_Val_Acc over its seeds, then its best seed"
           if results.ours else "the highest Best_Val_Acc, ties to the lower experiment")
    text = (f"**best** marks the fine-tuned run chosen on validation accuracy as grid_search.py chooses ({how}); "
            "test accuracy plays no part in the choice.")
    if shown is not None and shown is not best:
        text += (f" *figs 4-6* marks {describe(shown)}, the best on validation among the runs plotted "
                 f"(--epochs {' '.join(map(str, epochs))}), which figures 4-6 compare with training from scratch.")
    return text


def eval_sentence(eval_dir, model):
    """Where figures 7-8 come from, with the metrics of evaluate.py --json if it wrote them beside the tables."""
    of = f" ({model} model)" if model else ""
    text = f"Figures 7-8{of} are drawn from the tables of `evaluate.py --out {eval_dir}`"
    try:
        m = json.loads((Path(eval_dir) / "metrics.json").read_text())
        text += (f": accuracy {100 * m['accuracy']:.2f}, mean per-class {100 * m['mean_class_accuracy']:.2f}, "
                 f"top-5 {100 * m['top5_accuracy']:.2f} on {m['n_images']} {m['split']} images")
    except (OSError, ValueError, TypeError, KeyError):
        pass
    return text + "."


def results_markdown(results, runs_dir, best, shown, epochs, figures, notes=()):
    """RESULTS.md: the tables, then the figures by relative link, so it renders from inside the output folder.

    `notes`: sentences on the figures' other sources (--compare runs, --eval tables), after the first paragraph.
    """
    blocks = ["# Results",
              " ".join([f"Written by `report.py` from `{results.path}` ({len(results.rows)} runs) and the TensorBoard "
                        f"logs in `{runs_dir}`; nothing was retrained. Accuracies are in percent.", *notes]),
              "## Grid search", grid_table(results, best, shown), best_sentence(results, best, shown, epochs)]
    stats = grid.seed_stats(results.rows) if results.ours else []
    if any(e["n"] > 1 for e in stats):
        blocks += ["## Seed variation", "Per configuration: mean ± sample standard deviation over its seeds.",
                   seed_table(stats)]
    blocks.append("## Figures")
    for path, title in figures:
        number = path.name.split("_")[0].removeprefix("fig")
        blocks.append(f"**Figure {number}.** {title}\n\n![{title}]({path.name})")
    if not figures:
        blocks.append("No figure could be drawn; see the warnings report.py printed.")
    return "\n\n".join(blocks) + "\n"


# ---- the whole report ----

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
