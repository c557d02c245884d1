"""TensorBoard logging for one run: per-epoch scalars under the published tag names, and HParams.

Tags `Loss/train`, `Loss/val`, `Accuracy/val`, `LR/base`, `LR/fc` are the published ones, so old
and new logs overlay in one TensorBoard; `Accuracy/train` is new. The step is the epoch index, from 0.
"""
import json

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

# metrics dict key -> TensorBoard tag
EPOCH_TAGS = {"train_loss": "Loss/train", "train_acc": "Accuracy/train", "val_loss": "Loss/val",
              "val_acc": "Accuracy/val", "lr_base": "LR/base", "lr_fc": "LR/fc"}
# final metrics shown in the HParams dashboard
HPARAM_METRICS = {"best_val_acc": "hparam/best_val_acc", "test_acc": "hparam/test_acc",
                  "test_mean_class_acc": "hparam/test_mean_class_acc",
                  "epochs_run": "hparam/epochs_run"}  # fewer than the recipe's epochs after an early stop


class RunLogger:
    def __init__(self, logdir, resume_epoch=0):
        # On resume, purge_step makes TensorBoard drop anything logged at or after the resumed epoch
        # by the interrupted process, so no step appears twice.
        self.writer = SummaryWriter(str(logdir), purge_step=resume_epoch or None)

    def log_epoch(self, epoch, stats):
        for key, tag in EPOCH_TAGS.items():
            self.writer.add_scalar(tag, stats[key], epoch)
        self.writer.flush()  # on disk before the epoch's checkpoint is written

    def log_hparams(self, hparams, metrics, step):
        """One HParams session for the run: its settings (plain values) and final metrics."""
        plain = {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v) for k, v in hparams.items()}
        writer = self.writer._get_file_writer()
        for summary in hparams_summary(plain, {tag: metrics[key] for key, tag in HPARAM_METRICS.items()}):
            writer.add_summary(summary)
        for key, tag in HPARAM_METRICS.items():
            self.writer.add_scalar(tag, metrics[key], step)
        self.writer.flush()

    def close(self):
        self.writer.close()
