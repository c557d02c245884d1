"""Evaluate a checkpoint on the test (or val) split: overall, mean per-class and top-5 accuracy.

    python evaluate.py --ckpt best.pth                 # a bare name is looked up in checkpoints/
    python evaluate.py --ckpt checkpoints/RUN/best.pth --split val --out eval/ --json eval/metrics.json

The model is rebuilt from the checkpoint alone (its network, class count and settings); nothing is downloaded.
Checkpoints are read with torch.load(weights_only=True): a file holding code is refused unrun.
"""
import argparse
import json
from pathlib import Path

from caltech.cli import check_limits
from caltech.data.loaders import build_loader
from caltech.data.split import read_split
from caltech.layout import CHOSEN, CKPT_DIR, cache_dir
from caltech.training import engine, evaluation
from caltech.training.losses import reported_loss
from caltech.training.model import load_for_inference
from caltech.utils import UserError, atomic_write_text, run_cli


def get_args_parser(add_help=True):
    parser = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("what to evaluate")
    group.add_argument("--ckpt", default=CHOSEN[False],
                       help=f"checkpoint file; a bare name that is not a file is looked up in {CKPT_DIR}/ "
                            f"(default: {CHOSEN[False]}, the grid's choice)")
    group.add_argument("--data", default=None,
                       help="split folder (default: the one the checkpoint was trained on)")
    group.add_argument("--split", choices=("test", "val"), default="test", help="split to evaluate (default: test)")
    group.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                       help="average each image's prediction with its mirror's (default: as the run was trained, "
                            "off for the published recipe)")
    group = parser.add_argument_group("outputs")
    group.add_argument("--out", default=None,
                       help="folder for per_class.csv, confusion.csv and confusion.png (default: none)")
    group.add_argument("--json", default=None,
                       help="write the metrics to this JSON file: test_acc, test_mean_class_acc, test_top5, test_n "
                            "(val_... with --split val) and split (default: none)")
    group = parser.add_argument_group("runtime (defaults: the checkpoint's settings)")
    group.add_argument("--device", default=None, help="cuda, mps or cpu (default: CUDA, else MPS, else CPU)")
    group.add_argument("--loader", choices=("cached", "pil"), default=None,
                       help="input path (default: the one the run used, so results match its Test_Acc)")
    group.add_argument("--eval-batch-size", type=int, default=None, help="batch size (default: the run's)")
    group.add_argument("--cache-dir", default=None, help="resized-image cache (default: cache/ beside --data)")
    group.add_argument("--workers", type=int, default=None,
                       help="loader processes for --loader pil (default: the run's)")
    return parser


def write_tables(out, classes, confusion):
    """per_class.csv and confusion.csv (caltech.training.evaluation reads them back for report.py) and
    confusion.png."""
    from caltech.report.figures import plot_confusion  # matplotlib only when figures are asked for
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    evaluation.write_per_class(out / "per_class.csv", confusion, classes)
    evaluation.write_confusion(out / "confusion.csv", confusion, classes)
    plot_confusion(confusion, classes, out / "confusion.png")


def main(args):
    check_limits(args, ("eval_batch_size", "workers"))  # as train.py's
    # the run's eval batch (or --eval-batch-size): the same batches give the run's test figures to the last digit
    path, ckpt, run, model, rt = load_for_inference(args.ckpt, args.device, args.eval_batch_size)
    run.eval_batch_size = rt.eval_batch_size
    for key in ("data", "loader", "cache_dir", "workers"):  # the run's own settings, then this command's overrides
        if getattr(args, key) is not None:
            setattr(run, key, getattr(args, key))
    if args.data is not None and args.cache_dir is None:
        run.cache_dir = cache_dir(args.data)
    split = read_split(run.data)
    if split.classes != ckpt["classes"]:
        raise UserError(f"the classes of {run.data} ({len(split.classes)}) do not match the {len(ckpt['classes'])} "
                        f"classes {path} was trained on; pass the --data split it was trained with")
    loader = build_loader(split, args.split, run, rt, train=False)
    tta = run.tta if args.tta is None else args.tta
    meter = engine.evaluate(model, loader, reported_loss(run), rt, len(split.classes), desc=args.split, tta=tta)
    stats = meter.summary()
    # {split}_{metric}, as train.py's metrics.json names them: test_acc, test_mean_class_acc, test_top5, test_n
    metrics = {f"{args.split}_{key}": stats[key] for key in ("acc", "mean_class_acc", "top5", "n")}
    metrics["split"] = args.split
    print(f"checkpoint: {path} (epoch {ckpt['epoch']}, val acc {ckpt['val_acc']:.4f})"
          + (", flip test-time augmentation" if tta else ""))
    for key, value in metrics.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    if args.json:
        atomic_write_text(args.json, json.dumps(metrics, indent=2) + "\n")
    if args.out:
        write_tables(args.out, split.classes, meter.matrix())
        print(f"per-class table and confusion matrix written to {args.out}/")
    return metrics


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
