"""Figures with matplotlib (headless Agg backend): learning curves from the runs' TensorBoard scalars
(figures 1-6), evaluate.py's tables as figures 7-8, and the runs' final accuracies against the epochs they
were given (figure 9). Accuracies are drawn in percent.
"""
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..names import ACCURACY_TAGS, EPOCH, FINAL  # noqa: E402
from ..training.evaluation import PER_CLASS, read_confusion, read_per_class  # noqa: E402
from ..utils import UserError, atomic_path, warn  # noqa: E402
from .runs import Run  # noqa: E402

FIGSIZE = (7, 4.5)
# (file name part, tag, y-axis label, title words) of figures 1-3, and again of figures 4-6
CURVES = [(name, EPOCH[key].tag, EPOCH[key].label, title) for name, key, title in (
    ("val_accuracy", "val_acc", "Validation accuracy"), ("train_loss", "train_loss", "Training loss"),
    ("val_loss", "val_loss", "Validation loss"))]
COLOURS = plt.get_cmap("tab10").colors
# From-scratch runs are dashed (then dotted), in colours outside tab10, so they never look like a grid configuration.
SCRATCH_STYLES = [{"color": c, "linestyle": ls} for ls in ("--", ":")
                  for c in ("black", "dimgray", "darkgoldenrod", "darkslateblue")]
# Runs from other folders (--compare): solid, with markers, so they are told apart from both.
COMPARE_STYLES = [{"color": c, "linestyle": "-", "marker": m, "markersize": 3.5}
                  for c, m in (("crimson", "o"), ("teal", "s"), ("darkorange", "^"), ("darkviolet", "D"))]
WORST_CLASSES = 15
# Figure 9: (legend words, line style, marker) of each results column it can draw
BUDGET_METRICS = {FINAL[key].column: (FINAL[key].label, style, marker) for key, style, marker in (
    ("best_val_acc", "-", "o"), ("test_mean_class_acc", "--", "s"), ("test_acc", ":", "^"))}


def save_figure(fig, path):
    """Write `fig` as a PNG, atomically; characters the font lacks (class names in another script) are one
    warning line, not matplotlib's one per glyph."""
    with atomic_path(path) as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    missing = {str(w.message) for w in caught if "missing from" in str(w.message)}
    if missing:
        warn(f"{path.name}: {len(missing)} character(s) of its labels are not in the figure's font and show as "
             "boxes (class names in another script)")
    for other in (w for w in caught if "missing from" not in str(w.message)):
        warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)


# ---- learning curves: figures 1-6 ----

def mean_band(curves):
    """Epochs, and the mean, min and max over the curves at each epoch any of them reached."""
    points = pd.concat([pd.Series(values, index=np.asarray(epochs, dtype=int), dtype=float)
                        for epochs, values in curves])
    band = points.groupby(level=0).agg(["mean", "min", "max"])
    return band.index.to_numpy(), band["mean"].to_numpy(), band["min"].to_numpy(), band["max"].to_numpy()


def plot_curves(series, tag, ylabel, title, path, logs):
    """One line per (label, style, runs) of `series`; several runs (seeds) draw their mean and a min-max band.

    Returns the path, or None (with a warning) when no run has the tag.
    """
    fig, ax = plt.subplots(figsize=FIGSIZE)
    scale = 100 if tag in ACCURACY_TAGS else 1  # accuracies in percent, like the tables
    for label, style, runs in series:
        curves = [c for c in (logs.curve(run, tag, path.name) for run in runs) if c is not None]
        if not curves:
            continue
        epochs, mean, low, high = mean_band(curves)
        if len(curves) > 1:
            ax.fill_between(epochs, low * scale, high * scale, color=style["color"], alpha=0.18, linewidth=0)
            label = f"{label} (mean of {len(curves)} seeds, band min-max)"
        if len(epochs) == 1:  # one epoch draws no line: a marker shows it
            style = {"marker": "o", **style}
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
    short = max(len(line.get_label()) for line in ax.lines) <= 45  # short labels share a row
    legend_below(ax, ncol=2 if short and len(ax.lines) > 1 else 1)
    save_figure(fig, path)
    return path


def legend_below(ax, ncol=1):
    """The legend below the axes, so that it never hides a curve."""
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=ncol, frameon=False)


def epoch_ticks(last):
    """1, then every 1, 2, 5, 10, ... epochs: at most about 8 ticks, the first epoch always labelled."""
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 10**9) if last / s <= 8)
    return sorted({1, *range(step, last + 1, step)})


def compare_series(pairs):
    """plot_curves' series of (label, folder) pairs, in COMPARE_STYLES."""
    return [(label, COMPARE_STYLES[i % len(COMPARE_STYLES)], [Run(Path(folder))])
            for i, (label, folder) in enumerate(pairs)]


def curve_figures(series, out, logs, first, name, title):
    """Three figures of `series` (plot_curves'), numbered from `first`: validation accuracy, training loss,
    validation loss; file fig{N}_{name}{curve}.png, title title(what). Returns [(path, title)] of those drawn."""
    figures = []
    for i, (part, tag, ylabel, what) in enumerate(CURVES, first):
        path = plot_curves(series, tag, ylabel, title(what), out / f"fig{i}_{name}{part}.png", logs)
        figures += [(path, title(what))] if path else []
    return figures


def grid_figures(configs, out, logs, subject, source):
    """Figures 1-3: one line per (key, label, runs) configuration, one colour for it in all three; `subject` says
    which runs they are, `source` whose. Returns the figures and {key: style}, for figures 4-6."""
    series = [(label, {"color": COLOURS[i % len(COLOURS)]}, runs) for i, (_, label, runs) in enumerate(configs)]
    figures = curve_figures(series, out, logs, 1, "", lambda what: f"{what} of {subject}\n{source}")
    return figures, {key: style for (key, _, _), (_, style, _) in zip(configs, series, strict=True)}


