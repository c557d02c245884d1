"""The published grid's results, and our runs of its configurations set against them (RESULTS.md's
reproduction check).

    published_recipe_row(row)               # a results row of ours made with the published recipe?
    reproduction(records)                   # per published experiment: published, ours (mean, std, seeds), diff

Only runs made with the published recipe count: fine-tuned ResNet-18 (ImageNet weights) at 224 px, batch 32,
Adam, StepLR every 10 epochs x 0.1, no recipe option, at one of the grid's epochs x lr_fc x lr_base.
"""
import io

import pandas as pd

# The published grid_search_results.csv, as published: its only home in the code.
PUBLISHED_CSV = """\
Experiment,Epochs,LR_FC,LR_Base,Best_Val_Acc,Test_Acc
1,20,0.001,0.0001,0.9472,0.9591
2,20,0.001,1e-05,0.9389,0.9543
3,20,0.0005,0.0001,0.9521,0.9614
4,20,0.0005,1e-05,0.9406,0.9511
5,30,0.001,0.0001,0.9472,0.9633
6,30,0.001,1e-05,0.9323,0.9522
7,30,0.0005,0.0001,0.9488,0.9603
8,30,0.0005,1e-05,0.9389,0.9509
"""
PUBLISHED = pd.read_csv(io.StringIO(PUBLISHED_CSV))
# The published recipe beyond the grid's axes, as train.py's recipe settings name it
PUBLISHED_RECIPE = {"model": "resnet18", "image_size": 224, "batch_size": 32, "step_size": 10, "gamma": 0.1}
PUBLISHED_WEIGHTS = "IMAGENET1K_V1"
METRICS = ("Best_Val_Acc", "Test_Acc")
# The rule for "within the seed spread", as RESULTS.md states it
SPREAD = 2  # published value within our mean +- SPREAD sample standard deviations


def experiment(epochs, lr_fc, lr_base):
    """The published experiment number of a configuration, or None when it is not one of the grid's."""
    for e in PUBLISHED.itertuples():
        if int(epochs) == e.Epochs and abs(float(lr_fc) - e.LR_FC) < 1e-12 and abs(float(lr_base) - e.LR_Base) < 1e-12:
            return int(e.Experiment)
    return None


def settings_match(settings):
    """The published recipe's model, size, batch and schedule (and weights, where recorded) in `settings`."""
    weights = settings.get("weights_name")
    return (all(settings.get(k) == v for k, v in PUBLISHED_RECIPE.items())
            and weights in (None, PUBLISHED_WEIGHTS))


def published_recipe_row(row, settings):
    """A results row of ours made with the published recipe: fine-tuned, no recipe option (empty Recipe) and,
    where the row records its full recipe (`settings`, its Settings cell; {} when missing: unknown, accepted on
    its other columns), the published model, image size, batch size and StepLR."""
    if row.get("Scratch", "False") == "True" or row.get("Recipe"):
        return False
    return not settings or settings_match(settings)


def published_recipe_settings(settings, defaults):
    """A run known by its hparams.json made with the published recipe: fine-tuned, the published model, size,
    batch and schedule, and every other option at train.py's default (`defaults`; a setting the run does not
    record predates its option, so it ran without it)."""
    settings = {**defaults, **settings}
    if settings.get("scratch") is not False:
        return False
    options = [k for k in defaults if k not in (*PUBLISHED_RECIPE, "weights_name", "epochs", "lr_fc", "lr_base",
                                                "seed", "scratch", "loader")]
    return settings_match(settings) and all(settings[k] == defaults[k] for k in options)


def reproduction(records):
    """Per published experiment that `records` have: published and our Best_Val_Acc and Test_Acc (our mean,
    sample std, min and max over seeds), ours minus published, and whether the published value lies within
    our mean +- SPREAD std (None with one seed).

    `records`: dicts with Epochs, LR_FC, LR_Base, Best_Val_Acc, Test_Acc (numbers) of published-recipe runs.
    Returns a DataFrame, one row per experiment in published order, or None when no record is in the grid."""
    frame = pd.DataFrame(list(records), columns=["Epochs", "LR_FC", "LR_Base", *METRICS])
    frame["Experiment"] = [experiment(r.Epochs, r.LR_FC, r.LR_Base) for r in frame.itertuples()]
    frame = frame.dropna(subset=["Experiment"])
    if frame.empty:
        return None
    ours = frame.groupby("Experiment")[list(METRICS)].agg(["mean", "std", "min", "max", "count"])
    rows = []
    for e in PUBLISHED.itertuples():
        if e.Experiment not in ours.index:
            continue
        row = {"Experiment": e.Experiment, "Epochs": e.Epochs, "LR_FC": e.LR_FC, "LR_Base": e.LR_Base,
               "Seeds": int(ours.loc[e.Experiment, (METRICS[0], "count")])}
        for metric in METRICS:
            mean, std = ours.loc[e.Experiment, (metric, "mean")], ours.loc[e.Experiment, (metric, "std")]
            published = getattr(e, metric)
            row.update({f"{metric} published": published, f"{metric} mean": mean, f"{metric} std": std,
                        f"{metric} min": ours.loc[e.Experiment, (metric, "min")],
                        f"{metric} max": ours.loc[e.Experiment, (metric, "max")],
                        f"{metric} diff": mean - published,
                        f"{metric} within": None if row["Seeds"] < 2 else bool(abs(published - mean) <= SPREAD * std)})
        rows.append(row)
    return pd.DataFrame(rows)
