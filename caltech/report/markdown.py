"""RESULTS.md's text, with pandas: the tables of the runs (a results CSV's, run folders', seed statistics, the
reproduction check), the sentences that say how the runs were chosen and where each figure comes from, and the
document itself.

    print(grid_table(read_results("grid_search_results.csv"), {}))  # RESULTS.md's table of the runs

Accuracies are fractions in the files and percent in the tables of RESULTS.md.
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..grid.results import column
from ..grid.trials import apart
from ..names import ACCURACY_COLUMNS as ACCURACIES
from ..names import FINAL
from ..recipe import SETTINGS
from ..text import markdown
from ..training.evaluation import eval_metrics
from . import reproduce

# ---- the results CSV's rows ----

def describe(row):
    seed = f", seed {row['Seed']}" if row.get("Seed") else ""
    return f"experiment {row['Experiment']}{seed}"


# ---- RESULTS.md ----

HIDDEN = ["Settings"]  # a JSON object per row: the recipe is in the other columns, in full in the CSV
SHORT_HASH = 8  # Split_SHA256 shown by its first characters: enough to tell two splits apart


def percent(value):
    """A fraction as a percent with 2 decimals; '-' for a missing value, other text as written."""
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if pd.isna(number):
        return "-" if value in (None, "") or (isinstance(value, float) and np.isnan(value)) else str(value)
    return f"{100 * number:.2f}"


def grid_table(results, marks):
    """Every CSV row, accuracies in percent, fine-tuned runs first; `marks`: {id(row): text} for the first
    column (the run chosen on validation, the one figures 4-6 show)."""
    frame = results.frame.drop(columns=[c for c in HIDDEN if c in results.frame]).copy()
    for c in frame.columns.intersection(ACCURACIES):
        frame[c] = frame[c].map(percent)
    if "Run" in frame:
        frame["Run"] = frame["Run"].map(lambda run: f"`{run}`" if run else "")
    if "Split_SHA256" in frame:
        frame["Split_SHA256"] = frame["Split_SHA256"].str[:SHORT_HASH]
    frame.insert(0, "", [marks.get(id(r), "") for r in results.rows])
    order = pd.DataFrame({"scratch": column(frame, "Scratch", "") == "True",
                          "experiment": frame["Experiment"].astype(int),
                          "seed": column(frame, "Seed", "").replace("", "0").astype(int)})
    frame = frame.loc[order.sort_values(list(order.columns), kind="stable").index]
    align = ["l", *("l" if c in ("Run", "Scratch", "Recipe", "Model", "Device", "Precision", "Split_SHA256")
                    else "r" for c in frame.columns[1:])]
    frame.columns = [f"{c} (%)" if c in ACCURACIES else c for c in frame.columns]
    return markdown(frame, align)


RUN_ACCURACIES = {FINAL[k].column: k for k in ("best_val_acc", "test_acc", "test_mean_class_acc", "test_top5")}


def runs_table(entries):
    """Runs known by their folders: (mark, run name, mode, settings label, seed, metrics.json dict or None)
    tuples; accuracies in percent, '-' where the run wrote no metrics.json (still running, or crashed)."""
    frame = pd.DataFrame([{"": mark, "Run": f"`{name}`", "Mode": mode, "Settings": settings,
                           "Seed": "" if seed is None else seed,
                           "Epochs_Run": (metrics or {}).get("epochs_run", "-"),
                           **{f"{c} (%)": percent((metrics or {}).get(k)) for c, k in RUN_ACCURACIES.items()}}
                          for mark, name, mode, settings, seed, metrics in entries])
    return markdown(frame, ["l", "l", "l", "l", "r", "r", *["r"] * len(RUN_ACCURACIES)])


def seed_table(stats, labels=None):
    """grid.seed_stats as mean +- sample std in percent (a single seed has no std); with `labels` (one per
    configuration, for runs without experiment numbers) a Configuration column instead of the grid's."""
    shown = apart(stats)  # the columns that tell the configurations apart
    stats = pd.DataFrame(stats)
    if labels is None:
        stats = stats.sort_values(["Scratch", "Experiment"], kind="stable",
                                  key=lambda c: c == "True" if c.name == "Scratch" else c)  # as grid_table
        frame = stats[["Experiment", "Epochs", "LR_FC", "LR_Base", "Scratch"]].copy()
        for c in ("LR_FC", "LR_Base"):
            frame[c] = frame[c].map("{:g}".format)
        align = ["r"] * 4 + ["l"]
    else:
        frame = pd.DataFrame({"Configuration": [labels[e] for e in stats["Experiment"]]})
        align = ["l"]
        shown = [k for k in shown if k == "Split"]  # the labels name the settings
    for key in shown:
        frame[key] = [split[:SHORT_HASH] for split in stats["Split"]] if key == "Split" else \
            [json.dumps(s.get(key, "")) if isinstance(s.get(key), (dict, list)) else s.get(key, "") for s in
             stats["Settings"]]
        align.append("l")
    frame["Seeds"] = stats["n"].to_numpy()
    align.append("r")
    for c in ACCURACIES:
        mean, std = (100 * stats[c].str[i] for i in (0, 1))
        frame[f"{c} (%) mean ± std"] = mean.map("{:.2f}".format) + (" ± " + std.map("{:.2f}".format)).where(
            stats["n"] > 1, "")
    return markdown(frame, align + ["r"] * len(ACCURACIES))


