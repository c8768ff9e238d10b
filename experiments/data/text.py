"""IMDB (LRA text): byte-level sentiment classification, 25k train / 25k test.

Sources, tried in this order by ``source="auto"``:

1. ``<root>/aclImdb/{train,test}/{neg,pos}/*.txt`` (or ``<root>`` itself laid out so), the
   Stanford tarball; label ``pos`` = 1, ``neg`` = 0; files in sorted order, ``neg`` first.
2. ``<root>/**/train-*.parquet`` and ``test-*.parquet`` with columns ``text``, ``label`` (the
   Hugging Face export; needs ``pyarrow``).
3. The hub id ``cfg.hf_id`` (``stanfordnlp/imdb``) through ``datasets`` (needs the network).

Tokens are the raw UTF-8 bytes (see :mod:`experiments.data.byte_tokens`), cut at
``max_length``. LRA validates on the test split (``validation="test"``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.data.byte_tokens import BYTE_VOCAB_SIZE, encode_bytes
from experiments.data.cache import SplitArrays
from experiments.data.config import TextTaskConfig
from experiments.data.datamodule import LRADataModule, pack
from experiments.data.errors import DataCorruptError, DataError, DataNotFoundError
from experiments.data.hf import datasets_importable, load_hf_dataset
from experiments.data.registry import register_task

GET_IMDB = (
    "download https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz and untar it "
    "there, or save the parquet files of the Hugging Face dataset stanfordnlp/imdb there"
)
IMDB_EXPECTED = (
    "IMDB as aclImdb/{train,test}/{neg,pos}/*.txt or train-*.parquet + test-*.parquet "
    "(columns text, label)"
)
Raw = dict[str, tuple[list[bytes], np.ndarray]]


def find_aclimdb(root: Path) -> Path | None:
    """The ``aclImdb`` folder under (or at) ``root``, or None."""
    for cand in (root / "aclImdb", root):
        if (cand / "train" / "pos").is_dir() and (cand / "test" / "neg").is_dir():
            return cand
    return None


def aclimdb_files(folder: Path) -> dict[str, list[tuple[Path, int]]]:
    """``{split: [(file, label), ...]}`` of an ``aclImdb`` folder (sorted, neg first)."""
    return {
        split: [
            (p, label)
            for label, sub in ((0, "neg"), (1, "pos"))
            for p in sorted((folder / split / sub).glob("*.txt"))
        ]
        for split in ("train", "test")
    }


def find_parquet(root: Path) -> dict[str, list[Path]] | None:
    """``{split: files}`` of ``train-*.parquet`` / ``test-*.parquet`` under root, or None."""
    found = {s: sorted(root.rglob(f"{s}-*.parquet")) for s in ("train", "test")}
    return found if root.is_dir() and all(found.values()) else None


def read_parquet_texts(files: list[Path]) -> tuple[list[bytes], np.ndarray]:
    """``text`` (UTF-8 encoded) and ``label`` columns of parquet files."""
    import pandas as pd

    texts: list[bytes] = []
    labels: list[int] = []
    for path in files:
        try:
            frame = pd.read_parquet(path, columns=["text", "label"])
        except ImportError as exc:
            raise DataError(
                f"reading {path} needs pyarrow; install it with: pip install pyarrow "
                "(or unpack aclImdb/ under task.path and set task.source=aclimdb)"
            ) from exc
        texts.extend(t.encode("utf-8") for t in frame["text"])
        labels.extend(int(x) for x in frame["label"])
    return texts, np.asarray(labels, dtype=np.int64)


@register_task("text", TextTaskConfig, order=1)
class TextDataModule(LRADataModule):
    """IMDB byte-level classification (2 classes, 258 ids)."""

    vocab_size = BYTE_VOCAB_SIZE
    num_classes = 2

    def resolve_source(self) -> str:
        """The source that will be read: ``aclimdb``, ``parquet`` or ``hf``."""
        src = self.cfg.source
        if src in ("auto", "aclimdb") and find_aclimdb(self.root) is not None:
            return "aclimdb"
        if src in ("auto", "parquet") and find_parquet(self.root) is not None:
            return "parquet"
        if src == "hf" or (src == "auto" and datasets_importable()):
            return "hf"
        looked = {"aclimdb": self.root / "aclImdb", "parquet": self.root / "train-*.parquet"}
        raise DataNotFoundError(
            looked.get(src, self.root),
            IMDB_EXPECTED,
            GET_IMDB + " (or install 'datasets' and go online for stanfordnlp/imdb)",
        )

    def source_files(self) -> list[Path]:
        """The local files read (empty for the hub)."""
        src = self.resolve_source()
        if src == "aclimdb":
            folder = find_aclimdb(self.root)
            assert folder is not None
            return [p for files in aclimdb_files(folder).values() for p, _ in files]
        if src == "parquet":
            found = find_parquet(self.root)
            assert found is not None
            return [p for files in found.values() for p in files]
        return []

    def read_raw(self) -> Raw:
        """``{"train"|"test": (texts as bytes, labels)}`` from the resolved source."""
        src = self.resolve_source()
        if src == "aclimdb":
            folder = find_aclimdb(self.root)
            assert folder is not None
            out: Raw = {}
            for split, files in aclimdb_files(folder).items():
                if not files:
                    raise DataCorruptError(
                        folder / split,
                        "no neg/*.txt or pos/*.txt files; put the reviews in "
                        f"{self.root}: {GET_IMDB}",
                    )
                texts = [p.read_bytes() for p, _ in files]
                out[split] = (texts, np.asarray([lab for _, lab in files], dtype=np.int64))
            return out
        if src == "parquet":
            found = find_parquet(self.root)
            assert found is not None
            return {split: read_parquet_texts(files) for split, files in found.items()}
        ds = load_hf_dataset(self.cfg.hf_id, self.root / "aclImdb", IMDB_EXPECTED, GET_IMDB)
        return {
            split: (
                [t.encode("utf-8") for t in ds[split]["text"]],
                np.asarray(ds[split]["label"], dtype=np.int64),
            )
            for split in ("train", "test")
        }

    def build_splits(self) -> SplitArrays:
        """Tokenise; validation is the test split, or the tail of train (``holdout``)."""
        raw = self.read_raw()
        tok = {
            split: ([encode_bytes(t, self.max_length) for t in texts], labels)
            for split, (texts, labels) in raw.items()
        }
        train_seqs, train_labels = tok["train"]
        test_seqs, test_labels = tok["test"]
        if self.cfg.validation == "test":
            parts = {"train": tok["train"], "val": tok["test"], "test": tok["test"]}
        else:
            n_val = int(round(len(train_seqs) * self.cfg.holdout_fraction))
            cut = len(train_seqs) - n_val
            perm = np.random.default_rng(0).permutation(len(train_seqs))  # IMDB is sorted
            train_seqs = [train_seqs[i] for i in perm]
            train_labels = train_labels[perm]
            parts = {
                "train": (train_seqs[:cut], train_labels[:cut]),
                "val": (train_seqs[cut:], train_labels[cut:]),
                "test": (test_seqs, test_labels),
            }
        out: SplitArrays = {}
        for split, (seqs, labels) in parts.items():
            tokens, offsets = pack(seqs, self.token_dtype)
            out[split] = {"tokens": tokens, "offsets": offsets, "labels": labels}
        return out
