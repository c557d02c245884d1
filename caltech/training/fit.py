"""One run, start to end: the one training loop, shared by train.py, the from-scratch baseline and every grid run.

    metrics = train(args)           # train.py's parsed flags: checks, trains, tests best.pth, returns its metrics

`train` checks the flags, resumes from last.pth with --resume, builds the split, model, optimiser and loaders,
then runs the epochs: train, validate, step the schedule, log, checkpoint (in the background), test the best
weights at the end. A grid hands it `horizons`, the shorter runs of the same recipe it passes on the way, each
saved and tested as if it had been trained alone.
"""
import copy
import time

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..data.loaders import build_loader
from ..data.split import ensure_split
from ..disk import check_folder
from ..layout import cache_dir, run_paths
from ..utils import Interrupted, UserError, derive_seed, seed_everything, writing_failed
from . import checkpoint, engine, runtime
from .losses import build_loss, reported_loss
from .model import build_model, param_groups
from .optim import build_optimizer, build_scheduler
from .outputs import RunOutput, Tester, patience_ran_out
from .setup import (
    check_args,
    check_classes,
    check_room_for,
    default_run_name,
    resolve_model,
    restore_recipe,
    resume_command,
    shares_prefix,
    shorter_run,
)

HPARAMS_EXTRA = ("num_classes",)  # what TensorBoard's HParams shows of a run beside its recipe


def prepare(args, horizons):
    """`args` checked and resolved (a copy: the caller's stays as it was), the last.pth it resumes (or None), and
    the command that resumes it."""
    args = copy.copy(args)
    check_args(args)
    for epochs in horizons:
        if not shares_prefix(args, epochs):
            raise UserError(f"a {epochs}-epoch run is not the first epochs of this {args.epochs}-epoch one "
                            f"(its learning rates would differ); train it on its own")
    resume = None
    if args.resume:
        last = run_paths(args.run_name, args.ckpt_dir, args.logdir).last
        if not last.is_file():
            raise UserError(f"--resume: run {args.run_name} has no {last} to continue from; start it without --resume")
        resume = checkpoint.load(last)
        restore_recipe(args, resume["hparams"])
    resolve_model(args)  # after restore_recipe: a resumed run keeps its model
    args.run_name = args.run_name or default_run_name(args)
    if resume is None and run_paths(args.run_name, args.ckpt_dir, args.logdir).last.exists():
        raise UserError(f"run {args.run_name} already exists in {args.ckpt_dir}; pass --resume to continue it "
                        "or choose another --run-name")
    for epochs, name in sorted(horizons.items()):
        if resume is not None and epochs <= resume["epoch"]:  # grid.search never asks for one
            raise UserError(f"run {name} ends at epoch {epochs}, which run {args.run_name} has already passed")
    return args, resume, resume_command(args)  # before the runtime is resolved: the command as the user typed it


