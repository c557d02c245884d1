"""Tables with pandas: the text tables printed or written (fixed-width; RESULTS.md's, of the results CSV that
caltech.results reads, among others), and evaluate.py's per-class and confusion tables written and read back.

    print(grid_table(read_results("grid_search_results.csv"), {}))  # RESULTS.md's table of the runs
    write_per_class("eval/per_class.csv", confusion, classes)        # and read_per_class, for figure 7
    print(fixed_width(pd.DataFrame({"Exp": ["1"], "Val %": ["95.21"]})))

Accuracies are fractions in the files and percent in the tables of RESULTS.md.
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .metrics import per_class_rows
from .results import ACCURACIES, column, epochs_run, row_settings
from .utils import atomic_path

# evaluate.py's per_class.csv: its columns and their types
PER_CLASS = {"class": str, "images": "int64", "correct": "int64", "accuracy": "float64"}
CONFUSION_CORNER = "true\\predicted"  # confusion.csv's first header cell: rows are true classes
CSV_LINES = "\r\n"  # the csv module's line ending, which evaluate.py's tables have always had
# evaluate.py --json's keys before the {split}_{metric} names, still read for older files
OLD_EVAL_KEYS = {"acc": "accuracy", "mean_class_acc": "mean_class_accuracy", "top5": "top5_accuracy",
                 "n": "n_images"}


# ---- text tables ----

def fixed_width(frame):
    """`frame`'s header and cells right-aligned in columns two spaces apart, as the scripts print tables.

    By hand: DataFrame.to_string separates columns by one space and left-aligns the index.
    """
    rows = [[str(c) for c in frame.columns], *frame.astype(str).to_numpy().tolist()]
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows)


def console_grid_table(rows, best, settings=()):
    """grid_search.py's results: accuracies in %, the chosen run marked with '*'; `settings` adds a column for
    each other recipe setting the grid varies (from the rows' Settings)."""
    frame = pd.DataFrame({
        "": ["*" if r is best else "" for r in rows], "Exp": [r["Experiment"] for r in rows],
        **{c: [r[c] for r in rows] for c in ("Epochs", "LR_FC", "LR_Base", "Seed")},
        **{key: [row_settings(r).get(key, "") for r in rows] for key in settings},
        **{label: [f"{100 * float(r[c]):.2f}" for r in rows]
           for label, c in zip(("Val %", "Test %", "Test mean-class %"), ACCURACIES, strict=True)},
        "Seconds": [r["Train_Seconds"] for r in rows], "Epochs run": [epochs_run(r) for r in rows]})
    return fixed_width(frame)


def console_seed_table(stats):
    """grid_search.py's mean +- sample std per configuration over its seeds, in %."""
    frame = pd.DataFrame({
        **{label: [e[k] for e in stats]
           for label, k in (("Exp", "Experiment"), ("Epochs", "Epochs"), ("LR_FC", "LR_FC"), ("LR_Base", "LR_Base"),
                            ("Seeds", "n"))},
        **{label: [f"{100 * e[c][0]:.2f} +- {100 * e[c][1]:.2f}" for e in stats]
           for label, c in zip(("Val % (mean +- std)", "Test %", "Test mean-class %"), ACCURACIES, strict=True)}})
    return fixed_width(frame)


def markdown(frame, align):
    """A GitHub table of `frame`'s header and cells as they are; `align`: 'l' or 'r' per column.

    By hand: DataFrame.to_markdown needs tabulate, which is not a dependency.
    """
    rule = ["---:" if a == "r" else "---" for a in align]
    rows = [[str(c) for c in frame.columns], rule, *frame.astype(str).to_numpy().tolist()]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in rows)


# ---- the results CSV's rows ----

def describe(row):
    seed = f", seed {row['Seed']}" if row.get("Seed") else ""
    return f"experiment {row['Experiment']}{seed}"


# ---- evaluate.py's tables ----

def write_per_class(path, confusion, classes):
    """per_class.csv: class, images, correct, accuracy (4 decimals; nan for a class without images)."""
    frame = pd.DataFrame(per_class_rows(confusion, classes), columns=list(PER_CLASS))
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4f", na_rep="nan", lineterminator=CSV_LINES)


def read_per_class(path):
    """per_class.csv as a DataFrame with PER_CLASS's columns, without classes that have no images."""
    frame = pd.read_csv(path, dtype=PER_CLASS, keep_default_na=False, na_values={"accuracy": ["nan"]})
    missing = [c for c in PER_CLASS if c not in frame]
    if missing:
        raise KeyError(f"no column {', '.join(missing)}")
    if frame.empty:
        raise ValueError("no classes in it")
    return frame[frame["images"] > 0]


def write_confusion(path, confusion, classes):
    """confusion.csv: one row per true class, one column per predicted class, image counts."""
    frame = pd.DataFrame(confusion.numpy(), index=pd.Index(classes, name=CONFUSION_CORNER), columns=classes)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, lineterminator=CSV_LINES)


def read_confusion(path):
    """(long tensor, class names) of confusion.csv: rows are true classes, columns predictions."""
    frame = pd.read_csv(path, index_col=0, dtype=str, keep_default_na=False)
    classes = list(frame.columns)
    if list(frame.index) != classes:
        raise ValueError("its row and column classes differ")
    return torch.from_numpy(frame.astype(np.int64).to_numpy()), classes  # a ragged row: ValueError


def eval_metrics(m):
    """(acc, mean_class_acc, top5, n, split) of evaluate.py --json's dict, old key names too; KeyError if absent."""
    split = m["split"]
    return (*(m[f"{split}_{k}"] if f"{split}_{k}" in m else m[old] for k, old in OLD_EVAL_KEYS.items()), split)


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


RUN_ACCURACIES = {"Best_Val_Acc": "best_val_acc", "Test_Acc": "test_acc",
                  "Test_Mean_Class_Acc": "test_mean_class_acc", "Test_Top5": "test_top5"}


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
    stats = pd.DataFrame(stats)
    if labels is None:
        stats = stats.sort_values(["Scratch", "Experiment"], kind="stable",
                                  key=lambda c: c == "True" if c.name == "Scratch" else c)  # as grid_table
        frame = stats[["Experiment", "Epochs", "LR_FC", "LR_Base", "Scratch", "n"]].rename(columns={"n": "Seeds"})
        for c in ("LR_FC", "LR_Base"):
            frame[c] = frame[c].map("{:g}".format)
        align = ["r"] * 4 + ["l", "r"]
    else:
        frame = pd.DataFrame({"Configuration": [labels[e] for e in stats["Experiment"]], "Seeds": stats["n"]})
        align = ["l", "r"]
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
        acc, mean_class, top5, n, split = eval_metrics(json.loads((Path(eval_dir) / "metrics.json").read_text()))
        text += (f": accuracy {100 * acc:.2f}, mean per-class {100 * mean_class:.2f}, "
                 f"top-5 {100 * top5:.2f} on {n} {split} images")
    except (OSError, ValueError, TypeError, KeyError):
        pass
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
