"""A ``torch.profiler`` record of a window of training steps inside the real training loop.

``callbacks.step_profile=START:STEPS`` profiles the ``STEPS`` training steps that begin at
global step ``START`` (later if a ``compile=auto`` trial is still timing then: the window opens
at the first step after it), with the host and device activities, and writes
``<run dir>/step-profile.txt``:

- ``wall``: milliseconds per step between two device synchronisations around the window;
- ``device busy``: the self device time of every kernel, copy and fill in the window, per step;
- ``device idle``: ``wall - device busy``, the share of the step the device waited for the host
  (data, Python, launches) when the step is host-bound;
- the host synchronisations inside the window (CUDA only: ``torch.cuda.set_sync_debug_mode``
  in ``warn`` mode while it is open), counted by the Python lines that caused them: every one
  stops the host until the device has drained its queue, so the device idles while the host
  then prepares the next work;
- two kernel tables: the device's kernels, copies and fills by self device time
  (``record_function`` ranges left out, :func:`experiments.kernel_table.device_work`), and
  the operators by self host time.

A validation that falls inside the window is included (the report says so): pick ``START``
between two validations.

The step benchmark (``python -m experiments.bench_step``) times a bare training step; this says
what the run's loop adds around it (Lightning, callbacks, data, logging).
"""

from __future__ import annotations

import datetime as dt
import re
import traceback
import warnings
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

import lightning.pytorch as pl
import torch

from experiments.callbacks import synced_clock
from experiments.kernel_table import averages_table, device_work
from experiments.portable import REPO_ROOT

ROW_LIMIT = 25
"""Rows of each kernel table."""
REPORT_NAME = "step-profile.txt"
"""The report's file name in the run folder."""
SYNC_WARNING = "called a synchronizing CUDA operation"
"""The text of the warning torch gives in ``warn`` sync-debug mode."""
SYNC_FRAMES = 4
"""Python frames (outside torch) that name a synchronisation's origin."""
SYNC_ROWS = 10
"""Origins listed in the report."""


class SyncRecorder:
    """Count host synchronisations by their Python origin while open (a context manager).

    Inside, ``torch.cuda.set_sync_debug_mode("warn")`` (CUDA only) makes every synchronising
    operation warn; the recorder catches those warnings as they are raised, keeps the last
    :data:`SYNC_FRAMES` frames of the stack outside ``torch`` (the code that asked: ours or
    Lightning's), and lets every other warning through. On exit the previous debug mode and
    warning hook come back.

    Args:
        cuda: Whether to switch the debug mode (False: records only what is warned anyway).
    """

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.origins: Counter[str] = Counter()
        self._filters: Any = None
        self._show: Any = None
        self._mode = 0

    def __enter__(self) -> SyncRecorder:
        self._show, self._filters = warnings.showwarning, warnings.filters[:]
        warnings.filterwarnings("always", message=f".*{SYNC_WARNING}")
        warnings.showwarning = self._on_warning
        if self.cuda:
            self._mode = torch.cuda.get_sync_debug_mode()
            torch.cuda.set_sync_debug_mode("warn")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.cuda:
            torch.cuda.set_sync_debug_mode(self._mode)
        warnings.showwarning = self._show
        warnings.filters[:] = self._filters

    def _on_warning(
        self, message: Any, category: Any, filename: str, lineno: int, *rest: Any
    ) -> None:
        if SYNC_WARNING not in str(message):
            self._show(message, category, filename, lineno, *rest)
            return
        self.origins[origin(traceback.extract_stack()[:-1])] += 1


def origin(stack: list[traceback.FrameSummary]) -> str:
    """The innermost :data:`SYNC_FRAMES` frames outside torch and the warning machinery.

    Frames are ``path:line (function)``, innermost last, joined by `` <- `` innermost first;
    paths are cut to what follows the last ``site-packages/`` or the repository root.
    """
    skip = ("/torch/", "/warnings.py", "/step_profile.py")
    frames = [f for f in stack if not any(part in f.filename for part in skip)]
    root = f"{REPO_ROOT}/"
    shown = []
    for frame in reversed(frames[-SYNC_FRAMES:]):
        name = frame.filename.split("site-packages/")[-1].replace(root, "")
        shown.append(f"{name}:{frame.lineno} ({frame.name})")
    return " <- ".join(shown) or "(no frame outside torch)"


