"""The running training accuracy against torchmetrics' validating micro accuracy."""

from __future__ import annotations

import torch
from torchmetrics.classification import MulticlassAccuracy

from experiments.metrics import RunningAccuracy


def test_running_accuracy_equals_micro_multiclass_accuracy_bit_for_bit() -> None:
    gen = torch.Generator().manual_seed(0)
    for classes in (2, 3, 10):
        ours, reference = RunningAccuracy(), MulticlassAccuracy(classes, average="micro")
        for n in (1, 5, 8, 13, 512, 7):
            preds = torch.randint(0, classes, (n,), generator=gen)
            labels = torch.randint(0, classes, (n,), generator=gen)
            ours.update(preds, labels)
            reference.update(preds, labels)
            got, want = ours.compute(), reference.compute()
            assert got.dtype == want.dtype == torch.float32 and torch.equal(got, want)
        ours.reset()
        ours.update(torch.tensor([1, 0, 1]), torch.tensor([1, 1, 1]))
        assert torch.equal(ours.compute(), torch.tensor(2 / 3))


def test_running_accuracy_keeps_no_state_in_checkpoints() -> None:
    metric = RunningAccuracy()
    metric.update(torch.tensor([1]), torch.tensor([1]))
    assert metric.state_dict() == {}
