"""A/B of a code switch inside one compiled training step: windows of the two sides interleaved.

Two runs of the step benchmark, one with a switch and one without, differ by more than the
switch: each compiles its own graphs, starts on its own clocks and allocator state, and the same
row moves by 1-3 ms between runs on an H200 (``results/train_step.md``). Here one process
compiles the step once per side (Dynamo guards on the module constant each switch sets, so
switching it selects the other compiled graph) and times windows of the two sides in turn,
``off, on, off, on, ...``, so slow drifts fall on both. Each side's figure is the median of its
windows; the peak memory is the allocator's peak over the timed windows, with both sides'
graphs alive (under CUDA graphs the replays allocate from pools reserved while recording, so
that peak reads ~0 and the step benchmark reports none).

Switches (:data:`AB_SWITCHES`) act only while ``torch.compile`` traces, so an A/B needs compiled
steps; that switching a side on made Dynamo compile a new graph is checked (:class:`ABError`
otherwise: the switch does not reach the mixer's compiled code and the two sides would time the
same graph).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from experiments.bench_specs import set_logit_unroll, use_hashed_dropout
from experiments.timing import sync

LOGIT_UNROLL_WIDTH = 8
"""``UNROLLED_LOGITS_MAX_WIDTH`` of the ``logit-unroll`` switch's on side."""


@dataclass(frozen=True)
class Switch:
    """A module constant the A/B sets to one value per side and gives back as it found it."""

    read: Callable[[], object]
    write: Callable[[object], None]
    off: object
    on: object

    def is_on(self) -> bool:
        """Whether the constant holds anything but the off side's value."""
        return self.read() != self.off

    def set(self, on: bool) -> None:
        """Put the constant at the value of side ``on``."""
        self.write(self.on if on else self.off)


def _hashed_dropout() -> object:
    from spectrans.layers import dropout

    return dropout.HASHED_MASKS_WHEN_COMPILED


def _logit_unroll() -> object:
    from spectrans.layers.attention import favor_contract

    return favor_contract.UNROLLED_LOGITS_MAX_WIDTH


AB_SWITCHES: dict[str, Switch] = {
    "hashed-dropout": Switch(_hashed_dropout, use_hashed_dropout, False, True),
    "logit-unroll": Switch(_logit_unroll, set_logit_unroll, 0, LOGIT_UNROLL_WIDTH),
}
"""``hashed-dropout``: dropout masks of compiled steps from an integer hash
(:mod:`spectrans.layers.dropout`); ``logit-unroll``: FAVOR+ feature logits of heads up to
:data:`LOGIT_UNROLL_WIDTH` wide as broadcast products
(:mod:`spectrans.layers.attention.favor_contract`)."""


class ABError(RuntimeError):
    """Switching a side on did not compile a new graph."""


@contextmanager
def restored(name: str) -> Iterator[Callable[[bool], None]]:
    """Yield the side setter of switch ``name``; the constant's own value is restored on exit.

    The value, not the side: a constant found at another on-value (``--logit-unroll 16``) is
    given back as 16, not as the switch's on side.
    """
    switch = AB_SWITCHES[name]
    before = switch.read()
    try:
        yield switch.set
    finally:
        switch.write(before)


def compiled_graphs() -> int:
    """Graphs Dynamo has compiled in this process so far."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def time_ab(
    step: Callable[[], None],
    device: torch.device,
    name: str,
    warmup: int,
    steps: int,
    windows: int,
) -> tuple[dict[bool, list[float]], int | None]:
    """Milliseconds per step of each window of each side (``False``: off), and the peak bytes.

    The step must be compiled: it is warmed up with the switch off, then on (compiling the on
    side's graph, checked by :func:`compiled_graphs`), then ``windows`` rounds of one window
    of ``steps`` steps per side, off first.
    """
    if windows < 1 or steps < 1:
        raise ValueError(f"windows and steps must be >= 1, got {windows} and {steps}")
    figures: dict[bool, list[float]] = {False: [], True: []}
    with restored(name) as set_switch:
        for on in (False, True):
            set_switch(on)
            before = compiled_graphs()
            for _ in range(warmup):
                step()
            if on and warmup > 0 and compiled_graphs() == before:
                raise ABError(
                    f"switching {name} on compiled no new graph: it does not reach this step"
                )
        sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(windows):
            for on in (False, True):
                set_switch(on)
                sync(device)
                start = time.perf_counter()
                for _ in range(steps):
                    step()
                sync(device)
                figures[on].append((time.perf_counter() - start) * 1000.0 / steps)
    peak = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    return figures, peak