def parse_window(text: str) -> tuple[int, int]:
    """``(start, steps)`` of ``START:STEPS``; ValueError with one sentence otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", str(text))
    if match is None or int(match.group(2)) < 1:
        raise ValueError(
            f"step_profile '{text}' is not START:STEPS with STEPS >= 1 (e.g. 1500:20: the 20 "
            "training steps from global step 1500)"
        )
    return int(match.group(1)), int(match.group(2))


class StepProfiler(pl.Callback):
    """Profile ``steps`` training steps from global step ``start``; report in ``path``.

    Args:
        start: The global step at which the window opens (or the first step after a
            ``compile=auto`` trial that is still under way then).
        steps: Steps in the window.
        path: The report file.
    """

    def __init__(self, start: int, steps: int, path: Path) -> None:
        self.start, self.steps, self.path = start, steps, path
        self._profile: torch.profiler.profile | None = None
        self._first = 0
        self._count = 0
        self._validations = 0
        self._t0 = 0.0
        self._syncs: SyncRecorder | None = None
        self.written = False

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Open the window at its first step."""
        if self.written or self._profile is not None or trainer.global_step < self.start:
            return
        if getattr(pl_module, "chooser", None) is not None:
            return  # a compile trial switches modes: not the run's steady state
        activities = [torch.profiler.ProfilerActivity.CPU]
        if pl_module.device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        self._first, self._count, self._validations = trainer.global_step, 0, 0
        self._profile = torch.profiler.profile(activities=activities)
        self._profile.__enter__()  # the profiler's start-up (CUPTI) falls before the clock
        self._t0 = synced_clock(pl_module)
        self._syncs = SyncRecorder(cuda=pl_module.device.type == "cuda").__enter__()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Close the window after its last step."""
        if self._profile is None:
            return
        self._count += 1
        if self._count >= self.steps:
            self._finish(trainer, pl_module)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Note a validation that runs inside the window (the report says so)."""
        if self._profile is not None:
            self._validations += 1

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Report a window that training ended inside."""
        if self._profile is not None and self._count > 0:
            self._finish(trainer, pl_module)

    def _finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._syncs is not None:
            self._syncs.__exit__(None, None, None)  # before the clock's own synchronisation
        wall_s = synced_clock(pl_module) - self._t0
        profile, self._profile = self._profile, None
        assert profile is not None
        profile.__exit__(None, None, None)
        self.path.write_text(self.report(profile, wall_s, pl_module))
        self.written = True

    def sync_lines(self, steps: int) -> list[str]:
        """The report's lines on host synchronisations (none on the CPU)."""
        if self._syncs is None or not self._syncs.cuda:
            return []
        origins = self._syncs.origins
        lines = [
            "",
            f"host synchronisations: {sum(origins.values()) / steps:.2f} per step "
            f"({sum(origins.values())} in the window), by origin:",
        ]
        for where, count in origins.most_common(SYNC_ROWS):
            lines.append(f"  {count / steps:6.2f} per step: {where}")
        return lines

    def report(
        self, profile: torch.profiler.profile, wall_s: float, pl_module: pl.LightningModule
    ) -> str:
        """The text of ``step-profile.txt`` (module docstring)."""
        events = profile.key_averages()
        n = self._count
        wall_ms = 1e3 * wall_s / n
        on_device = pl_module.device.type == "cuda"
        work = device_work(events) if on_device else []
        busy_ms = sum(e.self_device_time_total for e in work) / 1e3 / n if on_device else None
        device = torch.cuda.get_device_name(pl_module.device) if on_device else "CPU"
        lines = [
            f"Training steps {self._first}-{self._first + n - 1} ({n} steps) profiled with "
            f"torch.profiler on {device}, torch {torch.__version__}, "
            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
            "",
            f"wall: {wall_ms:.3f} ms/step (device synchronised at both ends of the window; "
            "the profiler's own host work is included)",
        ]
        if self._validations:
            lines.append(
                f"{self._validations} validation(s) ran inside the window and are included: "
                "choose a window between two validations for the training step alone"
            )
        if busy_ms is not None:
            idle = max(0.0, wall_ms - busy_ms)
            lines += [
                f"device busy: {busy_ms:.3f} ms/step (self device time of every kernel, copy "
                "and fill)",
                f"device idle: {idle:.3f} ms/step ({100 * idle / wall_ms:.0f} % of the step: "
                "the device waits for the host)",
            ]
        lines += self.sync_lines(n)
        if busy_ms is not None:
            lines += [
                "",
                "## By self device time",
                "",
                averages_table(events, ROW_LIMIT, n, on_cuda=True),
            ]
        lines += [
            "",
            "## By self host time",
            "",
            events.table(sort_by="self_cpu_time_total", row_limit=ROW_LIMIT),
        ]
        return "\n".join(lines) + "\n"
