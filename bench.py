"""Benchmark the published-style input pipeline against the project's, side by side, in one process.

    python bench.py --synthetic --device cpu --steps 5        # generated 300x240 JPEGs, no data needed
    python bench.py --data data/caltech101_split --json bench.json

The published-style pipeline: torchvision ImageFolder + per-image PIL transforms, DataLoader num_workers=0,
fp32, contiguous memory format. The project's: the uint8 resize cache + batched crop/flip/normalise on the
device, with train.py's runtime (caltech.training.runtime.decide: bf16 autocast and channels_last on CUDA and on CPUs
with native bf16). Both train through the same engine.train_one_epoch / engine.evaluate.

Measures (a) input-pipeline throughput alone, (b) training throughput end to end, (c) evaluation
throughput and (d) seconds per training epoch of 2,424 images, for both pipelines, with random
weights (nothing is downloaded). Ratios from one run are what to quote: these machines are shared.
`--model` measures another torchvision backbone, e.g. `--model vit_b_16`.
"""
import argparse
import dataclasses
import functools
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn
from torchvision.datasets import ImageFolder

from caltech import recipe
from caltech.cli import ArgumentParser, add_settings, check, check_limits
from caltech.data import cache
from caltech.data.loaders import CachedLoader, PILLoader, build_loader
from caltech.data.split import TRAIN_PER_CLASS, VAL_PER_CLASS, build_split, read_split
from caltech.data.transforms import MEAN, STD, eval_preset, resize_sizes, train_preset
from caltech.layout import cache_dir
from caltech.recipe import Range
from caltech.text import fixed_width
from caltech.training import engine, runtime
from caltech.training.model import DEFAULT_MODEL, build_model, min_image_size, param_groups
from caltech.utils import UserError, atomic_write_text, run_cli

EPOCH_IMAGES = 2424  # the real training split: 101 classes x 24
LIMITS = {"classes": Range(2, text="at least 2"), "per_class": Range(6, text="at least 6"),
          "steps": Range(0, text="at least 0"), "batch_size": Range(1, text="at least 1")}


class Limited:
    """The first `steps` batches of a loader (all of them when steps is None)."""

    def __init__(self, loader, steps):
        self.loader, self.steps = loader, min(steps or len(loader), len(loader))

    def __len__(self):
        return self.steps

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i == self.steps:
                break
            yield batch


def make_synthetic(root, classes=101, per_class=31, seed=0):
    """JPEGs of Caltech's typical 300x240 size with photo-like content (smooth shapes plus grain),
    so decoding costs what it costs on the real images."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:240, 0:300].astype(np.float32)
    for c in range(classes):
        folder = Path(root) / f"class_{c:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            cx, cy, r = rng.uniform(60, 240), rng.uniform(40, 200), rng.uniform(30, 90)
            blob = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r)[..., None]
            base = rng.uniform(0, 255, 3) * (xx[..., None] / 300) + rng.uniform(0, 255, 3) * (1 - yy[..., None] / 240)
            img = np.where(blob, rng.uniform(0, 255, 3), base / 2) + rng.normal(0, 12, (240, 300, 3))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"image_{i:04d}.jpg", quality=85)
    return Path(root)


def synthetic_split(workdir, classes, per_class):
    src = make_synthetic(Path(workdir) / "src", classes, per_class)
    return build_split(src, Path(workdir) / "split", train_per_class=min(TRAIN_PER_CLASS, per_class - 1),
                       val_per_class=min(VAL_PER_CLASS, (per_class - 1) // 5)).out


def timed(device, fn):
    """(seconds, fn()), the device's queued work included."""
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda device: None
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def pipeline_rate(loader, steps, device):
    """Images per second delivered to the loop, on the device, with no model, after one warm-up batch.

    It is cheap next to training, so it runs over 5x `steps` batches (a whole epoch at most).
    """
    def drain(limit):
        return sum(images.shape[0] for images, _ in Limited(loader, limit))
    drain(1)
    seconds, n = timed(device, lambda: drain(steps and 5 * steps))
    return n / seconds


