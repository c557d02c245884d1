"""Decode and resize each image once: a uint8 NCHW `.npy` per (split, size), memory-mapped on use.

The resize is deterministic, so caching its result is exact; random crop, flip and normalisation
run later on whole batches. The file name holds a hash of the split's fingerprint (its files and their
content) and the size, so a changed split, a changed image or another size gets a new cache. A cache is
written to a temporary file whose space is claimed first, and renamed into place when complete, so a
half-written one is never loaded and a full disk is one sentence.
"""
import hashlib
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..utils import UserError
from .images import UNREADABLE, open_rgb
from .transforms import resize_uint8

STALE_TMP_SECONDS = 600  # a temporary file untouched this long belongs to a killed build
LAYOUT = "nchw-uint8"  # part of the cache key: a change of layout never reads an old file


def cache_file(cache_dir, split, name, side):
    key = hashlib.sha256(f"{split.sha256}|{name}|{side}|{LAYOUT}".encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{name}_{side}px_{key}.npy"


def _load_resized(args):
    path, side = args
    try:
        return resize_uint8(open_rgb(path), side)
    except UNREADABLE as e:
        raise UserError(f"could not decode {path} ({e}); rebuild the split with split_dataset.py") from None


def _valid(path, n, side):
    try:
        arr = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError):
        return False
    return arr.dtype == np.uint8 and arr.shape == (n, 3, side, side)


def size_of(split, name, side):
    """The bytes of split `name`'s cache at `side` (what `build` writes)."""
    return len(split.samples[name]) * 3 * side * side


def missing_bytes(cache_dir, split, sides):
    """The bytes the caches of `sides` ({split name: side}) will take that are not built yet."""
    return sum(size_of(split, name, side) for name, side in sides.items()
               if not _valid(cache_file(cache_dir, split, name, side), len(split.samples[name]), side))


def load_or_build(cache_dir, split, name, side, workers=None, in_memory=False):
    """The cached images of split `name` at `side` x `side`, building the cache first if needed.

    Returns a copy-on-write memory map (pages read on use, never written back), or with
    `in_memory` the whole array read into RAM: random access (shuffled training batches) then
    never waits on page faults.
    """
    path = cache_file(cache_dir, split, name, side)
    paths = [p for p, _ in split.samples[name]]
    if not _valid(path, len(paths), side):
        build(path, paths, side, workers)
    return np.load(path) if in_memory else np.load(path, mmap_mode="c")


def build(path, paths, side, workers=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in path.parent.glob(f".{path.name}.tmp-*"):
        if now - old.stat().st_mtime > STALE_TMP_SECONDS:
            old.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    workers = workers or os.cpu_count() or 1
    pool = ProcessPoolExecutor(workers) if workers > 1 and len(paths) > 64 else None
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), 3, side, side))
        with open(tmp, "r+b") as f:  # every block claimed now: a full disk is an OSError here, not a SIGBUS later
            os.posix_fallocate(f.fileno(), 0, os.path.getsize(tmp))
        jobs = [(p, side) for p in paths]
        bar = dict(total=len(jobs), desc=f"caching {path.name.split('_')[0]} at {side}px", unit="img",
                   disable=None)
        images = pool.map(_load_resized, jobs, chunksize=32) if pool else map(_load_resized, jobs)
        for i, img in enumerate(tqdm(images, **bar)):
            out[i] = img
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)  # a failure leaves no worker decoding the rest
        tmp.unlink(missing_ok=True)
