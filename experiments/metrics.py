"""Accuracy and mean loss as running sums on the device, read only when computed.

``RunningAccuracy`` (training, validation and test accuracy):

``acc = correct / seen`` over the batches since the last reset, with
``correct = sum_b [pred_b = label_b]`` and ``seen`` the number of labels: the micro-averaged
multiclass accuracy of ``torchmetrics`` (``tp / (tp + fn)`` summed over classes, which is the
same ratio), computed with the same float32 division, and summed over processes under DDP
like it. Unlike that metric it validates nothing per step (its check of the label values
calls ``torch.unique``, which waits for the device) and runs one comparison, one sum and two
in-place additions instead of about fifteen operations.

``WeightedMean`` (validation and test loss): ``sum_i w_i x_i / sum_i w_i``, the weighted mean
of ``torchmetrics.MeanMetric`` in the same float32 arithmetic, without its per-update check
for NaN values (``isnan(...).any()`` read on the host: a wait for the device on every
batch). A NaN loss is not dropped, as ``MeanMetric`` would drop it with a warning: it makes
the mean NaN, which is what happened.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities.compute import _safe_divide


class RunningAccuracy(Metric):
    """Fraction of predictions equal to their labels, accumulated on the device.

    ``update(preds, labels)`` takes predicted class indices and labels of equal shape.
    """

    full_state_update = False
    correct: torch.Tensor
    seen: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state("correct", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("seen", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, labels: torch.Tensor) -> None:
        """Count the matches of one batch."""
        self.correct += (preds == labels).sum()  # ()
        self.seen += labels.numel()

    def compute(self) -> torch.Tensor:
        """``correct / seen`` as float32."""
        return _safe_divide(self.correct, self.seen)


class WeightedMean(Metric):
    """Weighted mean of scalars (or tensors, all elements sharing the weight), on the device.

    ``update(value, weight)`` adds ``weight * value.sum()`` and ``weight * value.numel()``.
    """

    full_state_update = False
    total: torch.Tensor
    weight: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("weight", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, value: torch.Tensor, weight: float | torch.Tensor = 1.0) -> None:
        """Add one batch's value with its weight (e.g. the batch's number of examples)."""
        value = torch.as_tensor(value, dtype=torch.float32, device=self.device)
        self.total += (value * weight).sum()  # ()
        self.weight += torch.as_tensor(weight, dtype=torch.float32) * value.numel()

    def compute(self) -> torch.Tensor:
        """``total / weight`` as float32."""
        return _safe_divide(self.total, self.weight)
