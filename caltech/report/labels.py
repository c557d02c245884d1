"""Readable names of runs from their settings (hparams.json, a results row): legend labels that name only what
tells a figure's runs apart, and configuration keys (everything that names a run but its seed).

    parts = run_parts({"scratch": True, "optimizer": "adamw", "lr_fc": 1e-3, "lr_base": 1e-3, "seed": 107})
    distinguishing_labels([parts, other])   # ['scratch, AdamW 1e-3', 'fine-tuned, Adam fc 1e-3 / base 1e-4']

An option at train.py's default (recipe.SETTINGS) is left out of a label, so only what a run changed shows; an
option's words are its recipe entry's `short` (else its name in words) and value.
"""
from ..recipe import SETTINGS, recipe_defaults

# What names a run however it was trained; every other recipe setting is an option, shown only when not default.
IDENTITY = ("scratch", "epochs", "lr_fc", "lr_base", "seed")
OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}
# settings drawn as a part of their own (mode, lr) or that change no number a run computes in distribution
NOT_OPTIONS = (*IDENTITY, "optimizer", "model", "weights_name", "image_size", "loader")


def format_lr(lr):
    """1e-3 rather than 0.001: learning rates read best as powers of ten."""
    mantissa, exponent = f"{float(lr):.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def option_text(key, value):
    if isinstance(value, bool):
        return key.replace("_", " ") if value else f"no {key.replace('_', ' ')}"
    short = SETTINGS[key].short if key in SETTINGS else None
    if isinstance(value, str):  # a choice reads before its noun: "resized crop", "cosine loss"
        return f"{value} {short}" if short else value
    if isinstance(value, (int, float)):
        return f"{short or key.replace('_', ' ')} {value:g}"
    return f"{key.replace('_', ' ')} {value}"


def run_parts(settings):
    """{part: text} of a run's settings in label order; '' for an option at its default, no entry for a setting
    that is unknown. `settings`: recipe settings by train.py's names, plus optionally num_classes and recipe (a
    results row's Recipe cell, for rows that record nothing else)."""
    s, parts, defaults = settings, {}, recipe_defaults()
    if "scratch" in s:
        parts["mode"] = "scratch" if s["scratch"] else "fine-tuned"
    if s.get("model"):
        parts["model"] = s["model"]
    if s.get("weights_name") and not s.get("scratch"):
        parts["weights"] = s["weights_name"]
    if "lr_fc" in s and "lr_base" in s:
        name = s.get("optimizer") or defaults.get("optimizer") or ""
        optimizer = OPTIMIZERS.get(name, name) + " " if name else ""
        fc, base = format_lr(s["lr_fc"]), format_lr(s["lr_base"])
        parts["lr"] = f"{optimizer}{fc}" if fc == base else f"{optimizer}fc {fc} / base {base}"
    if "epochs" in s:
        parts["epochs"] = f"{s['epochs']} ep"
    if s.get("image_size"):
        parts["size"] = f"{s['image_size']} px"
    if s.get("num_classes"):
        parts["classes"] = f"{s['num_classes']} classes"
    for key, value in s.items():
        if key not in NOT_OPTIONS and key in defaults:
            parts[key] = "" if value == defaults[key] else option_text(key, value)
    if s.get("recipe"):
        parts["recipe"] = s["recipe"]
    if "seed" in s:
        parts["seed"] = f"seed {s['seed']}"
    return parts


def config_key(parts):
    """What makes runs the same configuration: all their parts but the seed."""
    return tuple((k, v) for k, v in parts.items() if k != "seed")


def distinguishing_labels(parts_list, keep=("lr",)):
    """One label per run (or configuration) of a figure: the parts of `keep`, and those with two or more known
    texts among them (an unknown one tells nothing apart); ', '-joined, empty texts left out."""
    names = list(dict.fromkeys(k for parts in parts_list for k in parts))
    shown = [k for k in names if k in keep or len({p[k] for p in parts_list if k in p}) > 1]
    return [", ".join(p[k] for k in shown if p.get(k)) for p in parts_list]