def train_rate(model, loader, steps, rt, num_classes):
    """Images per second through engine.train_one_epoch, after one warm-up step."""
    optimizer = torch.optim.Adam(param_groups(model, 1e-3, 1e-4))
    criterion = nn.CrossEntropyLoss()
    engine.train_one_epoch(model, Limited(loader, 1), criterion, optimizer, rt, num_classes, "warm-up")
    seconds, stats = timed(rt.device, lambda: engine.train_one_epoch(
        model, Limited(loader, steps), criterion, optimizer, rt, num_classes, "train"))
    return stats["n"] / seconds


def eval_rate(model, loader, steps, rt, num_classes):
    criterion = nn.CrossEntropyLoss()
    engine.evaluate(model, Limited(loader, 1), criterion, rt, num_classes, "warm-up")
    seconds, meter = timed(rt.device, lambda: engine.evaluate(model, Limited(loader, steps), criterion, rt,
                                                              num_classes, "eval"))
    return meter.n / seconds


def original_loaders(split, args, device):
    """The published pipeline: ImageFolder per split folder, PIL transforms, no workers."""
    train = ImageFolder(str(split.root / "train"), transform=train_preset(args.image_size))
    val = ImageFolder(str(split.root / "val"), transform=eval_preset(args.image_size))
    return (PILLoader(train, args.batch_size, device, args.seed, True, workers=0),
            PILLoader(val, args.batch_size, device, args.seed, False, workers=0))


