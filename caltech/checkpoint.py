"""Checkpoints: one plain dict, written atomically, read with `torch.load(weights_only=True)` only.

Keys of every checkpoint: `format`, `model` (state dict), `classes` (names in label order),
`epoch` (epochs completed), `val_acc` (validation accuracy of these weights), `hparams` (the
run's resolved settings, `vars(args)`). `last.pth` adds `optimizer`, `scheduler`, `scaler`,
`best_val_acc`, `best_epoch`, `history` and `train_seconds`: everything an exact resume needs
(the randomness of each epoch is derived from the seed and the epoch number).
"""
import pickle
import zipfile
from pathlib import Path

import torch

from .utils import UserError, atomic_path

FORMAT = "caltech101-resnet18/1"
REQUIRED = ("model", "classes", "epoch", "val_acc", "hparams")


def save(state, path):
    """Write `state` to `path` through a temporary file: a kill leaves the previous file intact."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


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
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise UserError(f"{path} is truncated or not a PyTorch checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or any(k not in state for k in REQUIRED):
        raise UserError(f"{path} is not a checkpoint written by this project's train.py")
    return state
