"""How a run ends: its best weights tested and its metrics.json written (`Tester`), early stopping,
and the shorter runs a longer one trains on its way (`Horizon`: grid_search.py's shared prefixes).

train.py's main loop calls these; a shorter run gets the folders, TensorBoard scalars, checkpoints,
test evaluation and metrics it would have had on its own, so a shared grid equals separate runs.
"""
import copy
import json
import resource
from pathlib import Path

from torch import nn

from . import checkpoint, engine
from .runlog import RunLogger
from .utils import atomic_write_text


def patience_ran_out(state, patience):
    """Early stopping: no better validation accuracy in the last `patience` epochs (never with 0)."""
    return patience > 0 and state["epoch"] - 1 - state["best_epoch"] >= patience


class Horizon:
    """A shorter run that a longer one trains on the way (grid_search.py's prefix sharing): it gets the
    folders, TensorBoard scalars, checkpoints, test evaluation and metrics it would have had on its own."""

    def __init__(self, args, hparams, epochs, run_name, hparam_keys):
        self.args = copy.copy(args)
        self.args.epochs, self.args.run_name = epochs, run_name
        self.epochs, self.run_name = epochs, run_name
        self.ckpt_dir, self.logdir = Path(args.ckpt_dir) / run_name, Path(args.logdir) / run_name
        self.hparams = {**hparams, "epochs": epochs, "run_name": run_name}
        self.hparam_keys = hparam_keys  # what TensorBoard's HParams shows of them
        self.logger = None

    def open(self, resume_epoch):
        self.logdir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.logdir / "hparams.json", json.dumps(self.hparams, indent=2) + "\n")
        self.logger = RunLogger(self.logdir, resume_epoch=resume_epoch)

    def close(self):
        if self.logger is not None:
            self.logger.close()


def save_horizon(saver, horizon, meta, state, last, best_weights, run_ckpt_dir):
    """Queue a horizon's best.pth and last.pth (the state of its own last epoch, with its own settings);
    returns the best weights, read back from this run's best.pth after a resume."""
    if best_weights is None:
        saver.wait()
        best_weights = checkpoint.load(run_ckpt_dir / "best.pth")["model"]
    own = {**meta, "hparams": horizon.hparams}
    saver.save({**own, "model": best_weights, "epoch": state["best_epoch"] + 1, "val_acc": state["best_val_acc"]},
               horizon.ckpt_dir / "best.pth")
    saver.save({**own, **last}, horizon.ckpt_dir / "last.pth")  # the saver copies it as it is now
    return best_weights


def finish_horizon(tester, horizon, state, best_weights, on_horizon):
    metrics = tester.finish(horizon.args, state, best_weights, horizon.ckpt_dir)
    horizon.logger.log_hparams({k: horizon.hparams[k] for k in horizon.hparam_keys}, metrics,
                               step=state["epoch"] - 1)
    horizon.close()
    if on_horizon is not None:
        on_horizon(metrics)


class Tester:
    """Evaluates a run's best weights on the test split and writes its metrics.json.

    The weights are swapped into the training model and swapped back, so a run can test the shorter
    runs it trains on the way through the same (possibly compiled) network, and go on exactly."""

    def __init__(self, net, model, test_loader, num_classes, device, ctx):
        self.net, self.model, self.test_loader = net, model, test_loader  # test_loader(args) -> a loader
        self.num_classes, self.device, self.ctx = num_classes, device, ctx

    def finish(self, args, state, weights, run_ckpt_dir):
        current = checkpoint.snapshot(self.model.state_dict())
        self.model.load_state_dict(weights)
        try:
            test = engine.evaluate(self.net, self.test_loader(args), nn.CrossEntropyLoss(), self.ctx,
                                   self.num_classes, self.device, desc="test", tta=args.tta).summary()
        finally:
            self.model.load_state_dict(current)
        metrics = {"run": args.run_name, "epochs": args.epochs, "epochs_run": state["epoch"],
                   "stopped_early": state["epoch"] < args.epochs, "best_epoch": state["best_epoch"],
                   "best_val_acc": state["best_val_acc"],
                   "val_mean_class_acc": state["history"][state["best_epoch"]]["val_mean_class_acc"],
                   **{f"test_{k}": test[k] for k in ("loss", "acc", "mean_class_acc", "top5", "n")},
                   "train_seconds": state["train_seconds"], "device": args.device, "precision": args.precision,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # this process, so far
                   "best_checkpoint": str(run_ckpt_dir / "best.pth")}
        atomic_write_text(run_ckpt_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        print(f"run {args.run_name}: best epoch {state['best_epoch'] + 1} (val acc {state['best_val_acc']:.4f}); "
              f"test: accuracy {test['acc']:.4f}, mean per-class accuracy {test['mean_class_acc']:.4f}, "
              f"top-5 {test['top5']:.4f} on {test['n']} images")
        return metrics
