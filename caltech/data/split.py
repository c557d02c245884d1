"""The deterministic per-class split: 30 training images per class (24 train + 6 val), the rest test.

    from caltech.data.split import build_split
    build_split("data/101_ObjectCategories", "data/caltech101_split", seed=107)

Every image is decoded once while splitting; files that do not decode are excluded, warned about
and listed in `rejected.csv`. The output folder holds `{train,val,test}/<class>/<file>` (hard
links where possible), `split.csv` (path,class,split,sha256: paths relative to the source root, each
file's content hash) and `classes.txt`. `split.csv` depends only on the files and the arguments, so the
same files and arguments give a byte-identical file, and its SHA-256 is the split's fingerprint.
"""
import csv
import hashlib
import io
import json
import os
import random
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..layout import DEFAULT_SPLIT
from ..recipe import SEED
from ..utils import UserError
from .images import FORMATS, check_image, file_sha256

MANIFEST = ["path", "class", "split", "sha256"]  # split.csv's columns: the file, its class and split, its content
TRAIN_PER_CLASS, VAL_PER_CLASS = 30, 6  # the published protocol: 30 training images per class, 6 of them for val

SPLITS = ("train", "val", "test")
BACKGROUND = "BACKGROUND_Google"
# Below this many files a process pool costs more than it saves.
PARALLEL_THRESHOLD = 256


@dataclass
class SplitSummary:
    out: Path
    classes: list
    counts: dict                                   # split -> number of images
    skipped: dict = field(default_factory=dict)    # class -> usable images it had
    rejected: list = field(default_factory=list)   # (relative path, reason)
    ignored: list = field(default_factory=list)    # relative paths of non-image files

    def lines(self):
        yield f"split written to {self.out}"
        yield f"classes: {len(self.classes)} kept, {len(self.skipped)} skipped"
        for name, n in sorted(self.skipped.items()):
            yield f"  skipped {name}: only {n} usable images"
        yield "images: " + ", ".join(f"{self.counts[s]:,} {s}" for s in SPLITS)
        yield f"rejected files: {len(self.rejected)}" + (f" (see {self.out / 'rejected.csv'})" if self.rejected else "")
        if self.ignored:
            shown = ", ".join(self.ignored[:5]) + (", ..." if len(self.ignored) > 5 else "")
            yield f"ignored non-image files: {len(self.ignored)} ({shown})"


def scan(root, include_background=False):
    """Class folders under `root` -> sorted relative image paths; plus the non-image files seen."""
    root = Path(root)
    by_class, ignored = {}, []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if class_dir.name == BACKGROUND and not include_background:
            continue
        files = []
        for f in sorted(class_dir.iterdir()):
            if not f.is_file() or f.name.startswith("."):
                continue
            rel = f.relative_to(root).as_posix()
            (files if f.suffix.lower() in FORMATS else ignored).append(rel)
        by_class[class_dir.name] = files
    if not by_class:
        raise UserError(f"{root} has no class folders; it should hold one folder of images per class "
                        "(like 101_ObjectCategories)")
    return by_class, ignored


def verify(root, rel_paths, workers):
    """Decode every image (in parallel when worth it); return ({relative path: reason} for the bad ones,
    {relative path: SHA-256} for the good ones)."""
    paths = [Path(root) / p for p in rel_paths]
    bar = dict(total=len(paths), desc="checking images", unit="img", leave=False, disable=None)
    if workers > 1 and len(paths) >= PARALLEL_THRESHOLD:
        with ProcessPoolExecutor(workers) as pool:
            checked = list(tqdm(pool.map(check_image, paths, chunksize=64), **bar))
    else:
        checked = [check_image(p) for p in tqdm(paths, **bar)]
    results = dict(zip(rel_paths, checked, strict=True))
    return ({rel: reason for rel, (reason, _) in results.items() if reason is not None},
            {rel: digest for rel, (_, digest) in results.items() if digest is not None})


