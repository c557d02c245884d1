"""The project's one training loop and one evaluation loop.

train.py (and through it grid_search.py and the from-scratch baseline), evaluate.py and bench.py
all run these two functions. Precision is decided once by `precision()`, outside the loops, so the
loop bodies have no AMP branches.
"""
import contextlib

import torch
from tqdm import tqdm

from .metrics import Meter


def precision(device, amp=True):
    """(autocast context, GradScaler, name): bf16 on CUDA when supported, else fp16 with loss
    scaling; full fp32 on CPU/MPS or with amp=False."""
    if device.type == "cuda" and amp:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)  # bf16 needs no scaling
        return torch.autocast("cuda", dtype=dtype), scaler, str(dtype).replace("torch.", "")
    return contextlib.nullcontext(), torch.amp.GradScaler(device.type, enabled=False), "float32"


def progress(loader, desc, meter, every=10):
    """Iterate `loader` under a tqdm bar showing the meter's running loss and accuracy.

    The postfix is refreshed every `every` batches: reading the meter waits for the GPU.
    """
    bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, disable=None)
    for i, batch in enumerate(bar, 1):
        yield batch
        if i % every == 0 or i == len(loader):
            bar.set_postfix(loss=f"{meter.loss:.3f}", acc=f"{meter.acc:.3f}", refresh=False)


def train_one_epoch(model, loader, criterion, optimizer, scaler, ctx, num_classes, device, desc="train"):
    """One pass over `loader` with one optimizer step per batch; returns {loss, acc, mean_class_acc, top5, n}."""
    model.train()
    meter = Meter(num_classes, device)
    for images, labels in progress(loader, desc, meter):
        with ctx:
            logits = model(images)
            loss = criterion(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        meter.update(loss, logits, labels)
    return meter.summary()


@torch.no_grad()
def evaluate(model, loader, criterion, ctx, num_classes, device, desc="eval"):
    """One pass without gradients; returns the Meter (`.summary()` for the dict, `.matrix()` for the confusion)."""
    model.eval()
    meter = Meter(num_classes, device)
    for images, labels in progress(loader, desc, meter):
        with ctx:
            logits = model(images)
            loss = criterion(logits.float(), labels)
        meter.update(loss, logits.float(), labels)
    return meter
