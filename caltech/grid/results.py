"""The grid's results CSV, one row per run: its columns, a row's identity, reading it (checked), and writing it
atomically under a lock. grid_search.py adds rows; report.py reads them, or the published 6-column CSV.

    rows = read_rows("grid_search_results.csv")          # a grid's rows so far: [] before its first run
    append_result("grid_search_results.csv", make_row(trial, metrics))
    results = read_results("grid_search_results.csv")    # for a report: must exist, ours or the published one

Cells are the strings written (1e-05 stays 1e-05): a grid rewrites rows exactly as it read them.
"""
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from filelock import FileLock

from ..names import ACCURACIES as ACCURACY_KEYS
from ..names import FINAL
from ..utils import UserError, atomic_write_text

PUBLISHED = ["Experiment", "Epochs", "LR_FC", "LR_Base", "Best_Val_Acc", "Test_Acc"]
# Recipe: the run's non-default recipe options (names.recipe_tag), empty for the published recipe;
# Epochs_Run: the epochs the run really trained, fewer than Epochs after an early stop (--patience);
# Settings: the run's full recipe as JSON (recipe.identity: every setting of recipe.RECIPE) and Split_SHA256 the
# SHA-256 of its split.csv: together a row's identity. Device and Precision are for the record only.
COLUMNS = PUBLISHED + ["Test_Mean_Class_Acc", "Seed", "Scratch", "Train_Seconds", "Run", "Recipe", "Epochs_Run",
                       "Model", "Image_Size", "Batch_Size", "Device", "Precision", "Split_SHA256", "Settings"]
LATER = COLUMNS[COLUMNS.index("Recipe"):]  # absent from results files written before they existed: read as empty


# ---- a row ----

def make_row(trial, metrics):
    """The row of a grid.Trial that trained to `metrics` (fit.train's dict), formatted as the CSV has it."""
    settings = trial.settings
    return {"Experiment": trial.experiment, "Epochs": trial.epochs, "LR_FC": trial.lr_fc, "LR_Base": trial.lr_base,
            **{FINAL[k].column: f"{metrics[k]:.4f}" for k in ACCURACY_KEYS}, "Seed": trial.seed,
            "Scratch": str(trial.scratch), "Train_Seconds": f"{metrics['train_seconds']:.1f}",
            "Run": trial.run_name, "Recipe": trial.recipe,
            "Epochs_Run": metrics.get("epochs_run", trial.epochs),  # metrics from before --patience: all epochs
            "Model": settings.get("model", ""), "Image_Size": settings.get("image_size", ""),
            "Batch_Size": settings.get("batch_size", ""), "Device": metrics.get("device", ""),
            "Precision": metrics.get("precision", ""), "Split_SHA256": trial.split, "Settings": trial.settings_json}


def row_key(row):
    """A row's identity, (full recipe, split fingerprint); None for a row that does not record both (written
    before rows did): its settings are unknown, so it is never reused nor replaced."""
    settings, split = row.get("Settings") or "", row.get("Split_SHA256") or ""
    return (settings, split) if settings and split else None


def row_settings(row):
    """A row's full recipe as a dict ({} for a row written before rows recorded it)."""
    try:
        settings = json.loads(row.get("Settings") or "{}")
    except ValueError:
        return {}
    return settings if isinstance(settings, dict) else {}


def epochs_run(row):
    """The epochs a run really trained: rows from before early stopping ran all of theirs."""
    return row.get("Epochs_Run") or row["Epochs"]


# ---- reading ----

@dataclass
class Results:
    path: Path
    frame: pd.DataFrame  # every cell the string written, in file order
    rows: list  # the same runs as dicts, as caltech.grid.trials takes them; `row is best` marks a row of the table
    ours: bool  # grid_search.py's CSV (Seed, Scratch, Run columns...), else the published 6-column one

    @property
    def columns(self):
        return list(self.frame.columns)


def column(frame, name, default):
    """frame[name], or `default` in every row when the file has no such column (the published CSV)."""
    return frame[name] if name in frame else pd.Series(default, index=frame.index, dtype=object)


