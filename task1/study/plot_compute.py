"""The study's compute figure: test mean per-class accuracy of every from-scratch run recorded under task1/study
against the hours it trained on the 2-core dev machine, read from each run's records (nothing is recomputed).

    python task1/study/plot_compute.py        # -> task1/study/compute.png, and the table it draws, printed

Hours: the epochs a run trained times the median of its epoch times in its console log (the minimum is the run
alone; the median stays near it although other jobs and the test suite shared the machine at times, and
pauses, which `train_seconds` counts, drop out), on 2 threads.
"""
import json
import re
import statistics
import sys
from pathlib import Path

import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from caltech.report.figures import FIGSIZE, legend_below, save_figure  # noqa: E402
from caltech.report.labels import distinguishing_labels, run_parts  # noqa: E402

STUDY = Path(__file__).resolve().parent
STAGES = {"screen": "stage 1: 30 epochs", "grids": "stages 2-3", "screen60": "stage 4: 60 epochs",
          "final": "stage 5: seeds 108, 109"}
EPOCH = re.compile(r"^epoch \d+/\d+ .* (\d+)s(  \*best)?$")


def runs():
    """(stage, folder name, hparams, metrics, hours) of every finished run recorded under task1/study."""
    found = []
    for stage in STAGES:
        for metrics_path in sorted((STUDY / stage).glob("*/metrics.json")):
            folder = metrics_path.parent
            metrics = json.loads(metrics_path.read_text())
            hparams = json.loads((folder / "hparams.json").read_text())
            log = folder / "console.log"
            seconds = [int(m.group(1)) for line in (log.read_text().splitlines() if log.is_file() else [])
                       if (m := EPOCH.match(line))]
            per_epoch = statistics.median(seconds) if seconds else metrics["train_seconds"] / metrics["epochs_run"]
            found.append((stage, folder.name, hparams, metrics, metrics["epochs_run"] * per_epoch / 3600))
    return found


def main():
    found = runs()
    labels = distinguishing_labels([run_parts(h) for _, _, h, _, _ in found], keep=("lr", "epochs", "size"))
    fig, ax = plt.subplots(figsize=FIGSIZE)
    colours = dict(zip(STAGES, ("tab:grey", "tab:blue", "tab:orange", "tab:green"), strict=True))
    for stage in STAGES:
        for size, marker in ((112, "o"), (224, "s")):  # squares: trained at 224 px
            points = [(hours, 100 * m["test_mean_class_acc"]) for s, _, h, m, hours in found
                      if s == stage and h.get("image_size") == size]
            if points:
                ax.scatter(*zip(*points, strict=True), color=colours[stage], marker=marker, s=24,
                           label=f"{STAGES[stage]}, {size} px")
    print("| stage | run | settings | hours | best val % | test mean per-class % |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for (stage, name, _, m, hours), label in zip(found, labels, strict=True):
        print(f"| {stage} | `{name}` | {label} | {hours:.2f} | {100 * m['best_val_acc']:.2f} | "
              f"{100 * m['test_mean_class_acc']:.2f} |")
    ax.axhline(55, color="black", linestyle=":", linewidth=1)
    ax.text(ax.get_xlim()[0], 55.2, " goal: 55%", fontsize=8, va="bottom")
    ax.set_xlabel("hours of training on the 2-core CPU (epochs x median epoch time)")
    ax.set_ylabel("test mean per-class accuracy (%)")
    ax.set_title("From scratch: every recorded run's test mean per-class accuracy against its training time\n"
                 "task1/study/ (seed 107 unless a seeds stage)")
    ax.grid(alpha=0.3)
    legend_below(ax, ncol=3)
    save_figure(fig, STUDY / "compute.png")


if __name__ == "__main__":
    main()