def run(split, args, rt):
    """Measure both pipelines, the project's on `rt` (train.py's runtime choices), the original in fp32 and the
    contiguous memory format; returns the figures as a flat dict (the keys of --json)."""
    num_classes, device = len(split.classes), rt.device
    original_rt = dataclasses.replace(runtime.decide(device, amp=False), memory_format=torch.contiguous_format)
    results = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
               "model": args.model, "image_size": args.image_size, "batch_size": args.batch_size, "steps": args.steps,
               "amp": rt.dtype, "train_images": len(split.samples["train"])}

    project = argparse.Namespace(**{**recipe.defaults(), "image_size": args.image_size, "batch_size": args.batch_size,
                                    "seed": args.seed, "workers": 0, "cache_dir": args.cache_dir, "mean": MEAN,
                                    "std": STD})
    resize, crop = resize_sizes(args.image_size)
    seconds, _ = timed(device, lambda: [cache.load_or_build(args.cache_dir, split, name, side)
                                        for name, side in (("train", resize), ("val", crop))])
    results["cache_seconds"] = seconds
    results["cache_mb"] = sum(cache.cache_file(args.cache_dir, split, n, s).stat().st_size
                              for n, s in (("train", resize), ("val", crop))) / 2**20
    loaders = {"original": (original_rt, original_loaders(split, args, device)),
               "project": (rt, (build_loader(split, "train", project, rt), build_loader(split, "val", project, rt)))}
    for name, (name_rt, (train_loader, val_loader)) in loaders.items():
        results[f"pipeline_img_s_{name}"] = pipeline_rate(train_loader, args.steps, device)
        torch.manual_seed(args.seed)
        model = build_model(num_classes, pretrained=False, name=args.model, image_size=args.image_size)
        model = model.to(device, memory_format=name_rt.memory_format)
        net = torch.compile(model) if name == "project" and args.compile else model
        results[f"train_img_s_{name}"] = train_rate(net, train_loader, args.steps, name_rt, num_classes)
        results[f"eval_img_s_{name}"] = eval_rate(net, val_loader, args.steps, name_rt, num_classes)
        results[f"epoch_s_{name}"] = EPOCH_IMAGES / results[f"train_img_s_{name}"]
        # Share of a training epoch spent producing its inputs (the pipeline alone, at its own rate).
        results[f"input_share_{name}"] = results[f"train_img_s_{name}"] / results[f"pipeline_img_s_{name}"]
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        results["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return results


def format_table(r):
    labels, keys, formats = zip(("pipeline img/s", "pipeline_img_s", "{:,.0f}"),
                                ("train img/s", "train_img_s", "{:,.1f}"), ("eval img/s", "eval_img_s", "{:,.1f}"),
                                (f"epoch s ({EPOCH_IMAGES:,} img)", "epoch_s", "{:,.1f}"),
                                ("input share of epoch", "input_share", "{:.1%}"), strict=True)
    table = pd.DataFrame({name: [r[f"{key}_{name}"] for key in keys] for name in ("original", "project")}, index=keys)
    smaller = table.index.isin(["epoch_s", "input_share"])  # the ratio is always "times better"
    ratio = (table["original"] / table["project"]).where(smaller, table["project"] / table["original"])
    # one number format per row: by hand, as pandas formats by column
    cells = pd.DataFrame({"": labels, **{name: [fmt.format(v) for fmt, v in zip(formats, table[name], strict=True)]
                                         for name in table}}, index=keys)
    cells["project/original"] = ratio.map("{:,.1f}x".format)
    text = fixed_width(cells)
    return (f"device: {r['device']}, {r['model']}, {r['image_size']} px, batch {r['batch_size']}, "
            f"{r['steps']} steps per measurement, project precision {r['amp']}\n{text}\n"
            f"(project/original: how many times faster; for epoch s and input share, how many times smaller)\n"
            f"cache: built in {r['cache_seconds']:.1f} s once, {r['cache_mb']:,.0f} MB for train+val; "
            f"peak resident memory {r['peak_rss_mb']:,.0f} MB"
            + (f", peak GPU memory {r['peak_gpu_mb']:,.0f} MB" if "peak_gpu_mb" in r else ""))


# --- compute: variants of the project's own path, where the network sets the pace ---

# (name, threads, channels_last, autocast dtype, torch.compile); threads None = the runtime's; "1 thread" is
# measured on the CPU only
VARIANTS = [
    ("fp32 (default)", None, False, None, False),
    ("channels_last", None, True, None, False),
    ("bf16 autocast", None, False, torch.bfloat16, False),
    ("bf16 + channels_last", None, True, torch.bfloat16, False),
    ("compile", None, False, None, True),
    ("compile + bf16", None, False, torch.bfloat16, True),
    ("1 thread", 1, False, None, False),
]


def train_steps(net, loader, optimizer, rt, num_classes, steps):
    return engine.train_one_epoch(net, Limited(loader, steps), nn.CrossEntropyLoss(), optimizer, rt, num_classes,
                                  "train")


def compute_variants(split, args, rt, variants=None, rounds=2):
    """Train and eval img/s of each variant of the project's path, measured round-robin (`rounds`
    times `steps` batches each, after a warm-up that also pays torch.compile) so that load on a
    shared machine falls on every variant alike. Evaluation is also measured at eval batch sizes
    32 and 128 and under torch.inference_mode."""
    device = rt.device
    variants = [v for v in variants or VARIANTS if v[1] is None or device.type == "cpu"]
    num_classes, default_threads = len(split.classes), torch.get_num_threads()
    resize, crop = resize_sizes(args.image_size)
    images = {"train": cache.load_or_build(args.cache_dir, split, "train", resize, in_memory=True),
              "val": cache.load_or_build(args.cache_dir, split, "val", crop)}
    labels = {n: np.array([lab for _, lab in split.samples[n]], dtype=np.int64) for n in images}

    def loader(name, channels_last, batch_size):
        return CachedLoader(images[name], labels[name], batch_size, device, args.seed, name == "train", crop,
                            channels_last)

    setups, results = [], {"device": str(device), "threads": default_threads, "steps": args.steps, "rounds": rounds,
                           "image_size": args.image_size, "batch_size": args.batch_size, "variants": {}}
    for name, threads, channels_last, dtype, compiled in variants:
        torch.set_num_threads(threads or default_threads)
        torch.manual_seed(args.seed)
        model = build_model(num_classes, pretrained=False, name=args.model, image_size=args.image_size).to(device)
        model = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        net = torch.compile(model) if compiled else model
        variant_rt = runtime.decide(device, dtype=dtype or torch.float32)
        optimizer = torch.optim.Adam(param_groups(model, 1e-3, 1e-4))
        step = functools.partial(train_steps, net, loader("train", channels_last, args.batch_size), optimizer,
                                 variant_rt, num_classes)
        seconds, _ = timed(device, functools.partial(step, 1))  # warm-up; includes compilation
        setups.append((name, threads, channels_last, variant_rt, net, step))
        results["variants"][name] = {"warmup_s": seconds, "train_s": 0.0, "train_n": 0}
    for _ in range(rounds):
        for name, threads, _, _, _, step in setups:
            torch.set_num_threads(threads or default_threads)
            seconds, stats = timed(device, functools.partial(step, args.steps))
            results["variants"][name]["train_s"] += seconds
            results["variants"][name]["train_n"] += stats["n"]
    criterion = nn.CrossEntropyLoss()
    eval_steps = max(1, (args.steps or 0) * args.batch_size // 128) if args.steps else None
    for name, threads, channels_last, variant_rt, net, _ in setups:
        torch.set_num_threads(threads or default_threads)
        r = results["variants"][name]
        r["train_img_s"] = r["train_n"] / r["train_s"]
        r["epoch_s"] = EPOCH_IMAGES / r["train_img_s"]
        for batch, mode in ((32, "no_grad"), (128, "no_grad"), (128, "inference_mode")):
            val = loader("val", channels_last, batch)
            steps = eval_steps and eval_steps * 128 // batch
            guard = torch.inference_mode if mode == "inference_mode" else torch.no_grad
            with guard():
                engine.evaluate(net, Limited(val, 1), criterion, variant_rt, num_classes, "warm-up")
                seconds, meter = timed(device, functools.partial(
                    engine.evaluate, net, Limited(val, steps), criterion, variant_rt, num_classes, "eval"))
            r[f"eval_img_s_b{batch}_{mode}"] = meter.n / seconds
    torch.set_num_threads(default_threads)
    return results


def format_compute_table(r):
    table = pd.DataFrame.from_dict(r["variants"], orient="index")
    table.insert(1, "vs default", table["train_img_s"] / table["train_img_s"].iloc[0])
    table = table[["train_img_s", "vs default", "epoch_s", "eval_img_s_b32_no_grad", "eval_img_s_b128_no_grad",
                   "eval_img_s_b128_inference_mode", "warmup_s"]]
    table.columns = ["train img/s", "vs default", "epoch s", "eval img/s b32", "b128", "b128 inference_mode",
                     "warm-up s"]
    return (f"device: {r['device']}, {r['threads']} threads by default, {r['image_size']} px, batch {r['batch_size']}, "
            f"{r['steps']} steps x {r['rounds']} rounds per variant\n"
            + table.to_string(float_format=lambda x: f"{x:,.2f}"))


def get_args_parser(add_help=True):
    parser = ArgumentParser(description=__doc__, add_help=add_help,
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
    group.add_argument("--seed", type=int, default=recipe.SEED,
                       help=f"seed of weights and shuffling (default: {recipe.SEED})")
    group.add_argument("--cache-dir", default=None, help="cache folder (default: cache/ beside the split)")
    add_settings(parser, ["runtime"], skip=["workers"])  # as train.py's; they apply to the project's pipeline
    group = parser.add_argument_group("output")
    group.add_argument("--json", default=None, help="also write the figures to this JSON file (default: none)")
    return parser


def main(args):
    if bool(args.data) == bool(args.synthetic):
        raise UserError("give exactly one of --data DIR and --synthetic")
    for key, limit in LIMITS.items():
        check(key, getattr(args, key), limit)
    check_limits(args, recipe.RUNTIME)
    smallest = min_image_size(args.model)  # an unknown --model fails here, before any image is generated
    if args.image_size < smallest:
        raise UserError(f"--image-size {args.image_size} is too small for {args.model}: it takes at least "
                        f"{smallest} pixels")
    rt = runtime.decide(args.device, args.amp, args.batch_size, args.eval_batch_size, args.threads)
    args.steps = args.steps or None
    with tempfile.TemporaryDirectory(prefix="caltech-bench-") as tmp:
        if args.synthetic:
            print(f"generating {args.classes} x {args.per_class} synthetic 300x240 JPEGs ...")
            data = synthetic_split(tmp, args.classes, args.per_class)
        else:
            data = Path(args.data)
        split = read_split(data)
        args.cache_dir = args.cache_dir or cache_dir(data)  # a synthetic split's is temporary too
        if args.compute:
            results = compute_variants(split, args, rt)
            print(format_compute_table(results))
        else:
            results = run(split, args, rt)
            print(format_table(results))
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
