"""Output locations checked before any work: a folder a script writes into must be a folder (or not exist yet)
and writable, a file's folder writable, and the disk must have room for what a run will write.

    check_folder("--ckpt-dir", "checkpoints")              # UserError: "--ckpt-dir checkpoints is not writable ..."
    check_room({"--ckpt-dir": ("checkpoints", 180e6)})      # UserError when the disk has less free space

A write that fails anyway (the disk filled during a run) is one sentence too: utils.writing_failed.
"""
import os
import shutil
import tempfile
from pathlib import Path

from .utils import UserError


def existing(path):
    """`path`, or the nearest folder above it that exists (where it would be created)."""
    path = Path(path).expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_folder(flag, path, named=None):
    """Refuse a folder `flag` names that is a file, or that could not be created or written to; `named`: the file
    in it that the flag names, if it names a file."""
    path = Path(path)
    named = path if named is None else Path(named)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {named} is a file, not a folder")
    base = existing(path)
    if not base.is_dir():
        raise UserError(f"{flag} {named} cannot be created: {base} is a file, not a folder")
    if not writable(base):
        raise UserError(f"{flag} {named} is not writable ({base} does not let this user write in it)")


def writable(folder):
    """Whether a file can be made in `folder`, tried (permission bits do not tell for root, nor for a read-only
    file system or an immutable folder)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def check_file(flag, path):
    """Refuse a file `flag` names that is a folder, or whose folder could not be created or written to."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; pass a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{flag} {path} is not writable")
    check_folder(flag, path.parent, named=path)


def megabytes(n):
    return f"{n / 2**20:,.0f} MB"


def check_room(needs):
    """`needs`: {flag: (path, bytes it will write there)}. Refuse, naming the flag, when the disk holding a path
    has less free space than everything written to that disk."""
    by_disk = {}
    for flag, (path, size) in needs.items():
        base = existing(path)
        entry = by_disk.setdefault(base.stat().st_dev, [base, 0, []])
        entry[1] += size
        entry[2].append(flag)
    for base, size, flags in by_disk.values():
        free = shutil.disk_usage(base).free
        if free < size:
            raise UserError(f"{' and '.join(f'{f} {needs[f][0]}' for f in flags)} need about {megabytes(size)} "
                            f"and the disk holding {base} has {megabytes(free)} free; free some space or choose "
                            "another folder")
