"""Where a step's time goes: a Markdown table of its kernels from ``torch.profiler``.

On CUDA the rows are the device kernels, copies and fills by self device time; on the CPU
(no device activity) the ATen operators by self host time. Used by
:mod:`experiments.profile_step` (training steps) and ``python -m experiments.bench --kernels``
(one layer's forward and backward).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile


def kernel_table(
    step: Callable[[], None], rows: int, steps: int = 3, device: torch.device | None = None
) -> str:
    """Markdown table of the ``rows`` costliest kernels over ``steps`` calls of ``step``.

    Args:
        step: One step (e.g. forward and backward); warm it up before (plans, compilation).
        rows: Rows of the table (the total row comes after them).
        steps: Profiled calls; the table gives milliseconds and calls per call.
        device: Where ``step`` runs; None means CUDA (the device is synchronised before the
            profile ends). On the CPU the table ranks operators by self host time.

    Returns:
        ``| kernel | ms/step | calls/step | share |`` rows and ``| total ... |``.
    """
    on_cuda = device is None or device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        if on_cuda:
            torch.cuda.synchronize(device)
    return averages_table(prof.key_averages(), rows, steps, on_cuda)


def device_work(averages: Sequence[Any]) -> list[Any]:
    """The kernels, copies and fills among ``key_averages()`` rows, without annotations.

    ``record_function`` ranges (``## Call CompiledFxGraph ...``, ``Optimizer.step#...``) also
    get device time: the span of the kernels launched inside them. Counting them with the
    kernels would count that time twice or more, so rows marked as user annotations are left
    out (older profilers without the mark: rows whose key starts with ``## `` or holds ``#``).
    """
    events = [e for e in averages if e.device_type.name == "CUDA"]
    if not events:
        events = [e for e in averages if e.self_device_time_total > 0]
    return [e for e in events if not is_annotation(e)]


def is_annotation(event: Any) -> bool:
    """Whether a profiler row is a ``record_function`` range rather than device work."""
    flag = getattr(event, "is_user_annotation", None)
    if flag is not None:
        return bool(flag)
    return event.key.startswith("## ") or "#" in event.key


def averages_table(averages: Sequence[Any], rows: int, steps: int, on_cuda: bool) -> str:
    """The Markdown table of :func:`kernel_table` from ``key_averages()`` rows.

    Args:
        averages: ``profile.key_averages()`` of ``steps`` steps.
        rows: Rows of the table (the total row comes after them).
        steps: Steps the profile covers; the table gives milliseconds and calls per step.
        on_cuda: Device work by self device time (:func:`device_work`), else the ATen
            operators by self host time.
    """
    if on_cuda:
        events = device_work(averages)
        field, what = "self_device_time_total", "total device time"
    else:
        events = [e for e in averages if e.key.startswith("aten::")]
        field, what = "self_cpu_time_total", "total host time in ATen operators"

    def cost(event: object) -> float:
        return float(getattr(event, field))

    events.sort(key=cost, reverse=True)
    total = sum(cost(e) for e in events) or 1.0
    lines = ["| kernel | ms/step | calls/step | share |", "|---|---|---|---|"]
    for event in events[:rows]:
        name = event.key.replace("|", "/")[:90]
        lines.append(
            f"| `{name}` | {cost(event) / 1e3 / steps:.3f} | {event.count / steps:.0f} | "
            f"{100 * cost(event) / total:.1f}% |"
        )
    lines.append(f"| {what} | {total / 1e3 / steps:.3f} | | |")
    return "\n".join(lines)
