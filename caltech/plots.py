"""Figures with matplotlib (headless Agg backend): learning curves from the runs' TensorBoard scalars
(figures 1-6), and evaluate.py's tables as figures 7-8. Accuracies are drawn in percent.

`plot_runs` draws one scalar of any run folders, from any TensorBoard roots, for figures of other scripts:

    plot_runs([("published, scratch", "../shared/original_runs/scratch_ep30_fc0.001_base0.0001_0527_182610"),
               ("ours, scratch", "runs/scratch")], "Accuracy/val", "validation accuracy (%)",
              "From scratch, with and without augmentation", Path("study.png"))
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .tables import PER_CLASS, describe, read_confusion, read_per_class  # noqa: E402
from .tblogs import Logs, Run, check_run_folder  # noqa: E402
from .utils import UserError, atomic_path, warn  # noqa: E402

FIGSIZE = (7, 4.5)
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
    points = pd.concat([pd.Series(values, index=np.asarray(epochs, dtype=int), dtype=float)
                        for epochs, values in curves])
    band = points.groupby(level=0).agg(["mean", "min", "max"])
    return band.index.to_numpy(), band["mean"].to_numpy(), band["min"].to_numpy(), band["max"].to_numpy()


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

def plot_worst_classes(rows, path, n=WORST_CLASSES, subject=None):
    """Horizontal bars of the n lowest per-class accuracies, worst at the top, each with its image count;
    `rows`: read_per_class's table, or (class, images, correct, accuracy) tuples; `subject` names the model."""
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
    whose = f"The {subject} model's" if subject else "The"
    ax.set_title(f"{whose} {len(worst)} classes with the lowest accuracy, of {len(rows)}")
    ax.grid(True, axis="x", alpha=0.3)
    save_figure(fig, path)


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