class Trainer:
    """The model, optimiser, schedule, loss and loaders of a run on its Runtime, and the loop state that last.pth
    keeps (epoch, best validation accuracy and epoch, history, seconds)."""

    def __init__(self, args, split, rt, resume=None, runs=1):
        self.args, self.split, self.rt, self.num_classes = args, split, rt, len(split.classes)
        seed_everything(args.seed)
        self.model = build_model(self.num_classes, pretrained=not args.scratch, weights=args.weights,
                                 name=args.model, weights_name=args.weights_name, image_size=args.image_size,
                                 load_weights=resume is None, dropout=args.dropout)
        self.model.to(rt.device, memory_format=rt.memory_format)
        self.optimizer = build_optimizer(param_groups(self.model, args.lr_fc, args.lr_base), args.optimizer,
                                         args.weight_decay, args.momentum)
        self.scheduler = build_scheduler(self.optimizer, args.schedule, args.epochs, args.step_size, args.gamma,
                                         args.warmup_epochs)
        # --ema: validation, test and best.pth see the average; the optimizer trains self.model
        self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(args.ema), use_buffers=True) \
            if args.ema else None
        self.state = {"epoch": 0, "best_val_acc": -1.0, "best_epoch": -1, "history": [], "train_seconds": 0.0}
        if resume is not None:
            if self.ema is None:
                self.model.load_state_dict(resume["model"])
            else:
                self.model.load_state_dict(resume["train_weights"])
                self.ema.module.load_state_dict(resume["model"])
                self.ema.n_averaged.fill_(resume["ema_steps"])
            self.optimizer.load_state_dict(resume["optimizer"])
            self.scheduler.load_state_dict(resume["scheduler"])
            rt.scaler.load_state_dict(resume["scaler"])
            self.state = {k: resume[k] for k in self.state}
        self.net = torch.compile(self.model) if args.compile else self.model
        self.criterion = build_loss(args.loss, args.label_smoothing)  # validation and test: unsmoothed
        self.mix = engine.batch_mixer(args.mixup, args.cutmix, self.num_classes)
        check_room_for(args, split, self.model, runs)  # before the caches are built
        self.train_loader = build_loader(split, "train", args, rt)
        self.val_loader = build_loader(split, "val", args, rt)

    def tester(self):
        return Tester(self.net, self.model, lambda run_args: build_loader(self.split, "test", run_args, self.rt),
                      self.num_classes, self.rt)

    def epoch(self, epoch):
        """Train and validate epoch `epoch` (from 0) and step the schedule; returns (stats, is_best, seconds)."""
        start = time.perf_counter()
        seed_everything(derive_seed(self.args.seed, epoch))  # each epoch's randomness depends only on (seed, epoch)
        self.train_loader.set_epoch(epoch)
        lrs = {f"lr_{g['name']}": g["lr"] for g in self.optimizer.param_groups}
        desc = f"epoch {epoch + 1}/{self.args.epochs}"
        average = None if self.ema is None else lambda: self.ema.update_parameters(self.model)
        train = engine.train_one_epoch(self.net, self.train_loader, self.criterion, self.optimizer, self.rt,
                                       self.num_classes, desc=f"{desc} train", mix=self.mix, after_step=average)
        validated = self.net if self.ema is None else self.ema.module
        val = engine.evaluate(validated, self.val_loader, reported_loss(self.args), self.rt, self.num_classes,
                              desc=f"{desc} val", tta=self.args.tta).summary()
        self.scheduler.step()
        stats = {"epoch": epoch, **{f"train_{k}": v for k, v in train.items()},
                 **{f"val_{k}": v for k, v in val.items()}, **lrs}
        state = self.state
        state["epoch"] = epoch + 1
        state["history"].append(stats)
        state["train_seconds"] += time.perf_counter() - start
        is_best = val["acc"] > state["best_val_acc"]  # ties keep the earlier epoch
        if is_best:
            state["best_val_acc"], state["best_epoch"] = val["acc"], epoch
        return stats, is_best, time.perf_counter() - start

    def weights(self):
        """The weights this epoch validated (the average with --ema): what best.pth and last.pth keep as `model`."""
        return (self.model if self.ema is None else self.ema.module).state_dict()

    def resume_state(self):
        """What last.pth adds to the weights for an exact resume (with --ema, the trained weights and how many
        steps the average has seen)."""
        average = {} if self.ema is None else {"train_weights": self.model.state_dict(),
                                               "ema_steps": int(self.ema.n_averaged)}
        return {**self.state, "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.rt.scaler.state_dict(), **average}


def train(args, on_epoch=None, horizons=None, on_horizon=None):
    """Train one run; returns its final metrics. `on_epoch(stats)` is called after each epoch, its
    checkpoints handed to the saver (the Ray backend reports to Tune through it).

    `horizons` {epochs: run_name} are shorter runs of the same recipe that this one trains on the way
    (see setup.shares_prefix): each is saved, tested and handed to `on_horizon(metrics)` when its last
    epoch ends, exactly as if it had been trained on its own.
    """
    horizons = horizons or {}
    args, resume, again = prepare(args, horizons)
    rt = runtime.decide(args.device, args.amp, args.batch_size, args.eval_batch_size, args.threads)
    split = ensure_split(args.data, source=args.source)
    check_classes(split, args.data)
    if resume is not None and (resume["classes"] != split.classes
                               or not split.describes(resume["hparams"].get("split_sha256", split.sha256))):
        raise UserError(f"the split {args.data} differs from the one run {args.run_name} was trained on")
    args.device, args.eval_batch_size = str(rt.device), rt.eval_batch_size
    args.cache_dir = args.cache_dir or cache_dir(args.data)
    if args.loader == "cached":
        check_folder("--cache-dir", args.cache_dir)
    args.precision, args.split_sha256 = rt.dtype, split.sha256  # for the record: rows and metrics.json carry them
    hparams = {**vars(args), "num_classes": len(split.classes)}
    hparams.pop("resume")

    trainer = Trainer(args, split, rt, resume, runs=1 + len(horizons))
    state = trainer.state
    print(f"run {args.run_name}: {args.model} {'from scratch' if args.scratch else 'fine-tuned'}, "
          f"{args.image_size} px, {len(split.classes)} classes, "
          f"{len(split.samples['train'])}/{len(split.samples['val'])}/{len(split.samples['test'])} "
          f"train/val/test images, {rt.device} {rt.dtype}, {args.loader} loader"
          + (f", resuming after epoch {state['epoch']}" if resume is not None else "")
          + (f"; also the runs of its first {', '.join(map(str, sorted(horizons)))} epochs" if horizons else ""))
    # the shorter runs first, this one last: each ends, is tested and closed in the order of its epochs
    outputs = [RunOutput(shorter_run(args, epochs, name), hparams, on_finish=on_horizon)
               for epochs, name in sorted(horizons.items())]
    outputs.append(RunOutput(args, hparams, carrier=True))
    saver = checkpoint.BackgroundSaver()
    saved = state["epoch"]  # epochs whose last.pth is written (or queued): what a Ctrl-C keeps
    interrupted = failed = metrics = None
    tester, active = trainer.tester(), []
    try:
        for out in outputs:
            out.open(state, outputs[-1].paths.best)
            active.append(out)
        for epoch in range(state["epoch"], args.epochs):
            if patience_ran_out(state, args.patience):  # checked first: a resumed run that had stopped stays stopped
                break
            stats, is_best, seconds = trainer.epoch(epoch)
            best = trainer.weights() if is_best else None
            last = (trainer.weights(), trainer.resume_state())
            stopping = patience_ran_out(state, args.patience)
            ending = [out for out in active if out.epochs == state["epoch"] or stopping]
            for out in active:
                out.log_epoch(epoch, stats)  # flushed before this epoch's checkpoints are written
                out.save(saver, split.classes, state["epoch"], stats["val_acc"], best, last, ends=out in ending)
            saved = state["epoch"]
            print(epoch_line(stats, args.epochs, seconds, is_best))
            if on_epoch is not None:
                on_epoch(stats)
            if stopping:
                print(f"early stop after {state['epoch']} of {args.epochs} epochs: no better validation accuracy "
                      f"since epoch {state['best_epoch'] + 1} (--patience {args.patience})")
            for out in ending:
                metrics = out.finish(saver, tester, state)
                active.remove(out)
        for out in list(active):  # a resumed run that had finished its epochs, or had stopped early
            metrics = out.finish(saver, tester, state)
            active.remove(out)
    except KeyboardInterrupt as e:
        interrupted = e
    except OSError as e:
        failed = e
    finally:
        try:
            saver.close()  # a Ctrl-C still leaves the last finished epoch's checkpoints on disk
        except OSError as e:  # a queued write that failed: the disk filled
            failed = failed or e
        finally:
            if failed is not None and not outputs[-1].paths.last.exists():
                saved = 0  # its first last.pth was the write that failed
            for out in outputs:
                out.discard() if saved == 0 else out.close()  # nothing finished: no empty run folder is left
    if interrupted is not None:
        raise Interrupted(interruption(args, state, saved), resume=again if saved else None) from interrupted
    if failed is not None:
        raise write_failure(failed, args, saved, again) from None
    return metrics


def write_failure(error, args, saved, again):
    """A write that failed mid-run (a full disk, a folder made read-only) as one sentence: what failed, and what is
    kept (every file is written whole or not at all); an error that is not a failed write is raised as it is."""
    failed = writing_failed(error)
    if failed is None:
        raise error
    paths = run_paths(args.run_name, args.ckpt_dir, args.logdir)
    kept = (f"run {args.run_name} keeps the epochs written whole before it in {paths.ckpt_dir}; resume it with: "
            f"{again}" if saved else f"run {args.run_name} saved nothing and its folders were removed")
    return UserError(f"{failed}; {kept}")


def interruption(args, state, saved):
    """What a Ctrl-C during run `args.run_name` kept, and the command that goes on from there."""
    where = f"run {args.run_name} was interrupted in epoch {state['epoch'] + 1} of {args.epochs}"
    if saved == args.epochs or patience_ran_out(state, args.patience):
        where = f"run {args.run_name} was interrupted after its last epoch, before its test evaluation finished"
    if saved == 0:
        return f"{where} before any epoch finished: nothing was saved and its folders were removed"
    best = f", best.pth from epoch {state['best_epoch'] + 1}" if state["best_epoch"] >= 0 else ""
    epochs = "its first epoch is" if saved == 1 else f"its first {saved} epochs are"
    paths = run_paths(args.run_name, args.ckpt_dir, args.logdir)
    return f"{where}; {epochs} saved in {paths.ckpt_dir} (last.pth{best}) and logged in {paths.logdir}"


def epoch_line(stats, epochs, seconds, is_best):
    return (f"epoch {stats['epoch'] + 1}/{epochs}  train loss {stats['train_loss']:.4f} acc {stats['train_acc']:.4f}  "
            f"val loss {stats['val_loss']:.4f} acc {stats['val_acc']:.4f} mean-class {stats['val_mean_class_acc']:.4f}"
            f"  lr {stats['lr_base']:.0e}/{stats['lr_fc']:.0e}  {seconds:.0f}s" + ("  *best" if is_best else ""))
