"""The LRA data module base: cached tokenised splits, seeded loaders, length-based masks.

Every task module subclasses :class:`LRADataModule` and implements ``source_files`` (the
files it reads; a missing one raises :class:`~experiments.data.errors.DataNotFoundError`)
and ``build_splits`` (read and tokenise). Splits are stored as ragged arrays: ``tokens``
(all sequences concatenated, 1-D) and ``offsets`` (``N + 1`` ints), sequence ``i`` being
``tokens[offsets[i]:offsets[i + 1]]``; pair tasks have ``tokens_a/offsets_a`` and
``tokens_b/offsets_b``; every split has ``labels``.

Batches (``docs/interfaces.md`` §3): ``input_ids`` ``(B, N)`` long or ``input_values``
``(B, N)`` float, ``attention_mask`` ``(B, N)`` bool with ``mask[b, t] = t < length[b]``
(from lengths: a black pixel is token 0 and stays unmasked; ``task.mask=lra_nonzero`` also
masks every token 0, LRA's ``inputs > 0``),
``labels`` ``(B,)`` long; pair tasks use the ``_a`` / ``_b`` suffixes. A single-sequence
batch whose mask is all True (every image of a pixel task, a batch of full-length sequences)
carries no ``attention_mask``: the models read a missing mask as all tokens real, which is the
same computation, and attention then runs on its unmasked fused kernels. The mask is known on
the host when the batch is collated, so dropping it costs no device synchronisation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from experiments.data.cache import SplitArrays, cache_key, file_fingerprints, load_or_build

SPLITS = ("train", "val", "test")


def pack(seqs: list[np.ndarray], dtype: np.dtype | type) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate sequences into ragged ``(tokens, offsets)``.

    Args:
        seqs: 1-D integer arrays.
        dtype: Token dtype of the result.

    Returns:
        ``tokens`` of length ``sum(len(s))`` and int64 ``offsets`` with
        ``offsets[0] = 0`` and ``offsets[i + 1] = offsets[i] + len(seqs[i])``.
    """
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.concatenate(seqs).astype(dtype) if seqs else np.zeros(0, dtype=dtype)
    return tokens, offsets


