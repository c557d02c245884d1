"""Benchmark the published-style input pipeline against the project's, side by side, in one process.

    python bench.py --synthetic --device cpu --steps 5        # generated 300x240 JPEGs, no data needed
    python bench.py --data data/caltech101_split --json bench.json

Measures (a) input-pipeline throughput alone, (b) training throughput end to end, (c) evaluation
throughput and (d) seconds per training epoch of 2,424 images, for both pipelines, with random
weights (nothing is downloaded). Ratios from one run are what to quote: these machines are shared.
`--model` measures another torchvision backbone, e.g. `--model vit_b_16`.
"""
import argparse
import json
import tempfile
from pathlib import Path

import torch

import train
from caltech import bench, cache, runtime
from caltech.model import DEFAULT_MODEL
from caltech.split import read_split
from caltech.utils import UserError, atomic_write_text, run_cli, select_device


def get_args_parser(add_help=True):
    parser = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("data (one of)")
    group.add_argument("--data", default=None, help="a split folder made by split_dataset.py (default: none)")
    group.add_argument("--synthetic", action="store_true",
                       help="generate JPEGs of Caltech's typical 300x240 size in a temporary folder (default: off)")
    group.add_argument("--classes", type=int, default=101, help="--synthetic: classes (default: 101)")
    group.add_argument("--per-class", type=int, default=31,
                       help="--synthetic: images per class, 24 train + 6 val + rest test at 31 (default: 31)")
    group = parser.add_argument_group("measurement")
    group.add_argument("--steps", type=int, default=10,
                       help="batches per measurement; 0 for whole passes (default: 10)")
    group.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"any classification model of torchvision's registry, as train.py --model "
                            f"(default: {DEFAULT_MODEL})")
    group.add_argument("--image-size", type=int, default=224, help="crop / eval side (default: 224)")
    group.add_argument("--batch-size", type=int, default=32, help="training batch size (default: 32)")
    group.add_argument("--compute", action="store_true",
                       help="instead of original vs project, compare compute variants of the project's path on "
                            "the device: fp32, channels_last, bf16 autocast, torch.compile, 1 thread (default: off)")
    group.add_argument("--seed", type=int, default=107, help="seed of weights and shuffling (default: 107)")
    group.add_argument("--cache-dir", default=None, help="cache folder (default: cache/ beside the split)")
    train.add_runtime_args(parser, workers=False)  # as train.py's; they apply to the project's pipeline
    group = parser.add_argument_group("output")
    group.add_argument("--json", default=None, help="also write the figures to this JSON file (default: none)")
    return parser


def main(args):
    if bool(args.data) == bool(args.synthetic):
        raise UserError("give exactly one of --data DIR and --synthetic")
    for key, smallest in (("classes", 2), ("per_class", 6), ("steps", 0), ("batch_size", 1)):
        if getattr(args, key) < smallest:
            raise UserError(f"{train.flag(key)} {getattr(args, key)} is out of range: it must be at least {smallest}")
    train.check_value("threads", args.threads)
    train.check_value("eval_batch_size", args.eval_batch_size)
    smallest = train.min_image_size(args.model)  # an unknown --model fails here, before any image is generated
    if args.image_size < smallest:
        raise UserError(f"--image-size {args.image_size} is too small for {args.model}: it takes at least "
                        f"{smallest} pixels")
    device = select_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.steps = args.steps or None
    args.eval_batch_size = runtime.eval_batch_size(device, args.batch_size, args.eval_batch_size)
    with tempfile.TemporaryDirectory(prefix="caltech-bench-") as tmp:
        if args.synthetic:
            print(f"generating {args.classes} x {args.per_class} synthetic 300x240 JPEGs ...")
            data = bench.synthetic_split(tmp, args.classes, args.per_class)
        else:
            data = Path(args.data)
        split = read_split(data)
        args.cache_dir = args.cache_dir or cache.default_dir(data)  # a synthetic split's is temporary too
        if args.compute:
            results = bench.compute_variants(split, args, device)
            print(bench.format_compute_table(results))
        else:
            results = bench.run(split, args, device)
            print(bench.format_table(results))
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
