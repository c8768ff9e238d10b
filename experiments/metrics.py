"""The training accuracy as two running counts: two device operations per step.

``acc = correct / seen`` over the batches since the last reset, with
``correct = sum_b [pred_b = label_b]`` and ``seen`` the number of labels: the micro-averaged
multiclass accuracy of ``torchmetrics`` (``tp / (tp + fn)`` summed over classes, which is the
same ratio), computed with the same float32 division, and summed over processes under DDP
like it. Unlike that metric it validates nothing per step (its check of the label values
calls ``torch.unique``, which waits for the device) and runs one comparison, one sum and two
in-place additions instead of about fifteen operations.
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
