"""Resumable training: step-aligned data order, atomic checkpoints, finding the run to resume.

Exact resumption needs three things to be a function of the optimizer step only:

1. The data order. :class:`StepAlignedSampler` draws epoch ``e``'s permutation from
   ``(seed, e)`` and, when an iterator is created, reads the trainer's ``global_step`` to know
   how many batches were already trained: with ``P`` batches per epoch and ``t`` batches done,
   it starts at epoch ``t // P``, skipping the first ``(t mod P) * batch_size`` indices. Each
   rank keeps indices ``rank, rank + W, ...`` of the permutation (padded like
   ``DistributedSampler``), so no ``DistributedSampler`` is injected.
2. The model's randomness: :class:`experiments.callbacks.StepSeeder`.
3. The state: weights, optimizer, schedule, loops and callbacks in ``last.ckpt``, written
   atomically (:class:`AtomicModelCheckpoint`) so a SIGKILL never leaves a truncated file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, Sampler

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


def make_resumable(datamodule: pl.LightningDataModule, trainer: pl.Trainer, seed: int) -> None:
    """Make ``datamodule.train_dataloader()`` return a step-aligned loader."""
    original = datamodule.train_dataloader

    def train_dataloader() -> DataLoader:
        return step_aligned_loader(original(), trainer, seed)

    datamodule.train_dataloader = train_dataloader  # type: ignore[method-assign]


class AtomicModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that writes ``<file>.tmp`` then renames it over ``<file>``."""

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        save_atomic(trainer, filepath, self.save_weights_only)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(self)


def save_atomic(
    trainer: pl.Trainer, filepath: str | os.PathLike[str], weights_only: bool = False
) -> None:
    """``trainer.save_checkpoint`` to a temporary name, then ``os.replace`` on rank 0."""
    tmp = f"{os.fspath(filepath)}.tmp"
    trainer.save_checkpoint(tmp, weights_only)
    trainer.strategy.barrier("atomic_checkpoint")
    if trainer.is_global_zero and os.path.exists(tmp):
        os.replace(tmp, filepath)


def find_resume_dir(
    resume: str,
    output_dir: str | os.PathLike[str],
    name: str,
    exclude: str | os.PathLike[str] | None = None,
) -> Path | None:
    """The run directory to resume.

    Args:
        resume: ``auto`` (latest run of ``name`` with a ``checkpoints/last.ckpt``) or a run
            directory (or the ``last.ckpt`` file itself).
        output_dir: Root of run directories.
        name: Experiment name (``<output_dir>/<name>/<run>``).
        exclude: The current (fresh) run directory, never a candidate.

    Returns:
        The run directory, or None for ``auto`` when there is nothing to resume.

    Raises:
        FileNotFoundError: an explicit directory without ``checkpoints/last.ckpt``.
    """
    if resume == "auto":
        skip = Path(exclude).resolve() if exclude is not None else None
        found: list[tuple[float, Path]] = []
        for ckpt in Path(output_dir, name).glob(f"*/{LAST_CKPT}"):
            run_dir = ckpt.parent.parent
            if skip is None or run_dir.resolve() != skip:
                found.append((ckpt.stat().st_mtime, run_dir))
        return max(found)[1] if found else None
    path = Path(resume)
    if path.is_file() and path.name.endswith(".ckpt"):
        path = path.parent.parent
    if not (path / LAST_CKPT).is_file():
        raise FileNotFoundError(
            f"resume = '{resume}' has no {LAST_CKPT}; pass a run directory of an earlier run "
            "(it holds checkpoints/last.ckpt) or resume=auto"
        )
    return path