class RaggedDataset(Dataset):
    """A split stored as ragged arrays; item ``i`` is ``(sequence(s), label)``.

    Args:
        arrays: ``tokens``, ``offsets``, ``labels`` (or the ``_a``/``_b`` pair arrays).
        max_length: Sequences are cut to this many tokens.
        pair: Whether the split holds pairs.
    """

    def __init__(self, arrays: dict[str, np.ndarray], max_length: int, pair: bool) -> None:
        self.arrays = arrays
        self.max_length = max_length
        self.pair = pair
        self.labels = arrays["labels"]
        self._dense: tuple[torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def _seq(self, suffix: str, i: int) -> np.ndarray:
        offsets = self.arrays["offsets" + suffix]
        start = int(offsets[i])
        end = min(int(offsets[i + 1]), start + self.max_length)
        return np.asarray(self.arrays["tokens" + suffix][start:end])

    def __getitem__(self, i: int) -> tuple[Any, int]:
        label = int(self.labels[i])
        if self.pair:
            return (self._seq("_a", i), self._seq("_b", i)), label
        return self._seq("", i), label

    def dense(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The split as one right-zero-padded token matrix and its lengths (built once).

        Returns:
            ``ids`` ``(S, W)`` uint8 or int16 (no int64 copy of the split),
            ``W`` the longest cut sequence, and ``lengths`` ``(S,)`` int64.
        """
        if self._dense is None:
            offsets, tokens = self.arrays["offsets"], self.arrays["tokens"]
            lengths = np.minimum(np.diff(offsets), self.max_length)  # (S,)
            width = max(1, int(lengths.max()) if len(lengths) else 1)
            ids = np.zeros((len(lengths), width), dtype=tokens.dtype)  # (S, W)
            for i, (start, n) in enumerate(zip(offsets[:-1].tolist(), lengths.tolist())):
                ids[i, :n] = tokens[start : start + n]
            if ids.dtype == np.uint16:  # torch indexes int16, not uint16
                ids = ids.astype(np.int16 if ids.size == 0 or ids.max() < 2**15 else np.int32)
            self._dense = (torch.from_numpy(ids), torch.from_numpy(lengths.astype(np.int64)))
        return self._dense

    def __getitems__(self, indices: list[int]) -> Any:
        """A whole batch at once: rows of :meth:`dense` (pairs: the items, one by one)."""
        if self.pair:
            return [self[i] for i in indices]
        ids, lengths = self.dense()
        index = np.asarray(indices, dtype=np.int64)  # (B,)
        # numpy's row gather: torch's CPU indexing of a uint8/int16 matrix takes about 10x
        # longer (1.4 against 0.16 ms for 512 rows of 1024 on one thread)
        rows = torch.from_numpy(np.take(ids.numpy(), index, axis=0))  # (B, W)
        labels = torch.from_numpy(np.asarray(self.labels)[index].astype(np.int64))  # (B,)
        return DenseBatch(rows, torch.from_numpy(lengths.numpy()[index]), labels)


class DenseBatch(NamedTuple):
    """Rows of a split's dense token matrix: ``ids`` (B, W), ``lengths`` (B,), ``labels`` (B,)."""

    ids: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor


def pad_sequences(seqs: list[np.ndarray], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad with 0 and build the mask from the lengths.

    Returns:
        ``ids`` ``(B, length)`` long and ``mask`` ``(B, length)`` bool with
        ``mask[b, t] = t < len(seqs[b])``.
    """
    ids = torch.zeros(len(seqs), length, dtype=torch.long)  # (B, N)
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)  # (B,)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.from_numpy(s.astype(np.int64))
    mask = torch.arange(length)[None, :] < lengths[:, None]  # (B, N)
    return ids, mask


def key_mask(mask: torch.Tensor | None, ids: torch.Tensor, mode: str) -> torch.Tensor | None:
    """The key mask of token ids ``ids`` (B, N) under ``task.mask`` = ``mode``.

    ``lengths``: ``mask`` as it is (None: nothing masked); ``lra_nonzero``: also every token 0,
    LRA's ``inputs > 0`` (a black pixel on the image tasks), ``mask & (ids > 0)``.
    """
    if mode != "lra_nonzero":
        return mask
    nonzero = ids > 0  # (B, N)
    return nonzero if mask is None else mask & nonzero


class Collator:
    """Turns a list of items into the batch dict of ``docs/interfaces.md`` §3.

    Args:
        max_length: Length when ``pad_to="max_length"``.
        pad_to: ``max_length`` or ``longest`` (the longest sequence of the batch).
        input_type: ``tokens`` gives ``input_ids``; ``values`` gives ``input_values = id / 255``.
        pair: Whether items are pairs.
        mask: ``lengths`` or ``lra_nonzero`` (also mask token 0).
    """

    def __init__(
        self, max_length: int, pad_to: str, input_type: str, pair: bool, mask: str = "lengths"
    ) -> None:
        self.max_length = max_length
        self.pad_to = pad_to
        self.input_type = input_type
        self.pair = pair
        self.mask = mask

    def _length(self, seqs: list[np.ndarray]) -> int:
        if self.pad_to == "max_length":
            return self.max_length
        return max(1, max(len(s) for s in seqs))

    def _encode(self, seqs: list[np.ndarray], suffix: str) -> dict[str, torch.Tensor]:
        ids, lengths_mask = pad_sequences(seqs, self._length(seqs))  # (B, N), (B, N)
        mask = key_mask(lengths_mask, ids, self.mask)  # (B, N)
        if self.input_type == "values":
            return {
                "input_values" + suffix: ids.float() / 255.0,  # (B, N)
                "attention_mask" + suffix: mask,
            }
        return {"input_ids" + suffix: ids, "attention_mask" + suffix: mask}

    def _encode_dense(self, batch: DenseBatch) -> dict[str, torch.Tensor]:
        """The batch dict of dense rows: the same tensors as padding the items one by one."""
        length = (
            self.max_length if self.pad_to == "max_length" else max(1, int(batch.lengths.max()))
        )
        ids = batch.ids[:, :length].long()  # (B, <= length)
        if ids.shape[1] < length:
            ids = torch.nn.functional.pad(ids, (0, length - ids.shape[1]))  # (B, length)
        out = {"labels": batch.labels}
        full = batch.lengths.numel() > 0 and int(batch.lengths.min()) >= length
        if self.mask == "lra_nonzero" or not full:
            # mask[b, t] = t < length[b]; all True (hence omitted) iff min_b length[b] >= length
            mask = torch.arange(length)[None, :] < batch.lengths[:, None]  # (B, length)
            out["attention_mask"] = key_mask(mask, ids, self.mask)
        if self.input_type == "values":
            out["input_values"] = ids.float() / 255.0  # (B, length)
        else:
            out["input_ids"] = ids
        return out

    def __call__(self, items: list[tuple[Any, int]] | DenseBatch) -> dict[str, torch.Tensor]:
        """Pad the items of one batch and stack their labels."""
        if isinstance(items, DenseBatch):
            batch = self._encode_dense(items)
        else:
            if self.pair:
                batch = self._encode([x[0][0] for x in items], "_a")
                batch.update(self._encode([x[0][1] for x in items], "_b"))
            else:
                batch = self._encode([x[0] for x in items], "")
            batch["labels"] = torch.tensor([label for _, label in items], dtype=torch.long)  # (B,)
        if not self.pair and "attention_mask" in batch and bool(batch["attention_mask"].all()):
            del batch["attention_mask"]  # no padding: the models read a missing mask as all real
        return batch


class LRADataModule(pl.LightningDataModule):
    """Base of the six LRA data modules.

    ``vocab_size``, ``num_classes``, ``max_length``, ``is_pair`` and ``input_type`` are set
    in the constructor, before ``setup``.

    Args:
        cfg: The task config (a model of :mod:`experiments.data.config`).
        data_dir: Root of the LRA data; ``cfg.path`` is relative to it unless absolute.
        batch_size: Batch size of every loader.
        num_workers: DataLoader worker processes.
        seed: Seed of the training shuffle (the order is the same on every run).
        cache_dir: Where tokenised splits are cached (default ``<data_dir>/.cache``).
    """

    vocab_size: int
    num_classes: int
    is_pair: ClassVar[bool] = False
    fixed_length: ClassVar[bool] = False
    """Every sequence has the task's full length (images): batches carry no padding."""
    token_dtype: ClassVar[type] = np.uint16
    cache_exclude: ClassVar[set[str]] = {"pad_to", "cache", "generate", "mask"}

    def __init__(
        self,
        cfg: Any,
        *,
        data_dir: str | os.PathLike[str],
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"batch_size={batch_size} must be a positive integer.")
        self.cfg = cfg
        self.data_dir = Path(data_dir)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.data_dir / ".cache"
        self.max_length: int = cfg.max_length
        self.input_type: str = (
            "values" if getattr(cfg, "pixel_encoding", "tokens") == "normalized" else "tokens"
        )
        self.datasets: dict[str, RaggedDataset] = {}
        # One generator for the module's life: epoch e of a run is the same on every run.
        self.shuffle_generator = torch.Generator().manual_seed(seed)
        self.cache_hit: bool | None = None

    @property
    def root(self) -> Path:
        """Folder of the task's files."""
        path = Path(self.cfg.path)
        return path if path.is_absolute() else self.data_dir / path

    def source_files(self) -> list[Path]:
        """The files ``build_splits`` reads; raises ``DataNotFoundError`` if any is missing."""
        raise NotImplementedError

    def build_splits(self) -> SplitArrays:
        """Read and tokenise the sources into ``{split: ragged arrays}``."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Load the splits from the cache, or build and cache them."""
        if self.datasets:
            return
        config = self.cfg.model_dump(exclude=self.cache_exclude)
        key = cache_key(config, file_fingerprints(self.source_files()))
        splits, self.cache_hit = load_or_build(
            self.cache_dir, self.cfg.name, key, self.build_splits, enabled=self.cfg.cache
        )
        self.datasets = {
            split: RaggedDataset(splits[split], self.max_length, self.is_pair) for split in SPLITS
        }

    def collator(self) -> Collator:
        """The batch builder of this task."""
        return Collator(
            self.max_length,
            self.cfg.pad_to,
            self.input_type,
            self.is_pair,
            getattr(self.cfg, "mask", "lengths"),
        )

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if not self.datasets:
            self.setup()
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            generator=self.shuffle_generator if shuffle else None,
            num_workers=self.num_workers,
            collate_fn=self.collator(),
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
        )

    @property
    def pin_memory(self) -> bool:
        """Collate into page-locked memory when the trainer runs on CUDA.

        A copy from pageable memory blocks the host until the device has run every kernel
        queued before it; from page-locked memory the batch copy is queued asynchronously.
        """
        trainer = self.trainer
        strategy = getattr(trainer, "strategy", None)
        device = getattr(strategy, "root_device", None)
        return isinstance(device, torch.device) and device.type == "cuda"

    def train_dataloader(self) -> DataLoader:
        """Shuffled (seeded) training batches.

        Under a trainer the order is step-aligned (:mod:`experiments.resume`): epoch ``e`` is a
        permutation drawn from ``(seed, e)`` and a resumed run starts where its step says.
        """
        trainer = self.trainer
        if trainer is None:
            return self._loader("train", shuffle=True)
        from experiments.resume import step_aligned_loader

        return step_aligned_loader(self._loader("train", shuffle=False), trainer, self.seed)

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: the seed of the training order."""
        return {"train_order_seed": self.seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Refuse a checkpoint whose training order came from another seed."""
        saved = state_dict.get("train_order_seed", self.seed)
        if saved != self.seed:
            raise ValueError(
                f"seed = {self.seed} differs from the checkpoint's seed {saved}; resume with "
                f"seed={saved}"
            )

    def val_dataloader(self) -> DataLoader:
        """Validation batches in file order."""
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches in file order."""
        return self._loader("test", shuffle=False)