def best_sentence(mode, how, best, shown, epochs, describe_run, chosen=True):
    """One sentence on the marks: how the best run was chosen, and which run figures 4-6 show if another.

    `mode`: 'fine-tuned' or 'from-scratch'; `how`: the rule; None for `best` or `shown` when none is marked;
    `chosen`: whether `shown` was chosen on validation among several fine-tuned runs."""
    text = []
    if best is not None:
        text.append(f"**best** marks the {mode} run chosen on validation accuracy as grid_search.py chooses "
                    f"({how}); test accuracy plays no part in the choice.")
    if shown is not None and shown is not best:
        which = f" (--epochs {' '.join(map(str, epochs))})" if epochs else ""
        what = f"the best on validation among the fine-tuned runs plotted{which}" if chosen else \
            f"the only fine-tuned run plotted{which}"
        text.append(f"*figs 4-6* marks {describe_run(shown)}, {what}, which figures 4-6 show.")
    return " ".join(text)


def signed(value):
    return f"{100 * value:+.2f}"


def reproduction_table(frame):
    """reproduce.reproduction's table: per experiment, published and ours (mean ± std over seeds) in percent."""
    table = pd.DataFrame({"Experiment": frame["Experiment"], "Epochs": frame["Epochs"],
                          "LR_FC": frame["LR_FC"].map("{:g}".format), "LR_Base": frame["LR_Base"].map("{:g}".format),
                          "Seeds": frame["Seeds"]})
    for metric in ("Best_Val_Acc", "Test_Acc"):
        several = frame["Seeds"] > 1
        table[f"{metric} published (%)"] = frame[f"{metric} published"].map(lambda v: f"{100 * v:.2f}")
        table[f"{metric} ours (%)"] = (frame[f"{metric} mean"].map(lambda v: f"{100 * v:.2f}")
                                       + (" ± " + frame[f"{metric} std"].map(lambda v: f"{100 * v:.2f}"))
                                       .where(several, ""))
        table[f"{metric} ours − published"] = frame[f"{metric} diff"].map(signed)
        table[f"{metric} within"] = frame[f"{metric} within"].map(lambda w: "-" if w is None else "yes" if w else "no")
    return markdown(table, ["r"] * len(table.columns))


def eval_sentence(eval_dir, model, found):
    """Where figures 7-8 come from, with the metrics of evaluate.py --json if it wrote them beside the tables.

    `found`: how the folder was chosen when --eval did not name it (e.g. 'beside runs'), else None."""
    of = f" ({model} model)" if model else ""
    how = f", found {found}" if found else ""
    text = f"Figures 7-8{of} are drawn from the tables of `evaluate.py --out {eval_dir}`{how}"
    try:
        recorded = json.loads((Path(eval_dir) / "metrics.json").read_text())
        acc, mean_class, top5, n, split = eval_metrics(recorded)
        text += (f": accuracy {100 * acc:.2f}, mean per-class {100 * mean_class:.2f}, "
                 f"top-5 {100 * top5:.2f} on {n} {split} images")
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return text + "."
    if recorded.get("other_split") is True:
        text += (", **on a split other than the one the model was trained on** (`--allow-other-split`): its "
                 f"{split} images may include images it was trained or validated on")
    return text + "."


def caption(title):
    """A figure's title as one line: its second line (whose runs) after a semicolon."""
    return "; ".join(line for line in title.splitlines() if line)


def results_markdown(intro, sections, figures):
    """RESULTS.md: the intro, the (heading, [blocks]) sections, then the figures by relative link, so it renders
    from inside the output folder."""
    blocks = ["# Results", intro]
    for heading, body in sections:
        blocks += [f"## {heading}", *(b for b in body if b)]
    blocks.append("## Figures")
    for path, title in figures:
        number = path.name.split("_")[0].removeprefix("fig")
        blocks.append(f"**Figure {number}.** {caption(title)}.\n\n![{caption(title)}]({path.name})")
    if not figures:
        blocks.append("No figure could be drawn; see the warnings report.py printed.")
    return "\n\n".join(blocks) + "\n"


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


def settings_text(parts):
    """A run's settings in the runs table: its label parts but mode and seed (their own columns) and the default
    model."""
    hidden = {"mode", "seed"} | ({"model"} if parts.get("model") == SETTINGS["model"].default else set())
    return ", ".join(text for key, text in parts.items() if text and key not in hidden)


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
