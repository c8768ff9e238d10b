"""Resumable training: step-aligned data order, atomic checkpoints, finding the run to resume.

Exact resumption needs three things to be a function of the optimizer step only:

1. The data order. The data module's training loader (:func:`step_aligned_loader`) samples
   with :class:`StepAlignedSampler`, which draws epoch ``e``'s permutation from
   ``(seed, e)`` and, when an iterator is created, reads the trainer's ``global_step`` to know
   how many batches were already trained: with ``P`` batches per epoch and ``t`` batches done,
   it starts at epoch ``t // P``, skipping the first ``(t mod P) * batch_size`` indices. Each
   rank keeps indices ``rank, rank + W, ...`` of the permutation (padded like
   ``DistributedSampler``), so no ``DistributedSampler`` is injected.
2. The model's randomness: :class:`experiments.callbacks.StepSeeder`.
3. The state: weights, optimizer, schedule, loops and callbacks in ``last.ckpt``, written
   atomically (the :class:`AtomicCheckpointIO` plugin) so a SIGKILL never leaves a truncated
   file.

Which run is resumed: :func:`find_resume_dir`; only runs recorded as running, incomplete or
interrupted, with the same config, are continued, so a finished record is never rewritten.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from torch.utils.data import DataLoader, Sampler

from experiments.config import ConfigError
from experiments.portable import portable_config
from experiments.protocol import EXECUTION_KEYS

LAST_CKPT = Path("checkpoints") / "last.ckpt"


class StepAlignedSampler(Sampler[int]):
    """Per-epoch seeded shuffle that restarts where the trainer's step says.

    Args:
        num_samples: Dataset size n.
        batch_size: Samples per batch on each rank.
        seed: Base seed; epoch ``e`` uses ``torch.Generator().manual_seed(seed * 1_000_003 + e)``.
        progress: Returns ``(batches_trained, rank, world_size)``; None means ``(0, 0, 1)``.
        batches_per_epoch_limit: Lightning's ``limit_train_batches`` as an int, if set.
    """

    def __init__(
        self,
        num_samples: int,
        *,
        batch_size: int,
        seed: int,
        progress: Callable[[], tuple[int, int, int]] | None = None,
        batches_per_epoch_limit: int | None = None,
    ) -> None:
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.progress = progress
        self.limit = batches_per_epoch_limit
        self.epoch = 0

    def _world(self) -> tuple[int, int, int]:
        return self.progress() if self.progress is not None else (0, 0, 1)

    def per_rank(self, world_size: int) -> int:
        """Samples per rank (the permutation is padded to a multiple of the world size)."""
        return math.ceil(self.num_samples / world_size)

    def batches_per_epoch(self, world_size: int) -> int:
        """Training batches per epoch on each rank (with ``limit_train_batches``)."""
        full = math.ceil(self.per_rank(world_size) / self.batch_size)
        return min(full, self.limit) if self.limit is not None else full

    def set_epoch(self, epoch: int) -> None:
        """Kept for Lightning's ``_set_sampler_epoch``; the epoch comes from the step."""
        self.epoch = epoch

    def indices(self, epoch: int, rank: int, world_size: int) -> list[int]:
        """This rank's indices of epoch ``epoch`` (before any skipping)."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.num_samples, generator=generator)  # (n,)
        total = self.per_rank(world_size) * world_size
        if total > self.num_samples:
            perm = torch.cat([perm, perm[: total - self.num_samples]])  # (total,)
        return perm[rank::world_size].tolist()

    def __iter__(self) -> Iterator[int]:
        done, rank, world_size = self._world()
        per_epoch = self.batches_per_epoch(world_size)
        epoch, in_epoch = divmod(done, per_epoch) if per_epoch > 0 else (0, 0)
        self.epoch = epoch
        return iter(self.indices(epoch, rank, world_size)[in_epoch * self.batch_size :])

    def __len__(self) -> int:
        return self.per_rank(self._world()[2])


def trainer_progress(trainer: pl.Trainer) -> Callable[[], tuple[int, int, int]]:
    """``progress`` callback for :class:`StepAlignedSampler` reading a live trainer."""

    def progress() -> tuple[int, int, int]:
        accumulate = max(1, int(trainer.accumulate_grad_batches))
        return trainer.global_step * accumulate, trainer.global_rank, trainer.world_size

    return progress


class StepAlignedLoader(DataLoader):
    """A DataLoader whose position is derived from the trainer's step (see the sampler).

    It is "stateful" for Lightning (so no resumability warning is raised), but its state is
    empty: the sampler recomputes epoch and offset from ``global_step`` when iterated.
    """

    def state_dict(self) -> dict[str, Any]:
        """Nothing to save: the order is a function of ``(seed, global_step)``."""
        return {"step_aligned": True}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore."""


