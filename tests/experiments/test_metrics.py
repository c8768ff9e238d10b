"""The running accuracy and weighted mean against torchmetrics' validating metrics."""

from __future__ import annotations

import torch
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from experiments.metrics import RunningAccuracy, WeightedMean


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


def test_weighted_mean_equals_mean_metric_and_keeps_no_state() -> None:
    gen = torch.Generator().manual_seed(1)
    ours, reference = WeightedMean(), MeanMetric()
    for n in (32, 32, 7, 1):
        loss = torch.rand((), generator=gen) * 3  # one batch's mean loss
        ours.update(loss, weight=n)
        reference.update(loss, weight=n)
        torch.testing.assert_close(ours.compute(), reference.compute(), rtol=1e-6, atol=0)
    values = torch.tensor([1.0, 2.0, 4.0])
    ours.reset()
    ours.update(values, weight=2.0)  # every element weighted alike
    ours.update(torch.tensor(8.0))
    assert torch.equal(ours.compute(), torch.tensor((2 * 7.0 + 8.0) / 7.0))
    ours.update(torch.tensor(float("nan")), weight=3)
    assert ours.compute().isnan()  # a NaN loss shows, it is not dropped
    assert ours.state_dict() == {}
