"""Metrics against hand-computed values: unbalanced classes, an absent class, more than five classes."""
import pytest
import torch

from caltech.training.metrics import Meter, accuracy, mean_class_accuracy, per_class_rows

# rows = true class, columns = predicted; class 2 has no image in this split
CONFUSION = torch.tensor([[8, 2, 0, 0],
                          [1, 1, 0, 0],
                          [0, 0, 0, 0],
                          [0, 3, 0, 1]])


def test_accuracy_counts_images_and_mean_class_weighs_present_classes_equally():
    assert accuracy(CONFUSION) == pytest.approx(10 / 16)
    # (8/10 + 1/2 + 1/4) / 3: the absent class 2 is left out, not counted as 0
    assert mean_class_accuracy(CONFUSION) == pytest.approx((0.8 + 0.5 + 0.25) / 3)
    assert mean_class_accuracy(torch.zeros(3, 3, dtype=torch.long)) == 0.0


def test_per_class_table_rows():
    rows = per_class_rows(CONFUSION, ["a", "b", "c", "d"])
    assert [r[:3] for r in rows] == [("a", 10, 8), ("b", 2, 1), ("c", 0, 0), ("d", 4, 1)]
    assert [r[3] for r in rows][:2] == [0.8, 0.5] and rows[3][3] == 0.25
    assert rows[2][3] != rows[2][3]  # NaN: no image, no accuracy


def test_meter_top1_top5_mean_class_and_loss_from_logits():
    classes = 7
    # image i has label labels[i] ranked rank[i] (0 = top-1) among its logits
    labels = torch.tensor([0, 0, 0, 1, 2, 3, 6])
    ranks = torch.tensor([0, 1, 5, 0, 4, 6, 0])
    logits = torch.zeros(len(labels), classes)
    for i, (label, rank) in enumerate(zip(labels.tolist(), ranks.tolist(), strict=True)):
        others = [c for c in range(classes) if c != label]
        order = others[:rank] + [label] + others[rank:]  # descending scores
        logits[i, order] = torch.arange(classes, 0, -1, dtype=torch.float32)
    meter = Meter(classes)
    half = 4  # two batches: sums must accumulate
    meter.update(torch.tensor(2.0), logits[:half], labels[:half])
    meter.update(torch.tensor(5.0), logits[half:], labels[half:])
    stats = meter.summary()
    assert stats["n"] == 7
    assert stats["acc"] == pytest.approx(3 / 7)  # ranks 0 of images 0, 3, 6
    assert stats["top5"] == pytest.approx(5 / 7)  # ranks < 5: images 0, 1, 3, 4, 6
    # per class: 0 -> 1/3, 1 -> 1, 2 -> 0, 3 -> 0, 6 -> 1; classes 4 and 5 absent
    assert stats["mean_class_acc"] == pytest.approx((1 / 3 + 1 + 0 + 0 + 1) / 5)
    assert stats["loss"] == pytest.approx((2.0 * 4 + 5.0 * 3) / 7)  # weighted by batch size
    assert meter.matrix().sum() == 7 and meter.matrix()[0, 0] == 1
