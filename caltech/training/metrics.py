"""Classification metrics from a confusion matrix, returned as dicts with stable keys.

Caltech-101's test split is very unbalanced (1 to 770 images per class: 4 classes hold 42% of
it), so overall accuracy mostly measures a few large classes; mean per-class accuracy, the
dataset's standard metric, weighs every class equally.
"""
import torch


class Meter:
    """Accumulates loss, predictions and top-5 hits over the batches of one pass.

    Sums stay on the batches' device, so updating never waits for the GPU; reading a value does.
    """

    def __init__(self, num_classes, device="cpu"):
        self.num_classes = num_classes
        self.confusion = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
        wide = torch.float32 if torch.device(device).type == "mps" else torch.float64  # MPS has no float64
        self.loss_sum = torch.zeros((), dtype=wide, device=device)
        self.top5 = torch.zeros((), dtype=torch.long, device=device)
        self.n = 0

    def update(self, loss, logits, labels):
        """`loss` is the batch mean (a tensor); logits and labels are on the meter's device."""
        n = labels.numel()
        self.n += n
        self.loss_sum += loss.detach().to(self.loss_sum.dtype) * n
        topk = logits.detach().topk(min(5, self.num_classes), dim=1).indices
        self.top5 += (topk == labels[:, None]).any(dim=1).sum()
        self.confusion += torch.bincount(labels * self.num_classes + topk[:, 0], minlength=self.confusion.numel())

    @property
    def loss(self):
        return float(self.loss_sum) / max(self.n, 1)

    @property
    def acc(self):
        return accuracy(self.matrix())

    def matrix(self):
        """The confusion matrix on the CPU: rows are true classes, columns predictions."""
        return self.confusion.view(self.num_classes, self.num_classes).cpu()

    def summary(self):
        confusion = self.matrix()
        return {"loss": self.loss, "acc": accuracy(confusion), "mean_class_acc": mean_class_accuracy(confusion),
                "top5": int(self.top5) / max(self.n, 1), "n": self.n}


def accuracy(confusion):
    return float(confusion.diag().sum()) / max(int(confusion.sum()), 1)


def mean_class_accuracy(confusion):
    """Mean over the classes that have at least one image of that class's recall."""
    per_class = confusion.sum(dim=1)
    present = per_class > 0
    if not present.any():
        return 0.0
    return float((confusion.diag()[present].double() / per_class[present]).mean())


def per_class_rows(confusion, classes):
    """[(class, images, correct, accuracy)] in label order."""
    totals, correct = confusion.sum(dim=1).tolist(), confusion.diag().tolist()
    return [(c, t, k, k / t if t else float("nan")) for c, t, k in zip(classes, totals, correct, strict=True)]
