"""The loss a run trains with and the one its validation and test report: cross-entropy (published) or the cosine
loss of Barz & Denzler, "Deep learning on small datasets using a cosine loss" (WACV 2020).

    criterion = build_loss("cosine", label_smoothing=0.1)    # training
    reported = build_loss("cosine")                           # validation and test: the same loss, unsmoothed
"""
from torch import nn
from torch.nn import functional as F


class CosineLoss(nn.Module):
    """1 - the cosine similarity of the output and the one-hot target (smoothed by `label_smoothing`; MixUp's and
    CutMix's soft targets as they are), averaged over the batch. Its scale-free outputs are read like logits: the
    class with the largest output wins, as the class embedding most similar to it."""

    def __init__(self, label_smoothing=0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, output, target):
        output = output.float()  # a cosine in bf16 loses the small differences it is made of
        if target.dim() == 1:
            target = F.one_hot(target, output.shape[1]).float()
        if self.label_smoothing:
            target = target * (1 - self.label_smoothing) + self.label_smoothing / output.shape[1]
        return (1 - F.cosine_similarity(output, target.float(), dim=1)).mean()


def build_loss(name="ce", label_smoothing=0.0):
    """`--loss` as a criterion(output, target), target class indices or soft targets."""
    if name == "ce":
        return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    if name == "cosine":
        return CosineLoss(label_smoothing)
    raise ValueError(f"unknown loss {name!r}")


def reported_loss(run):
    """The loss validation and test report for a run (its settings): its training loss without smoothing."""
    return build_loss(run.loss)


