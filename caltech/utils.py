"""Small shared helpers: errors and warnings for people, atomic writes, seeding, device choice."""
import contextlib
import errno
import os
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

_UMASK = os.umask(0o022)  # read the process umask (os.umask sets it too) ...
os.umask(_UMASK)  # ... and put it back


class UserError(Exception):
    """A problem the user can fix (bad path, missing file, bad checkpoint): printed as one sentence."""


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C that knows what the interrupted command kept (`what`) and the command that goes on from there
    (`resume`): run_cli prints both."""

    def __init__(self, what, resume=None):
        super().__init__(what)
        self.what, self.resume = what, resume

    def __str__(self):
        return self.what + (f"; resume it with: {self.resume}" if self.resume else "")


# what a failed write says of its cause
FULL = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
        errno.EROFS: "the file system is read-only"}
DENIED = (errno.EACCES, errno.EPERM)


def writing_failed(error, what="a file"):
    """An OSError from a write (a full disk, a read-only or forbidden folder) as one sentence, a UserError; None
    for another error."""
    where = error.filename or what
    if error.errno in FULL:
        return UserError(f"could not write {where}: {FULL[error.errno]}")
    if error.errno in DENIED:
        return UserError(f"permission denied: {where}")
    return None


def warn(message):
    """A problem that costs part of the output, not the run: one `warning:` line on stderr."""
    print(f"warning: {message}", file=sys.stderr)


def run_cli(main, args):
    """Run a script's main(args), turning UserError and Ctrl-C into a message and a non-zero exit."""
    try:
        return main(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:  # a write that failed: the disk filled, or a folder became read-only
        failed = writing_failed(e)
        if failed is None:
            raise
        print(f"error: {failed}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        print(f"\ninterrupted: {e}", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        # every file is written whole or not at all: what was finished before the Ctrl-C is on disk
        print("\ninterrupted: files finished before it are kept, nothing half-written is left", file=sys.stderr)
        sys.exit(130)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    A kill at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's files are private; results are ordinary files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def derive_seed(*parts):
    """A 31-bit seed from (seed, epoch, ...) so every epoch's randomness is reproducible on its own."""
    return random.Random(":".join(map(str, parts))).getrandbits(31)


def seed_everything(seed):
    """Seed Python, NumPy and torch (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_workers():
    """Loader processes for the PIL path: one per core, leaving one for the main process."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))