def assign(files_by_class, seed, train_per_class, val_per_class):
    """Per class: shuffle the sorted usable files with a seed of its own; first train, next val, rest test.

    Returns (rows sorted by path, {skipped class: usable count}). The class name is part of the
    seed so adding or removing one class never changes the split of another.
    """
    rows, skipped = [], {}
    n_train = train_per_class - val_per_class
    for name, files in sorted(files_by_class.items()):
        if len(files) < train_per_class + 1:  # at least one test image per class
            skipped[name] = len(files)
            continue
        order = sorted(files)
        random.Random(f"{seed}:{name}").shuffle(order)
        for i, rel in enumerate(order):
            rows.append((rel, name, "train" if i < n_train else "val" if i < train_per_class else "test"))
    rows.sort()
    return rows, skipped


def _csv_text(header, rows):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _is_split_dir(path):
    return (path / "split.csv").is_file()


def write_split(root, out, rows, rejected, settings):
    """Materialise the split in a temporary folder, then swap it in for `out` (no stale files left)."""
    root, out = Path(root), Path(out)
    if out.exists() and not (_is_split_dir(out) or (out.is_dir() and not any(out.iterdir()))):
        raise UserError(f"{out} exists and is not a split made by split_dataset.py; "
                        "choose another --out or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    tmp.chmod(0o755)  # mkdtemp makes it private; the split is ordinary data
    try:
        link = True
        for rel, name, split, _ in rows:
            dest = tmp / split / name / Path(rel).name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if link:
                try:
                    os.link(root / rel, dest)
                    continue
                except OSError:  # another filesystem, or links not allowed: copy instead
                    link = False
            shutil.copyfile(root / rel, dest)
        classes = sorted({row[1] for row in rows})
        (tmp / "split.csv").write_text(_csv_text(MANIFEST, rows))
        (tmp / "classes.txt").write_text("".join(c + "\n" for c in classes))
        (tmp / "rejected.csv").write_text(_csv_text(["path", "reason"], rejected))
        (tmp / "split.json").write_text(json.dumps(settings, indent=2) + "\n")
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return classes


def check_protocol(train_per_class, val_per_class):
    """Refuse per-class counts that leave no training or no validation image."""
    if not 0 < val_per_class < train_per_class:
        raise UserError(f"--val-per-class ({val_per_class}) must be at least 1 and below "
                        f"--train-per-class ({train_per_class})")


def build_split(root, out, seed=SEED, train_per_class=TRAIN_PER_CLASS, val_per_class=VAL_PER_CLASS,
                include_background=False,
                workers=None):
    """Scan, verify and split the class folders under `root` into `out`; return a SplitSummary."""
    root, out = Path(root), Path(out)
    check_protocol(train_per_class, val_per_class)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder of class folders")
    by_class, ignored = scan(root, include_background)
    if len(by_class) < 2:
        raise UserError(f"{root} has {len(by_class)} class folder ({', '.join(by_class)}); a classifier needs at "
                        "least 2")
    bad, digests = verify(root, [p for files in by_class.values() for p in files], workers or os.cpu_count() or 1)
    for rel, reason in sorted(bad.items()):
        print(f"warning: excluded {rel}: {reason}", file=sys.stderr)
    usable = {name: [p for p in files if p not in bad] for name, files in by_class.items()}
    rows, skipped = assign(usable, seed, train_per_class, val_per_class)
    rows = [(*row, digests[row[0]]) for row in rows]  # each image's content, as split.csv records it
    for name, n in sorted(skipped.items()):
        print(f"warning: skipped class {name}: {n} usable images, fewer than "
              f"--train-per-class + 1 = {train_per_class + 1}", file=sys.stderr)
    kept = len({row[1] for row in rows})
    if kept < 2:
        raise UserError(f"{kept or 'no'} class in {root} has enough usable images ({train_per_class + 1}) to split; "
                        "a classifier needs at least 2")
    settings = dict(source=str(root.resolve()), seed=seed, train_per_class=train_per_class,
                    val_per_class=val_per_class, include_background=include_background)
    rejected = sorted(bad.items()) + [(p, "ignored: not an image file") for p in ignored]
    classes = write_split(root, out, rows, rejected, settings)
    counts = {s: sum(1 for r in rows if r[2] == s) for s in SPLITS}
    return SplitSummary(out, classes, counts, skipped, sorted(bad.items()), ignored)


@dataclass
class Split:
    """A split folder as the loaders see it: class names and (file path, label) lists per split."""
    root: Path
    classes: list
    samples: dict  # split -> [(absolute path, label)]
    manifest: bytes  # split.csv's bytes
    contents: tuple = ()  # each file's SHA-256, for a split.csv written before it recorded them

    @property
    def sha256(self):
        """The split's fingerprint, recorded with every run and results row and keying the cache: its file list
        and every file's content (split.csv holds both; an older one's files are hashed as read)."""
        return hashlib.sha256(self.manifest + "".join(self.contents).encode()).hexdigest()

    @property
    def listing_sha256(self):
        """The fingerprint runs recorded before it covered the content: the SHA-256 of the file list alone
        (path,class,split), accepted for their checkpoints without a check of the pixels."""
        rows = csv.reader(io.StringIO(self.manifest.decode()))
        return hashlib.sha256(_csv_text(next(rows)[:3], [row[:3] for row in rows]).encode()).hexdigest()

    def describes(self, fingerprint):
        """Whether a run's recorded split fingerprint is this split's: its content, or, for a run recorded before
        fingerprints covered the content, its file list."""
        return fingerprint in (self.sha256, self.listing_sha256)


def read_split(data_dir):
    """Read a split folder written by build_split, checking that every listed file is there and, where split.csv
    records it, that its content is still the one the split was made from (0.2 s for Caltech-101's 9,144 files,
    once in the page cache)."""
    data_dir = Path(data_dir)
    if not _is_split_dir(data_dir) or not (data_dir / "classes.txt").is_file():
        raise UserError(f"{data_dir} is not a split folder (no split.csv / classes.txt); "
                        "make one with: python split_dataset.py --out " + str(data_dir))
    classes = (data_dir / "classes.txt").read_text().splitlines()
    index = {c: i for i, c in enumerate(classes)}
    manifest = (data_dir / "split.csv").read_bytes()
    samples, recorded = {s: [] for s in SPLITS}, []
    try:
        for row in csv.DictReader(io.StringIO(manifest.decode())):
            path = data_dir / row["split"] / row["class"] / Path(row["path"]).name
            samples[row["split"]].append((path, index[row["class"]]))
            recorded.append((path, row.get("sha256")))
    except (KeyError, TypeError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{data_dir / 'split.csv'} is damaged ({type(e).__name__}: {e}); rebuild the split with "
                        "split_dataset.py") from None
    missing = [p for p, _ in recorded if not p.is_file()]
    if missing:
        raise UserError(f"{len(missing)} files listed in {data_dir / 'split.csv'} are missing "
                        f"(first: {missing[0]}); rebuild the split with split_dataset.py")
    found = [file_sha256(p) for p, _ in recorded]
    changed = [p for (p, digest), now in zip(recorded, found, strict=True) if digest and digest != now]
    if changed:
        raise UserError(f"{len(changed)} files of {data_dir} changed since split_dataset.py made it (first: "
                        f"{changed[0]}); rebuild the split with split_dataset.py")
    older = not any(digest for _, digest in recorded)  # a split.csv without the sha256 column
    return Split(data_dir, classes, samples, manifest, tuple(found) if older else ())


def ensure_split(data_dir, default_dir=DEFAULT_SPLIT, source=None):
    """Return the split at `data_dir`; build it there first when absent and it is the default location
    or a `source` is given.

    This is how `python train.py` and `python grid_search.py` work on a fresh machine: the split
    is made from `source`, from `data/`, or from the download, with split_dataset.py's defaults.
    """
    data_dir = Path(data_dir)
    if not _is_split_dir(data_dir):
        if source is None and data_dir.resolve() != Path(default_dir).resolve():
            raise UserError(f"--data {data_dir} is not a split folder; make one with: "
                            f"python split_dataset.py --out {data_dir}")
        from .source import resolve_source
        print(f"no split at {data_dir}: building it with split_dataset.py's defaults")
        root = resolve_source(source, data_root=data_dir.parent)
        for line in build_split(root, data_dir).lines():
            print(line)
    return read_split(data_dir)