def read_frame(path):
    """The CSV's cells as written, in a DataFrame (no columns for a file without a header); a short row's
    missing cells are empty. A file that is not CSV text raises OSError, UnicodeDecodeError or ParserError."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False).fillna("")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


# the numbers of a row, by column: a cell that is not one is a damaged file (empty only where `optional`)
NUMBERS = {"Experiment": int, "Epochs": int, "LR_FC": float, "LR_Base": float, "Best_Val_Acc": float,
           "Test_Acc": float, "Test_Mean_Class_Acc": float, "Seed": int, "Train_Seconds": float, "Epochs_Run": int}
SHA256 = re.compile(r"[0-9a-f]{64}")


def check_rows(frame, path):
    """Refuse, in one sentence naming the row (as a line of the file) and the column, a results file that is
    not whole: a required column missing, a number that is not one, a Settings cell that is not a JSON object,
    a Split_SHA256 that is not a SHA-256, the same run (Settings and split) in two rows."""
    ours = "Seed" in frame and "Scratch" in frame
    missing = [c for c in (COLUMNS if ours else PUBLISHED) if c not in frame and c not in LATER]
    if missing:
        raise UserError(f"{path} lacks the column(s) {', '.join(missing)}, which every results file of "
                        "grid_search.py has: it was edited or is not one; pass another --results")
    seen = {}
    for line, row in enumerate(frame.to_dict("records"), 2):
        for column, kind in NUMBERS.items():
            cell = row.get(column, "")
            if column in frame and not (cell == "" and column in LATER):  # an older row's: unknown
                try:
                    value = kind(cell)
                except (TypeError, ValueError):
                    raise UserError(f"{path}, line {line}: {column} holds a non-numeric value, {cell!r}") from None
                if kind is float and not math.isfinite(value):
                    raise UserError(f"{path}, line {line}: {column} holds a non-numeric value, {cell!r}")
        settings, split = row.get("Settings", ""), row.get("Split_SHA256", "")
        if settings and not isinstance(_json(settings), dict):
            raise UserError(f"{path}, line {line}: its Settings cell is not the JSON of a run's settings (the file was "
                            "edited or damaged)")
        if split and not SHA256.fullmatch(split):
            raise UserError(f"{path}, line {line}: its Split_SHA256 {split!r} is not a SHA-256")
        key = row_key(row)
        if key is not None and key in seen:
            raise UserError(f"{path}, lines {seen[key]} and {line} hold the same run (the same Settings and "
                            "Split_SHA256); remove one of them")
        seen[key] = line


def _json(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def read_rows(path):
    """A grid's rows so far (dicts of strings, as written) of a results CSV of ours, checked (check_rows); []
    when it does not exist or is empty. Any other file is refused: a grid would rewrite it with its own rows."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return []
    try:
        frame = read_frame(path)
    except (UnicodeDecodeError, pd.errors.ParserError):
        frame = pd.DataFrame()
    if not {"Seed", "Scratch", "Run"} <= set(frame.columns):  # the published CSV, or no CSV at all
        raise UserError(f"--results {path} is not a results file of grid_search.py (no Seed, Scratch and Run "
                        "columns); pass another --results, a new file or one this script wrote")
    check_rows(frame, path)
    return frame.to_dict("records")


def read_results(path):
    """Our results CSV or the published one, for a report: it must exist, and is checked (check_rows) so that
    later steps cannot fail on it."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--results {path} is a folder; pass the grid's results CSV file")
    if not path.is_file():
        raise UserError(f"results file {path} not found; run grid_search.py first or pass --results")
    try:
        frame = read_frame(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise UserError(f"results file {path} could not be read ({type(e).__name__})") from None
    check_rows(frame, path)
    if frame.empty:
        raise UserError(f"{path} has no runs in it yet")
    return Results(path, frame, frame.to_dict("records"), "Seed" in frame and "Scratch" in frame)


# ---- writing ----

def write_results(path, rows):
    # object: a column of ints and an older row's missing value stays ints (and an empty cell), not floats
    frame = pd.DataFrame(rows, columns=COLUMNS, dtype=object)
    atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))


def results_lock(path):
    """An exclusive lock beside the CSV for its read-modify-write: two grids started at once on one
    results file (two terminals with different --seeds, say) then never overwrite each other's rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.with_name(f".{path.name}.lock")))


def append_result(path, row):
    """Rewrite the CSV with `row` added (replacing a row of the same trial: same settings, same split); valid
    after a kill at any moment. Rows of other settings, and rows of unknown settings, stay as they are."""
    key = row_key({k: str(v) for k, v in row.items()})
    with results_lock(path):
        rows = [r for r in read_rows(path) if key is None or row_key(r) != key]
        write_results(path, rows + [row])


def remove_rows(path, keys):
    """Rewrite the CSV without the rows whose row_key is in `keys`; rows of unknown settings stay."""
    with results_lock(path):
        write_results(path, [r for r in read_rows(path) if row_key(r) is None or row_key(r) not in keys])
