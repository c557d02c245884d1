"""grid_search.py's printed tables: its runs, and mean +- sample std over seeds (accuracies in %)."""
import pandas as pd

from ..names import ACCURACIES, FINAL
from ..text import fixed_width
from .results import epochs_run, row_settings
from .trials import apart


def console_grid_table(rows, best, settings=()):
    """grid_search.py's results: accuracies in %, the chosen run marked with '*'; `settings` adds a column for
    each other recipe setting the grid varies (from the rows' Settings)."""
    frame = pd.DataFrame({
        "": ["*" if r is best else "" for r in rows], "Exp": [r["Experiment"] for r in rows],
        **{c: [r[c] for r in rows] for c in ("Epochs", "LR_FC", "LR_Base", "Seed")},
        **{key: [row_settings(r).get(key, "") for r in rows] for key in settings},
        **{FINAL[k].short: [f"{100 * float(r[FINAL[k].column]):.2f}" for r in rows] for k in ACCURACIES},
        "Seconds": [r["Train_Seconds"] for r in rows], "Epochs run": [epochs_run(r) for r in rows]})
    return fixed_width(frame)


def console_seed_table(stats):
    """grid_search.py's mean +- sample std per configuration over its seeds, in %, with a column for each setting
    that tells the configurations apart (trials.apart)."""
    frame = pd.DataFrame({
        **{label: [e[k] for e in stats]
           for label, k in (("Exp", "Experiment"), ("Epochs", "Epochs"), ("LR_FC", "LR_FC"), ("LR_Base", "LR_Base"))},
        **{key: [e["Split"][:8] if key == "Split" else e["Settings"].get(key, "") for e in stats]
           for key in apart(stats)},
        "Seeds": [e["n"] for e in stats],
        **{FINAL[k].short + (" (mean +- std)" if i == 0 else ""):
           [f"{100 * e[FINAL[k].column][0]:.2f} +- {100 * e[FINAL[k].column][1]:.2f}" for e in stats]
           for i, k in enumerate(ACCURACIES)}})
    return fixed_width(frame)
