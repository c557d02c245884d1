"""Figures and tables for reports (matplotlib, headless Agg backend)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .utils import atomic_path  # noqa: E402


def save_figure(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_confusion(confusion, classes, path):
    """Row-normalised confusion matrix (each true class sums to 1), so small classes stay visible."""
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
    ax.set_title(f"Confusion matrix (row-normalised), {int(confusion.sum())} images")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    save_figure(fig, path)
