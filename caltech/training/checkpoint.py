"""Checkpoints: one plain dict, written atomically, read with `torch.load(weights_only=True)` only.

Keys of every checkpoint: `format`, `model` (state dict), `classes` (names in label order),
`epoch` (epochs completed), `val_acc` (validation accuracy of these weights), `hparams` (the
run's resolved settings, `vars(args)`). `last.pth` adds `optimizer`, `scheduler`, `scaler`,
`best_val_acc`, `best_epoch`, `history` and `train_seconds`: everything an exact resume needs
(the randomness of each epoch is derived from the seed and the epoch number).
"""
import argparse
import pickle
import struct
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from .. import recipe
from ..data.transforms import MEAN, STD
from ..layout import CHOSEN, CKPT_DIR, run_paths
from ..utils import UserError, atomic_path

FORMAT = "caltech101-resnet18/1"  # kept for every --model: the dict's layout, not the network, is the format
REQUIRED = ("model", "classes", "epoch", "val_acc", "hparams")
# What a checkpoint written before a setting existed ran with (each recipe entry's `before`: ResNet-18 at 224 px
# with ImageNet's weights, the published recipe, mixed precision), and ImageNet's normalisation: a fact about old
# files, not today's defaults.
OLDER = {**recipe.old_values(), "mean": MEAN, "std": STD}


def build(weights, classes, hparams, epoch, val_acc, resume=None):
    """The one checkpoint dict: the model's `weights` (state dict), `classes` in label order, the `epoch` they
    end (from 1), their validation accuracy `val_acc` and the run's `hparams`; `resume` (last.pth only) adds the
    optimiser, schedule and scaler states and the loop state an exact resume needs."""
    return {"model": weights, "classes": classes, "epoch": epoch, "val_acc": val_acc,
            "hparams": hparams, **(resume or {})}


def resolve(name, ckpt_dir=CKPT_DIR):
    """The checkpoint file `name`; a bare name that is not a file is looked up in `ckpt_dir`."""
    path = Path(name)
    if path.is_dir():
        inside = run_paths(path.name, path.parent).best
        hint = f"; pass the checkpoint inside it, --ckpt {inside}" if inside.is_file() else ""
        raise UserError(f"--ckpt {name} is a folder, not a checkpoint file{hint}")
    if not path.is_file() and len(path.parts) == 1 and (Path(ckpt_dir) / path).is_file():
        return Path(ckpt_dir) / path
    if not path.is_file():
        raise UserError(f"checkpoint {name} not found (looked for it as a file and in {ckpt_dir}/); grid_search.py "
                        f"writes {Path(ckpt_dir) / CHOSEN[False]} (its choice on validation, {CHOSEN[True]} from "
                        f"scratch), a train.py run {Path(ckpt_dir) / 'RUN' / 'best.pth'}: pass that as --ckpt")
    return path


def settings(ckpt):
    """The run settings a checkpoint was trained with, as a namespace, those it predates filled in from OLDER."""
    return argparse.Namespace(**{**OLDER, **ckpt["hparams"]})


def save(state, path):
    """Write checkpoint `state` (a `build` dict) to `path` through a temporary file: a kill leaves the previous
    file intact."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def snapshot(state):
    """A CPU copy of every tensor in `state`, which training may go on changing in place."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: snapshot(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(snapshot(v) for v in state)
    return state


class BackgroundSaver:
    """Writes checkpoints on one thread, in order, so the next epoch starts at once.

    Serialising `last.pth` (weights and Adam state, about 180 MB with `best.pth`) takes 0.2-0.6 s on the
    2-core dev machine (docs/BENCHMARKS.md): little next to a CPU epoch, but a GPU epoch could be short
    enough for it to matter, so it is hidden (the gain on a GPU is not measured). At most `max_pending`
    writes wait; `close()` (also on Ctrl-C, via train.py's `finally`) finishes them all.
    """

    def __init__(self, max_pending=2):
        self.pool, self.pending, self.max_pending = ThreadPoolExecutor(1), [], max_pending

    def save(self, state, path):
        for done in [f for f in self.pending if f.done()]:
            done.result()  # a failed write (a full disk, say) raises here, in the training loop
            self.pending.remove(done)
        while len(self.pending) >= self.max_pending:
            self.pending.pop(0).result()
        self.pending.append(self.pool.submit(save, snapshot(state), path))

    def wait(self):
        while self.pending:
            self.pending.pop(0).result()

    def close(self):
        try:
            self.wait()
        finally:
            self.pool.shutdown()


def load(path):
    """Read one of our checkpoints safely, or raise UserError saying what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refuses any pickle that would import or call code: nothing in it has run.
        raise UserError(f"{path} was refused: it holds Python objects beyond tensors and plain data "
                        "(possibly code), so it is not a checkpoint of this project") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, struct.error, KeyError, TypeError,
            AttributeError, IndexError, UnicodeDecodeError, MemoryError) as e:
        # a text file reads as a legacy pickle with unknown opcodes (KeyError), other bytes fail elsewhere
        raise UserError(f"{path} is truncated or not a PyTorch checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or any(k not in state for k in REQUIRED) \
            or not isinstance(state["model"], dict) or not isinstance(state["hparams"], dict) \
            or not isinstance(state["classes"], list) or not state["classes"]:
        raise UserError(f"{path} is not a checkpoint written by this project's train.py")
    return state
