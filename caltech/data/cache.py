"""Decode and resize each image once: a uint8 NCHW `.npy` per (split, size), memory-mapped on use.

The resize is deterministic, so caching its result is exact; random crop, flip and normalisation
run later on whole batches. The file name holds a hash of the split manifest and the size, so a
changed split or size gets a new cache. A cache is written to a temporary file and renamed into
place when complete, so a half-written one is never loaded.
"""
import hashlib
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..utils import UserError
from .images import open_rgb
from .transforms import resize_uint8

STALE_TMP_SECONDS = 600  # a temporary file untouched this long belongs to a killed build
LAYOUT = "nchw-uint8"  # part of the cache key: a change of layout never reads an old file


def cache_file(cache_dir, split, name, side):
    key = hashlib.sha256(split.manifest + f"|{name}|{side}|{LAYOUT}".encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{name}_{side}px_{key}.npy"


def _load_resized(args):
    path, side = args
    try:
        return resize_uint8(open_rgb(path), side)
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(f"could not decode {path} ({e}); rebuild the split with split_dataset.py") from None


def _valid(path, n, side):
    try:
        arr = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError):
        return False
    return arr.dtype == np.uint8 and arr.shape == (n, 3, side, side)


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
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), 3, side, side))
        jobs = [(p, side) for p in paths]
        bar = dict(total=len(jobs), desc=f"caching {path.name.split('_')[0]} at {side}px", unit="img",
                   disable=None)
        if workers > 1 and len(jobs) > 64:
            with ProcessPoolExecutor(workers) as pool:
                for i, img in enumerate(tqdm(pool.map(_load_resized, jobs, chunksize=32), **bar)):
                    out[i] = img
        else:
            for i, img in enumerate(tqdm(map(_load_resized, jobs), **bar)):
                out[i] = img
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
