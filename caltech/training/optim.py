"""Optimiser and learning-rate schedule of a run: the published Adam + StepLR, or the options.

Every optimiser keeps the two parameter groups of `model.param_groups` (the new head at lr_fc,
everything else at lr_base). Schedules step once per epoch, as published.
"""
import torch

from ..recipe import SETTINGS

OPTIMIZERS = SETTINGS["optimizer"].choices
SCHEDULES = SETTINGS["schedule"].choices


def build_optimizer(groups, name="adam", weight_decay=0.0, momentum=0.9):
    """Adam (published: no weight decay), AdamW (decoupled weight decay) or SGD with Nesterov momentum."""
    if name == "adam":
        return torch.optim.Adam(groups, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=groups[0]["lr"], momentum=momentum, nesterov=momentum > 0,
                               weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose from {OPTIMIZERS}")


def build_scheduler(optimizer, schedule="step", epochs=30, step_size=10, gamma=0.1, warmup_epochs=0):
    """StepLR (published) or cosine annealing to 0 at `epochs`; either after `warmup_epochs` of linear
    warm-up from 1/(warmup_epochs + 1) of each group's rate."""
    if schedule == "step":
        main = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    elif schedule == "cosine":
        main = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs - warmup_epochs))
    else:
        raise ValueError(f"unknown schedule {schedule!r}; choose from {SCHEDULES}")
    if warmup_epochs <= 0:
        return main
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / (warmup_epochs + 1),
                                               total_iters=warmup_epochs)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[warmup_epochs])



def lr_factors(epochs, schedule="step", step_size=10, gamma=0.1, warmup_epochs=0):
    """The learning rate of each epoch of a run, as a multiple of the initial rate."""
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = build_scheduler(optimizer, schedule, epochs, step_size, gamma, warmup_epochs)
    factors = []
    for _ in range(epochs):
        factors.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # keeps torch from warning that the scheduler stepped first
        scheduler.step()
    return factors


def is_prefix(short, long, schedule="step", step_size=10, gamma=0.1, warmup_epochs=0):
    """Whether a `short`-epoch run's learning rates are exactly the first epochs of a `long`-epoch run's:
    true for StepLR (with or without warm-up), false for cosine, which ends at 0 on its own last epoch.
    Checked by stepping both schedules, so a new schedule needs no rule here."""
    if not warmup_epochs < short <= long:
        return False
    kwargs = {"schedule": schedule, "step_size": step_size, "gamma": gamma, "warmup_epochs": warmup_epochs}
    return lr_factors(short, **kwargs) == lr_factors(long, **kwargs)[:short]
