"""CIFAR-10 (LRA image): 10-way classification of 1024 grayscale pixels.

Sources, tried in this order by ``source="auto"``:

1. The python pickles ``<root>/data_batch_{1..5}`` and ``<root>/test_batch`` (the folder
   ``cifar-10-batches-py``), each a dict with ``data`` (N x 3072 uint8: the R, G, B planes
   of 32 x 32 images, row-major) and ``labels``; read with pickle + numpy.
2. The hub id ``cfg.hf_id`` (``uoft-cs/cifar10``, columns ``img``, ``label``) via ``datasets``.

Splits: train = the first ``1 - val_fraction`` of the 50k training images (45k), val = the
last ``val_fraction`` (5k), test = the 10k test images. Pixels are grayscale tokens
(:func:`~experiments.data.pixels.rgb_to_gray_tokens`); ``pixel_encoding="normalized"`` turns
them into ``token / 255`` floats at batch time.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from experiments.data.cache import SplitArrays
from experiments.data.config import ImageTaskConfig
from experiments.data.datamodule import LRADataModule, pack
from experiments.data.errors import DataCorruptError, DataNotFoundError
from experiments.data.hf import datasets_importable, load_hf_dataset
from experiments.data.pixels import PIXEL_VOCAB_SIZE, rgb_to_gray_tokens
from experiments.data.registry import register_task

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
CIFAR_EXPECTED = "the CIFAR-10 python batches data_batch_1..5 and test_batch"
GET_CIFAR = (
    "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and untar it into "
    "<data_dir> (or install 'datasets' and go online for uoft-cs/cifar10)"
)


def read_cifar_pickle(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickle batch as ``(rgb (N, 32, 32, 3) uint8, labels (N,) int64)``.

    Raises:
        DataCorruptError: When the file is not a CIFAR batch (names the file).
    """
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        IndexError,
        ImportError,
        OverflowError,
        MemoryError,
    ) as exc:
        raise DataCorruptError(path, f"not a CIFAR-10 python batch ({exc})") from exc
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataCorruptError(path, f"data has shape {data.shape}, expected (N, 3072)")
    rgb = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, 32, 32, 3)
    return rgb, labels


@register_task("image", ImageTaskConfig, order=3)
class ImageDataModule(LRADataModule):
    """CIFAR-10 grayscale (10 classes, 256 pixel ids, length 1024)."""

    vocab_size = PIXEL_VOCAB_SIZE
    num_classes = 10
    token_dtype = np.uint8
    fixed_length = True

    def pickle_files(self) -> list[Path]:
        """The six pickle files under ``root``."""
        return [self.root / name for name in (*TRAIN_FILES, *TEST_FILES)]

    def use_pickles(self) -> bool:
        """Whether the pickles are read (else the hub)."""
        have = all(p.is_file() for p in self.pickle_files())
        if self.cfg.source == "hf" or (self.cfg.source == "auto" and not have):
            if self.cfg.source == "auto" and not datasets_importable():
                self._missing()
            return False
        if not have:
            self._missing()
        return True

    def _missing(self) -> None:
        missing = next(p for p in self.pickle_files() if not p.is_file())
        raise DataNotFoundError(missing, CIFAR_EXPECTED, GET_CIFAR)

    def source_files(self) -> list[Path]:
        """The pickles (empty for the hub)."""
        return self.pickle_files() if self.use_pickles() else []

    def read_rgb(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{"train"|"test": (rgb (N, 32, 32, 3) uint8, labels)}``."""
        if self.use_pickles():
            out = {}
            for split, names in (("train", TRAIN_FILES), ("test", TEST_FILES)):
                parts = [read_cifar_pickle(self.root / n) for n in names]
                out[split] = (
                    np.concatenate([p[0] for p in parts]),
                    np.concatenate([p[1] for p in parts]),
                )
            return out
        ds = load_hf_dataset(self.cfg.hf_id, self.root, CIFAR_EXPECTED, GET_CIFAR)
        return {
            split: (
                np.stack([np.asarray(im.convert("RGB")) for im in ds[split]["img"]]),
                np.asarray(ds[split]["label"], dtype=np.int64),
            )
            for split in ("train", "test")
        }

    def build_splits(self) -> SplitArrays:
        """Grayscale tokens; train/val cut at ``1 - val_fraction`` of the training images."""
        rgb = self.read_rgb()
        train_x = rgb_to_gray_tokens(rgb["train"][0]).reshape(len(rgb["train"][0]), -1)
        test_x = rgb_to_gray_tokens(rgb["test"][0]).reshape(len(rgb["test"][0]), -1)
        cut = len(train_x) - int(round(len(train_x) * self.cfg.val_fraction))
        parts = {
            "train": (train_x[:cut], rgb["train"][1][:cut]),
            "val": (train_x[cut:], rgb["train"][1][cut:]),
            "test": (test_x, rgb["test"][1]),
        }
        out: SplitArrays = {}
        for split, (x, labels) in parts.items():
            tokens, offsets = pack(list(x), self.token_dtype)  # (N * 1024,), (N + 1,)
            out[split] = {"tokens": tokens, "offsets": offsets, "labels": labels}
        return out
