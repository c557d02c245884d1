"""Evaluate a checkpoint on the test (or val) split: overall, mean per-class and top-5 accuracy.

    python evaluate.py --ckpt best.pth                 # a bare name is looked up in checkpoints/
    python evaluate.py --ckpt checkpoints/RUN/best.pth --split val --out eval/ --json val.json

The model is rebuilt from the checkpoint alone (its network, class count and settings); nothing is downloaded.
Checkpoints are read with torch.load(weights_only=True): a file holding code is refused unrun. A checkpoint is
scored only on the split it was trained on (its recorded fingerprint, the files and their content): another split's
test images may be its training images (--allow-other-split scores it anyway, and says so).
"""
import argparse
import json
from pathlib import Path

from caltech.cli import ArgumentParser, check_limits
from caltech.data.loaders import build_loader
from caltech.data.split import read_split
from caltech.disk import check_file, check_folder
from caltech.layout import CHOSEN, CKPT_DIR, cache_dir
from caltech.training import engine, evaluation
from caltech.training.losses import reported_loss
from caltech.training.model import load_for_inference
from caltech.training.setup import check_image_sizes
from caltech.utils import UserError, atomic_write_text, run_cli, warn


def get_args_parser(add_help=True):
    parser = ArgumentParser(description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("what to evaluate")
    group.add_argument("--ckpt", default=CHOSEN[False],
                       help=f"checkpoint file; a bare name that is not a file is looked up in {CKPT_DIR}/ "
                            f"(default: {CHOSEN[False]}, the grid's choice)")
    group.add_argument("--data", default=None,
                       help="split folder (default: the one the checkpoint was trained on)")
    group.add_argument("--split", choices=("test", "val"), default="test", help="split to evaluate (default: test)")
    group.add_argument("--allow-other-split", action="store_true",
                       help="score a checkpoint on a split other than the one it was trained on (another --seed or "
                            "counts, other images): its test images may then include its training images, and its "
                            "figures say so (default: off, refused in one sentence)")
    group.add_argument("--eval-image-size", type=int, default=None, metavar="N",
                       help="the side to resize the images to, e.g. above the training crop (FixRes) (default: the "
                            "run's: its --eval-image-size, else its --image-size)")
    group.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                       help="average each image's prediction with its mirror's (default: as the run was trained, "
                            "off for the published recipe)")
    group = parser.add_argument_group("outputs")
    group.add_argument("--out", default=None,
                       help="folder for per_class.csv, confusion.csv, confusion.png and metrics.json (as --json) "
                            "(default: none)")
    group.add_argument("--json", default=None,
                       help="write the metrics to this JSON file: test_acc, test_mean_class_acc, test_top5, test_n "
                            "(val_... with --split val), split, checkpoint, and the fingerprints of the split scored "
                            "and of the one it was trained on (default: none)")
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
    if args.out:
        check_folder("--out", args.out)
    if args.json:
        check_file("--json", args.json)
    # the run's eval batch (or --eval-batch-size): the same batches give the run's test figures to the last digit
    path, ckpt, run, model, rt = load_for_inference(args.ckpt, args.device, args.eval_batch_size)
    run.eval_batch_size = rt.eval_batch_size
    for key in ("data", "loader", "cache_dir", "workers", "eval_image_size"):  # the run's, then this command's
        if getattr(args, key) is not None:
            setattr(run, key, getattr(args, key))
    if args.eval_image_size is not None:
        check_image_sizes(run, ("eval_image_size",))
    if args.data is not None and args.cache_dir is None:
        run.cache_dir = cache_dir(args.data)
    split = read_split(run.data)
    if split.classes != ckpt["classes"]:
        raise UserError(f"the classes of {run.data} ({len(split.classes)}) do not match the {len(ckpt['classes'])} "
                        f"classes {path} was trained on; pass the --data split it was trained with")
    trained_on = getattr(run, "split_sha256", None)  # None: a checkpoint from before runs recorded it
    other = trained_on is not None and not split.describes(trained_on)
    if other and not args.allow_other_split:
        raise UserError(f"{path} was trained on another split (fingerprint {trained_on[:12]}) than {run.data} "
                        f"({split.sha256[:12]}), so its {args.split} images may include images it was trained or "
                        "validated on: pass --data with the split it was trained on, or --allow-other-split")
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
    if other:
        warn(f"{path} was trained on another split than {run.data} (--allow-other-split): these figures may count "
             "images it was trained or validated on")
    record = {**metrics, "checkpoint": str(path), "split_sha256": split.sha256, "trained_on_split": trained_on,
              "other_split": other}
    for target in [args.json] + ([Path(args.out) / "metrics.json"] if args.out else []):
        if target:
            atomic_write_text(target, json.dumps(record, indent=2) + "\n")
    if args.out:
        write_tables(args.out, split.classes, meter.matrix())
        print(f"per-class table, confusion matrix and metrics.json written to {args.out}/")
    return record


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
