"""Classify your own images with a trained checkpoint: the top-k classes and their probabilities per image.

    python predict.py photo.jpg --ckpt best.pth              # a bare name is looked up in checkpoints/
    python predict.py holiday/ 'shots/*.png' --topk 3 --out preds.csv

Folders are searched recursively for image files and glob patterns are expanded (quote them; ** works).
Each image goes through the checkpoint's own evaluation transform (square resize to its image size,
its normalisation), so a prediction is the one evaluate.py scores. A file that cannot be read as an
image is named in a warning and listed without a prediction; the rest goes on. The model is rebuilt
from the checkpoint alone; nothing is downloaded.
"""
import argparse
import csv
import glob
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from caltech.cli import ArgumentParser, check
from caltech.data.images import EXTENSIONS, UNREADABLE, open_rgb
from caltech.data.loaders import eval_side
from caltech.data.transforms import eval_preset
from caltech.disk import check_file
from caltech.layout import CHOSEN, CKPT_DIR
from caltech.recipe import Range
from caltech.training import engine
from caltech.training.model import load_for_inference
from caltech.utils import UserError, atomic_path, default_workers, run_cli

LIMITS = {"topk": Range(1, text="at least 1"), "batch_size": Range(1, text="at least 1"),
          "workers": Range(0, text="0 or more")}


def get_args_parser(add_help=True):
    parser = ArgumentParser(description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("what to classify")
    group.add_argument("paths", nargs="+", metavar="PATH",
                       help="image files, folders (searched recursively for images) and glob patterns")
    group.add_argument("--ckpt", default=CHOSEN[False],
                       help=f"checkpoint file; a bare name that is not a file is looked up in {CKPT_DIR}/ "
                            f"(default: {CHOSEN[False]}, the grid's choice)")
    group.add_argument("--topk", type=int, default=5,
                       help="classes shown per image, at most the checkpoint's number of classes (default: 5)")
    group.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                       help="average each image's prediction with its mirror's (default: as the run was trained, "
                            "off for the published recipe)")
    group = parser.add_argument_group("output")
    group.add_argument("--out", default=None,
                       help="also write a CSV: path, class_1, prob_1, ..., class_k, prob_k; an unreadable file "
                            "has empty predictions (default: none)")
    group = parser.add_argument_group("runtime")
    group.add_argument("--device", default=None, help="cuda, mps or cpu (default: CUDA, else MPS, else CPU)")
    group.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default: 64)")
    group.add_argument("--workers", type=int, default=default_workers(),
                       help=f"image decoding processes when there is more than one batch (default: CPU count - 1, "
                            f"here {default_workers()})")
    return parser


def find_images(patterns):
    """The files to classify, in order, each once: files as named, folders searched recursively for
    image files, glob patterns expanded. A missing path or a pattern matching nothing is a UserError."""
    found = []
    for pattern in patterns:
        if Path(pattern).exists():
            matches = [Path(pattern)]
        elif any(c in pattern for c in "*?["):
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
            if not matches:
                raise UserError(f"no file matches {pattern}")
        else:
            raise UserError(f"{pattern} does not exist")
        for match in matches:
            if match.is_dir():
                found += sorted(p for p in match.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
            else:
                found.append(match)  # named or matched on purpose: tried whatever its extension
    if not found:
        raise UserError(f"no image files in {' '.join(patterns)} (looked for {', '.join(EXTENSIONS)})")
    return list(dict.fromkeys(found))


class ImageFiles(Dataset):
    """(index, transformed image or None, error or None) per file: a bad file is reported, not fatal."""

    def __init__(self, paths, transform):
        self.paths, self.transform = paths, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        try:
            return i, self.transform(open_rgb(self.paths[i])), None
        except UNREADABLE as e:
            return i, None, f"{type(e).__name__}: {e}"


def collate(items):
    good = [(i, x) for i, x, _ in items if x is not None]
    images = torch.stack([x for _, x in good]) if good else None
    return [i for i, _ in good], images, [(i, error) for i, _, error in items if error is not None]


@torch.no_grad()
def predict(model, loader, rt, tta, k):
    """Yield (index, [(class index, probability), ...] best first, or None, error or None) per file, in order."""
    model.eval()
    bar = tqdm(loader, desc="predict", unit="batch", leave=False, dynamic_ncols=True,
               disable=True if len(loader) < 2 else None)  # a bar only for long lists (and a terminal)
    for indices, images, errors in bar:
        results = {i: (None, error) for i, error in errors}
        if images is not None:
            images = images.to(rt.device, non_blocking=True).contiguous(memory_format=rt.memory_format)
            top = engine.predict_logits(model, images, rt.ctx, tta).softmax(1).topk(k, dim=1)
            for i, labels, probs in zip(indices, top.indices.tolist(), top.values.tolist(), strict=True):
                results[i] = (list(zip(labels, probs, strict=True)), None)
        for i in sorted(results):
            yield i, *results[i]


def write_csv(path, rows, k):
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", *(f"{col}_{j}" for j in range(1, k + 1) for col in ("class", "prob"))])
        for row in rows:
            cells = [cell for name, p in row["top"] or [] for cell in (name, f"{p:.6f}")]
            writer.writerow([row["path"], *cells, *[""] * (2 * k - len(cells))])  # empty: no prediction


def main(args):
    for key, limit in LIMITS.items():
        check(key, getattr(args, key), limit)
    if args.out:
        check_file("--out", args.out)
    files = find_images(args.paths)
    path, ckpt, run, model, rt = load_for_inference(args.ckpt, args.device, args.batch_size)
    classes = ckpt["classes"]
    tta = run.tta if args.tta is None else args.tta
    k = min(args.topk, len(classes))
    # the checkpoint's evaluation transform: the images evaluate.py scores, decoded from files
    transform = eval_preset(eval_side(run), run.mean, run.std)
    loader = DataLoader(ImageFiles(files, transform), batch_size=args.batch_size, collate_fn=collate,
                        num_workers=args.workers if len(files) > args.batch_size else 0,
                        pin_memory=rt.device.type == "cuda")
    print(f"checkpoint: {path} ({run.model}, {len(classes)} classes, {eval_side(run)} px"
          f"{', flip test-time augmentation' if tta else ''}); {len(files)} file(s)")
    rows = []
    for i, top, error in predict(model, loader, rt, tta, k):
        named = [(classes[c], p) for c, p in top] if top is not None else None
        rows.append({"path": str(files[i]), "top": named})
        if error is not None:
            tqdm.write(f"warning: {files[i]} is not a readable image, no prediction ({error})", file=sys.stderr)
        else:
            tqdm.write(f"{files[i]}: " + ", ".join(f"{name} {p:.4f}" for name, p in named))
    bad = sum(row["top"] is None for row in rows)
    if bad == len(rows):
        raise UserError(f"none of the {len(rows)} file(s) could be read as an image (see the warnings); "
                        "nothing was classified")
    if args.out:
        write_csv(args.out, rows, k)
        print(f"predictions written to {args.out}")
    print(f"{len(rows) - bad} image(s) classified" + (f", {bad} unreadable (see the warnings)" if bad else ""))
    return rows


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