def step_aligned_loader(loader: DataLoader, trainer: pl.Trainer, seed: int) -> DataLoader:
    """Rebuild a training DataLoader around a :class:`StepAlignedSampler`.

    The dataset, batch size, collate function and workers are those of ``loader``.
    """
    limit = trainer.limit_train_batches
    sampler = StepAlignedSampler(
        len(loader.dataset),  # type: ignore[arg-type]
        batch_size=int(loader.batch_size or 1),
        seed=seed,
        progress=trainer_progress(trainer),
        batches_per_epoch_limit=limit if isinstance(limit, int) else None,
    )
    return StepAlignedLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        collate_fn=loader.collate_fn,
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
        persistent_workers=loader.num_workers > 0,
    )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint plugin that writes ``<file>.tmp`` then renames it over ``<file>``.

    Every checkpoint the trainer writes (the callbacks' and ``trainer.save_checkpoint``) goes
    through it, so a SIGKILL never leaves a truncated ``last.ckpt``.
    """

    def save_checkpoint(
        self,
        checkpoint: dict[str, Any],
        path: str | os.PathLike[str],
        storage_options: Any | None = None,
    ) -> None:
        """Save to a temporary file in the same folder, then ``os.replace``."""
        tmp = f"{os.fspath(path)}.tmp"
        super().save_checkpoint(checkpoint, tmp, storage_options)
        os.replace(tmp, path)


class ResumeError(ConfigError):
    """A resume request that cannot be honoured; the message is one sentence."""


RESUMABLE = ("running", "incomplete", "interrupted")
"""Statuses that ``resume`` continues (``running``: killed before it could record more)."""

IGNORED_KEYS = ("resume", "paths.run_dir", *EXECUTION_KEYS)
"""Config keys that may change between segments of one run.

Besides the resume request and the run folder, the execution keys: they say how fast a
segment runs, not which steps it takes. The training order is a function of
``(seed, global_step)`` (:class:`StepAlignedSampler`), whatever the number of loader workers,
and a compiled step computes the same function as the eager one.
"""


def comparable(config: dict[str, Any] | None) -> dict[str, Any]:
    """``config`` without :data:`IGNORED_KEYS` (a deep copy), its ``paths`` made portable.

    Records keep their paths relative to the repository (:mod:`experiments.portable`); an
    older record with absolute paths compares equal to the same folders given relatively.
    """
    out = copy.deepcopy(portable_config(config)) if isinstance(config, dict) else {}
    for key in IGNORED_KEYS:
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
            if not node and parents:
                _get_parent(out, parents).pop(parents[-1], None)
    return out


def _get_parent(tree: dict[str, Any], parents: list[str]) -> dict[str, Any]:
    node: Any = tree
    for part in parents[:-1]:
        node = node[part]
    return node


def config_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config trees."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new), key=str)
        return [
            d for k in keys for d in config_differences(old.get(k), new.get(k), f"{prefix}{k}.")
        ]
    return [] if old == new else [prefix.rstrip(".") or "<root>"]


def _read_record(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def check_resumable(run_dir: Path, config: dict[str, Any] | None) -> None:
    """Refuse, in one sentence, to resume a finished run or one with another config.

    Raises:
        ResumeError: the run is ``completed`` or ``failed``, or its config differs.
    """
    record = _read_record(run_dir)
    status = record.get("status")
    if status not in RESUMABLE:
        raise ResumeError(
            f"resume = '{run_dir}' is a {status or 'unrecorded'} run and is not resumable "
            f"(only {', '.join(RESUMABLE)} runs are); drop resume to start a new run"
        )
    if config is not None:
        diff = config_differences(comparable(record.get("config")), comparable(config))
        if diff:
            raise ResumeError(
                f"resume = '{run_dir}' was run with a different config ({', '.join(diff[:5])}"
                f"{', ...' if len(diff) > 5 else ''} differ); rerun with its settings or drop "
                "resume to start a new run"
            )


def find_resume_dir(
    resume: str,
    output_dir: str | os.PathLike[str],
    name: str,
    config: dict[str, Any] | None = None,
    exclude: str | os.PathLike[str] | None = None,
) -> Path | None:
    """The run directory to resume.

    ``auto`` takes the latest (by ``last.ckpt`` time) run of ``name`` whose record is
    resumable (:data:`RESUMABLE`); completed and failed runs are never candidates. The run
    found, or an explicit directory, must have been run with the same config (up to
    :data:`IGNORED_KEYS`).

    Args:
        resume: ``auto`` or a run directory (or the ``last.ckpt`` file itself).
        output_dir: Root of run directories.
        name: Experiment name (``<output_dir>/<name>/<run>``).
        config: The resolved config of this command (None skips the comparison).
        exclude: The current (fresh) run directory, never a candidate.

    Returns:
        The run directory, or None for ``auto`` when there is nothing to resume.

    Raises:
        ResumeError: a directory without ``checkpoints/last.ckpt``, a finished run, or a
            different config.
    """
    if resume == "auto":
        skip = Path(exclude).resolve() if exclude is not None else None
        found: list[tuple[float, Path]] = []
        for ckpt in Path(output_dir, name).glob(f"*/{LAST_CKPT}"):
            run_dir = ckpt.parent.parent
            if skip is not None and run_dir.resolve() == skip:
                continue
            if _read_record(run_dir).get("status") in RESUMABLE:
                found.append((ckpt.stat().st_mtime, run_dir))
        if not found:
            return None
        latest = max(found)[1]
        check_resumable(latest, config)
        return latest
    path = Path(resume)
    if path.is_file() and path.name.endswith(".ckpt"):
        path = path.parent.parent
    if not (path / LAST_CKPT).is_file():
        raise ResumeError(
            f"resume = '{resume}' has no {LAST_CKPT}; pass a run directory of an earlier run "
            "(it holds checkpoints/last.ckpt) or resume=auto"
        )
    check_resumable(path, config)
    return path


CSV_LOG = Path("csv") / "metrics.csv"


def read_csv_history(run_dir: Path) -> list[dict[str, str]]:
    """The rows of ``run_dir/csv/metrics.csv`` written by earlier segments (empty if none).

    Lightning's CSV logger starts its file afresh; :func:`merge_csv_history` puts these rows
    back in front of the new segment's rows.
    """
    path = run_dir / CSV_LOG
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def merge_csv_history(run_dir: Path, earlier: list[dict[str, str]]) -> None:
    """Rewrite ``csv/metrics.csv`` as the earlier rows followed by this segment's rows.

    Rows of the new segment at a step already logged by an earlier one replace nothing: both
    are kept, in order, with the union of the columns.
    """
    if not earlier:
        return
    path = run_dir / CSV_LOG
    current = read_csv_history(run_dir)
    if current[: len(earlier)] == earlier:
        return  # already merged
    rows = earlier + current
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    tmp = path.with_suffix(".csv.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=sorted(columns))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
