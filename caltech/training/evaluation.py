"""evaluate.py's tables: per_class.csv and confusion.csv, written for a checkpoint's evaluation and read back for
the report's figures 7-8, and the metrics of `evaluate.py --json` (old key names too).

    write_per_class("eval/per_class.csv", confusion, classes)        # and read_per_class, for figure 7
"""
import numpy as np
import pandas as pd
import torch

from ..utils import atomic_path
from .metrics import per_class_rows

# evaluate.py's per_class.csv: its columns and their types
PER_CLASS = {"class": str, "images": "int64", "correct": "int64", "accuracy": "float64"}
CONFUSION_CORNER = "true\\predicted"  # confusion.csv's first header cell: rows are true classes
CSV_LINES = "\r\n"  # the csv module's line ending, which evaluate.py's tables have always had
# evaluate.py --json's keys before the {split}_{metric} names, still read for older files
OLD_EVAL_KEYS = {"acc": "accuracy", "mean_class_acc": "mean_class_accuracy", "top5": "top5_accuracy",
                 "n": "n_images"}


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
