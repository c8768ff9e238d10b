"""experiments.kernel_table: the device's work apart from record_function ranges."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch

from experiments.kernel_table import averages_table, device_work, is_annotation, kernel_table


class _Device(Enum):
    CPU = 0
    CUDA = 1


@dataclass
class _Row:
    """The fields of a ``key_averages()`` row that the tables read."""

    key: str
    self_device_time_total: float
    device_type: _Device = _Device.CUDA
    count: int = 1
    is_user_annotation: bool | None = False
    self_cpu_time_total: float = 0.0


def test_annotations_are_not_device_work() -> None:
    """A compiled graph's range spans its kernels: counting both would double the time."""
    rows = [
        _Row("## Call CompiledFxGraph abc ##", 3000.0, is_user_annotation=True),
        _Row("Optimizer.step#AdamW.step", 5000.0, is_user_annotation=True),
        _Row("triton_poi_fused_mul_0", 2000.0),
        _Row("Memcpy HtoD (Pinned -> Device)", 1000.0),
        _Row("aten::mul", 0.0, device_type=_Device.CPU),
    ]
    assert [r.key for r in device_work(rows)] == [
        "triton_poi_fused_mul_0",
        "Memcpy HtoD (Pinned -> Device)",
    ]
    table = averages_table(rows, rows=5, steps=2, on_cuda=True)
    assert "| total device time | 1.500 | | |" in table  # (2000 + 1000) us over 2 steps
    assert "CompiledFxGraph" not in table and "Optimizer" not in table


def test_without_the_mark_ranges_are_told_by_their_names() -> None:
    assert is_annotation(_Row("## Call CompiledFxGraph x ##", 1.0, is_user_annotation=None))
    assert is_annotation(_Row("Optimizer.step#AdamW.step", 1.0, is_user_annotation=None))
    assert not is_annotation(_Row("void at::native::reduce_kernel<128>", 1.0, None))


def test_on_the_cpu_the_table_ranks_operators_by_host_time() -> None:
    x = torch.randn(64, 64)
    table = kernel_table(lambda: (x @ x).relu(), rows=3, steps=2, device=torch.device("cpu"))
    assert "aten::mm" in table and "total host time in ATen operators" in table
