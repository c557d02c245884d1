"""Make the deterministic Caltech-101 split: per class 24 train, 6 val, the rest test.

    python split_dataset.py                                  # look in data/, else download
    python split_dataset.py --source ~/101_ObjectCategories  # or caltech-101.zip / 101_ObjectCategories.tar.gz

Defaults are the published protocol (30 training images per class, 6 of them for validation,
seed 107, BACKGROUND_Google left out).
"""
import argparse
import os
from pathlib import Path

from caltech.cli import ArgumentParser, check
from caltech.data.source import resolve_source
from caltech.data.split import TRAIN_PER_CLASS, VAL_PER_CLASS, build_split, check_protocol
from caltech.disk import check_folder
from caltech.layout import DEFAULT_SPLIT
from caltech.recipe import SEED, Range
from caltech.utils import run_cli


def get_args_parser(add_help=True):
    parser = ArgumentParser(description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("source and output")
    group.add_argument("--source", type=Path, default=None,
                       help="101_ObjectCategories folder, caltech-101.zip or 101_ObjectCategories.tar.gz "
                            "(default: look in the output's parent folder, data/, else download there)")
    group.add_argument("--out", type=Path, default=Path(DEFAULT_SPLIT),
                       help=f"split folder to write; replaced completely (default: {DEFAULT_SPLIT})")
    group = parser.add_argument_group("split protocol")
    group.add_argument("--seed", type=int, default=SEED, help=f"shuffling seed (default: {SEED})")
    group.add_argument("--train-per-class", type=int, default=TRAIN_PER_CLASS,
                       help=f"training images per class, validation included (default: {TRAIN_PER_CLASS})")
    group.add_argument("--val-per-class", type=int, default=VAL_PER_CLASS,
                       help=f"of those, held out for validation (default: {VAL_PER_CLASS})")
    group.add_argument("--include-background", action="store_true",
                       help="keep BACKGROUND_Google as a 102nd class (default: left out)")
    group = parser.add_argument_group("runtime")
    group.add_argument("--workers", type=int, default=os.cpu_count(),
                       help=f"processes that decode images to check them; 0 = one per core (default: CPU count, "
                            f"{os.cpu_count()})")
    return parser


def main(args):
    check("workers", args.workers, Range(0, text="0 (one per core) or more"))
    check_folder("--out", args.out)
    check_protocol(args.train_per_class, args.val_per_class)  # before a download, not after
    root = resolve_source(args.source, data_root=args.out.parent)
    summary = build_split(root, args.out, seed=args.seed, train_per_class=args.train_per_class,
                          val_per_class=args.val_per_class, include_background=args.include_background,
                          workers=args.workers)
    for line in summary.lines():
        print(line)
    return summary


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
