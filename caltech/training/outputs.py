"""What a run leaves behind, in one object per run: `RunOutput` (folders, TensorBoard logger, hparams.json,
best.pth / last.pth, the test of the best weights and metrics.json), `Tester`, and early stopping.

train.py's loop feeds a list of outputs: the run it trains, and the shorter runs of the same recipe it
trains on the way (grid_search.py's shared prefixes). A shorter run is an output that finishes earlier;
each gets the folders, scalars, checkpoints, test evaluation and metrics it would have had on its own, so a
shared grid equals separate runs.
"""
import copy
import json
import resource
import shutil

from .. import recipe
from ..layout import run_paths
from ..utils import atomic_write_text
from . import checkpoint, engine
from .losses import reported_loss
from .tblog import RunLogger

SHOWN = (*recipe.RECIPE, "num_classes", "split_sha256")  # what TensorBoard's HParams shows of a run's settings


def patience_ran_out(state, patience):
    """Early stopping: no better validation accuracy in the last `patience` epochs (never with 0)."""
    return patience > 0 and state["epoch"] - 1 - state["best_epoch"] >= patience


class RunOutput:
    """The outputs of run `args.run_name`, `args.epochs` long, at `paths` (layout.run_paths).

    `carrier`: this output holds the training itself, so its last.pth is written every epoch (an exact resume
    starts from it); a shorter run's last.pth is written at its own end only, so that grid_search.py can
    tell a finished shorter run from one still on the way. `hparams` (the carrier's settings; this run's epochs
    and name replace its own) is what hparams.json and the checkpoints record (SHOWN of it in TensorBoard's
    HParams); `on_finish(metrics)` is called once the run is tested."""

    def __init__(self, args, hparams, carrier=False, on_finish=None):
        self.args, self.carrier, self.on_finish = copy.copy(args), carrier, on_finish
        self.epochs, self.run_name = args.epochs, args.run_name
        self.paths = run_paths(args.run_name, args.ckpt_dir, args.logdir)
        self.hparams = {**hparams, "epochs": args.epochs, "run_name": args.run_name}
        self.logger, self.created = None, []

    def open(self, state, carrier_best):
        """Make the folders, write hparams.json, start the logger at `state`'s epoch. A shorter run joining a
        resumed one whose best epoch it shares, but that has no best.pth of its own (a run killed before
        this layout), gets the carrier's best weights under its own settings."""
        self.created = [d for d in (self.paths.logdir, self.paths.ckpt_dir) if not d.exists()]
        self.paths.logdir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.paths.hparams, json.dumps(self.hparams, indent=2) + "\n")
        self.logger = RunLogger(self.paths.logdir, resume_epoch=state["epoch"])
        if state["best_epoch"] >= 0 and not self.paths.best.exists() and carrier_best != self.paths.best:
            self.paths.ckpt_dir.mkdir(parents=True, exist_ok=True)
            best = checkpoint.load(carrier_best)
            checkpoint.save(checkpoint.build(best["model"], best["classes"], self.hparams, best["epoch"],
                                             best["val_acc"]), self.paths.best)

    def log_epoch(self, epoch, stats):
        self.logger.log_epoch(epoch, stats)

    def save(self, saver, classes, epoch, val_acc, best, last, ends):
        """Queue the checkpoints of epoch `epoch` (counted from 1): `best`, its weights when the epoch improved
        (else None), and `last`, (weights, the state an exact resume needs), when this output carries the training
        or `ends` now."""
        if best is not None:
            saver.save(checkpoint.build(best, classes, self.hparams, epoch, val_acc), self.paths.best)
        if self.carrier or ends:
            weights, state = last
            saver.save(checkpoint.build(weights, classes, self.hparams, epoch, val_acc, state), self.paths.last)

    def finish(self, saver, tester, state):
        """Test the best weights, write metrics.json and the HParams session, close; returns the metrics."""
        saver.wait()  # best.pth is on disk
        metrics = tester.finish(self.args, state, checkpoint.load(self.paths.best)["model"], self.paths)
        self.logger.log_hparams({k: self.hparams[k] for k in SHOWN}, metrics, step=state["epoch"] - 1)
        self.close()
        if self.on_finish is not None:
            self.on_finish(metrics)
        return metrics

    def close(self):
        if self.logger is not None:
            self.logger.close()
            self.logger = None

    def discard(self):
        """Remove the folders `open` made: a run that ends before its first epoch is saved leaves none."""
        self.close()
        for folder in self.created:
            shutil.rmtree(folder, ignore_errors=True)


class Tester:
    """Evaluates a run's best weights on the test split and writes its metrics.json.

    The weights are swapped into the training model and swapped back, so a run can test the shorter
    runs it trains on the way through the same (possibly compiled) network, and go on exactly."""

    def __init__(self, net, model, test_loader, num_classes, rt):
        self.net, self.model, self.test_loader = net, model, test_loader  # test_loader(args) -> a loader
        self.num_classes, self.rt = num_classes, rt

    def finish(self, args, state, weights, paths):
        current = checkpoint.snapshot(self.model.state_dict())
        self.model.load_state_dict(weights)
        try:
            test = engine.evaluate(self.net, self.test_loader(args), reported_loss(args), self.rt, self.num_classes,
                                   desc="test", tta=args.tta).summary()
        finally:
            self.model.load_state_dict(current)
        metrics = {"run": args.run_name, "epochs": args.epochs, "epochs_run": state["epoch"],
                   "stopped_early": state["epoch"] < args.epochs, "best_epoch": state["best_epoch"],
                   "best_val_acc": state["best_val_acc"],
                   "val_mean_class_acc": state["history"][state["best_epoch"]]["val_mean_class_acc"],
                   **{f"test_{k}": test[k] for k in ("loss", "acc", "mean_class_acc", "top5", "n")},
                   "train_seconds": state["train_seconds"], "device": args.device, "precision": args.precision,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # this process, so far
                   "best_checkpoint": str(paths.best)}
        atomic_write_text(paths.metrics, json.dumps(metrics, indent=2) + "\n")
        print(f"run {args.run_name}: best epoch {state['best_epoch'] + 1} (val acc {state['best_val_acc']:.4f}); "
              f"test: accuracy {test['acc']:.4f}, mean per-class accuracy {test['mean_class_acc']:.4f}, "
              f"top-5 {test['top5']:.4f} on {test['n']} images")
        return metrics