def versus_figures(series, out, logs, subject, source):
    """Figures 4-6: plot_curves' `series` (the chosen fine-tuned run, the from-scratch runs, the --compare runs);
    `subject` says what they compare, `source` whose runs they are."""
    return curve_figures(series, out, logs, 4, "best_vs_scratch_", lambda what: f"{what}: {subject}\n{source}")


# ---- evaluate.py's tables: figures 7-8 ----

def worst_title(shown, total, subject=None):
    whose = f"The {subject} model's" if subject else "The"
    return f"{whose} {shown} classes with the lowest accuracy, of {total}"


def plot_worst_classes(rows, path, n=WORST_CLASSES, subject=None, source=None):
    """Horizontal bars of the n lowest per-class accuracies, worst at the top, each with its image count;
    `rows`: read_per_class's table, or (class, images, correct, accuracy) tuples; `subject` names the model,
    `source` (a second title line) where its evaluation comes from. Returns the title."""
    rows = pd.DataFrame(rows, columns=list(PER_CLASS))
    # ties: the class with more images first
    worst = rows.sort_values(["accuracy", "images", "class"], ascending=[True, False, True]).head(n)
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.32 * len(worst) + 1.4)))
    y = np.arange(len(worst))
    ax.barh(y, 100 * worst["accuracy"].to_numpy(), color="tab:red", alpha=0.75)
    for i, (images, correct, acc) in enumerate(zip(worst["images"], worst["correct"], worst["accuracy"], strict=True)):
        ax.text(100 * acc + 1, i, f"{correct} of {images} correct", va="center", fontsize="small")
    ax.set_yticks(y, worst["class"].tolist())
    ax.invert_yaxis()
    ax.set_xlim(0, 118)  # room for the labels of the best bars
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("per-class accuracy (%)")
    title = worst_title(len(worst), len(rows), subject) + (f"\n{source}" if source else "")
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    save_figure(fig, path)
    return title


def plot_confusion(confusion, classes, path, subject=None, source=None):
    """Row-normalised confusion matrix (each true class sums to 1), so small classes stay visible; `subject`
    names the model in the title, `source` (a second title line) where its evaluation comes from. Returns the
    title."""
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
    title = f"Confusion matrix{of} (row-normalised), {int(confusion.sum())} images" + (f"\n{source}" if source else "")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    save_figure(fig, path)
    return title


def check_eval_name(name):
    if not name or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in name):
        raise UserError(f"--eval-name {name!r} must be letters, digits, '_', '.' or '-', as it goes into file names")
    return name


def eval_figures(eval_dir, out, model=None):
    """Figures 7-8 from the tables `evaluate.py --out DIR` writes; a missing or malformed table skips its figure.
    Returns [(path, title)]: each title names the model and the folder it was evaluated into.

    `model` (e.g. scratch) names the evaluated model in the file names (fig7_scratch_worst_classes.png,
    fig8_scratch_confusion.png) and the titles.
    """
    part = f"{check_eval_name(model)}_" if model is not None else ""
    source = f"evaluate.py --out {eval_dir}"
    figures = []
    for table, read, plot, name in (
            ("per_class.csv", read_per_class,
             lambda data, path: plot_worst_classes(data, path, subject=model, source=source),
             f"fig7_{part}worst_classes.png"),
            ("confusion.csv", read_confusion,
             lambda data, path: plot_confusion(*data, path, subject=model, source=source),
             f"fig8_{part}confusion.png")):
        try:
            data = read(eval_dir / table)
        except FileNotFoundError:
            warn(f"{eval_dir / table} not found (python evaluate.py --out {eval_dir} writes it); {name} not written")
            continue
        except (OSError, KeyError, TypeError, ValueError) as e:
            warn(f"{eval_dir / table} could not be read ({type(e).__name__}: {e}); {name} not written")
            continue
        figures.append((out / name, plot(data, out / name)))
    return figures


# ---- the runs' accuracies against their epoch budget: figure 9 ----

def plot_budgets(configs, metrics, path, title):
    """Figure 9: one colour per configuration of `configs`, [(label, {epochs: {results column: [fractions, one
    per seed]}})], one line per column of `metrics` through the seed means of its budgets, and a vertical bar
    from the lowest to the highest seed where there are several. Returns the path."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for i, (label, points) in enumerate(configs):
        colour = COLOURS[i % len(COLOURS)]
        for column in metrics:
            what, linestyle, marker = BUDGET_METRICS[column]
            budgets = sorted(e for e in points if points[e].get(column))
            values = [100 * np.asarray(points[e][column], dtype=float) for e in budgets]
            ax.plot(budgets, [v.mean() for v in values], color=colour, linestyle=linestyle, marker=marker,
                    linewidth=1.6, label=f"{label}: {what}" if label else what)
            spread = [(e, v.min(), v.max()) for e, v in zip(budgets, values, strict=True) if len(v) > 1]
            if spread:
                ax.vlines(*zip(*spread, strict=True), color=colour, alpha=0.5, linewidth=3)
    ax.set_title(title)
    ax.set_xlabel("epochs the run was given")
    ax.set_ylabel("accuracy (%)")
    ax.set_xticks(sorted({e for _, points in configs for e in points}))
    ax.grid(True, alpha=0.3)
    legend_below(ax)
    save_figure(fig, path)
    return path
