"""The project's one training loop and one evaluation loop.

train.py (and through it grid_search.py and the from-scratch baseline), evaluate.py and bench.py
all run these two functions. Precision, device and memory format are decided once by `runtime.decide()`,
outside the loops (the `rt` they take), so the loop bodies have no AMP branches.
"""
import math

import torch
from tqdm import tqdm

from .metrics import Meter


def progress(loader, desc, meter, every=10):
    """Iterate `loader` under a tqdm bar showing the meter's running loss and accuracy.

    The postfix is refreshed every `every` batches: reading the meter waits for the GPU.
    """
    bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, disable=None)
    for i, batch in enumerate(bar, 1):
        yield batch
        if i % every == 0 or i == len(loader):
            bar.set_postfix(loss=f"{meter.loss:.3f}", acc=f"{meter.acc:.3f}", refresh=False)


def batch_mixer(mixup=0.0, cutmix=0.0, num_classes=None):
    """torchvision's MixUp and/or CutMix (one of the two per batch when both alphas are set), or None.

    They draw from torch's global generator, which the training loop seeds per epoch."""
    from torchvision.transforms import v2
    mixers = [cls(alpha=alpha, num_classes=num_classes)
              for alpha, cls in ((mixup, v2.MixUp), (cutmix, v2.CutMix)) if alpha > 0]
    if not mixers:
        return None
    return mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)


def train_one_epoch(model, loader, criterion, optimizer, rt, num_classes, desc="train", mix=None, after_step=None):
    """One pass over `loader` with one optimizer step per batch; returns {loss, acc, mean_class_acc, top5, n}.

    `mix(images, labels) -> (images, soft targets)` (MixUp / CutMix) changes what the loss sees; the
    accuracy is still counted against each image's own label. `after_step()` runs after every step (the
    weight average of --ema)."""
    model.train()
    meter = Meter(num_classes, rt.device)
    for images, labels in progress(loader, desc, meter):
        images, targets = mix(images, labels) if mix is not None else (images, labels)
        with rt.ctx:
            logits = model(images)
            loss = criterion(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        rt.scaler.scale(loss).backward()
        rt.scaler.step(optimizer)
        rt.scaler.update()
        if after_step is not None:
            after_step()
        meter.update(loss, logits, labels)
    return meter.summary()


def predict_logits(model, images, ctx, tta=False):
    """Float logits of a batch; with `tta`, the log of the mean softmax of the image and its mirror
    (a log-probability is a valid logit: cross-entropy and arg-max read it unchanged)."""
    with ctx:
        logits = model(images).float()
        if not tta:
            return logits
        mirrored = model(images.flip(3)).float()
    return torch.stack([logits.log_softmax(1), mirrored.log_softmax(1)]).logsumexp(0) - math.log(2)


@torch.no_grad()
def evaluate(model, loader, criterion, rt, num_classes, desc="eval", tta=False):
    """One pass without gradients; returns the Meter (`.summary()` for the dict, `.matrix()` for the confusion).

    `tta` averages the predictions of each image and its horizontal mirror."""
    model.eval()
    meter = Meter(num_classes, rt.device)
    for images, labels in progress(loader, desc, meter):
        logits = predict_logits(model, images, rt.ctx, tta)
        meter.update(criterion(logits, labels), logits, labels)
    return meter
