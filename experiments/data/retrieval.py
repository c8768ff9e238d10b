"""AAN (LRA retrieval): do two papers cite each other? A pair task on raw bytes.

Files ``<root>/new_aan_pairs.{train,eval,test}.tsv`` (``eval`` is validation), no header,
five tab-separated columns ``label id1 id2 text1 text2``; the label is written as a float
(``1.0``) and parsed as one. Each text is cut at ``raw_cut_bytes`` (10000) raw bytes, then
tokenised byte by byte and cut at ``max_length`` (4000) tokens per document.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.data.byte_tokens import BYTE_VOCAB_SIZE, encode_bytes
from experiments.data.cache import SplitArrays
from experiments.data.config import RetrievalTaskConfig
from experiments.data.datamodule import LRADataModule, pack
from experiments.data.errors import DataCorruptError, DataNotFoundError
from experiments.data.registry import register_task

FILE_SPLITS = {"train": "train", "val": "eval", "test": "test"}
GET_AAN = (
    "download lra_release.gz (https://storage.googleapis.com/long-range-arena/lra_release.gz), "
    "untar it and use lra_release/lra_release/tsv_data"
)


def read_aan_tsv(
    path: Path, raw_cut_bytes: int, max_length: int
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Read one AAN file into (tokens of text1, tokens of text2, labels).

    Raises:
        DataCorruptError: On a row without 5 fields or a label that is not 0 or 1 (names
            the file and line).
    """
    seqs_a: list[np.ndarray] = []
    seqs_b: list[np.ndarray] = []
    labels: list[int] = []
    cut = min(raw_cut_bytes, max_length)
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            line = raw.rstrip(b"\r\n")
            if not line:
                continue
            fields = line.split(b"\t")
            if len(fields) != 5:
                raise DataCorruptError(
                    path,
                    f"expected 5 tab-separated fields (label id1 id2 text1 text2), "
                    f"got {len(fields)}",
                    line_no,
                )
            try:
                label = float(fields[0])
            except ValueError:
                label = -1.0
            if label not in (0.0, 1.0):
                raise DataCorruptError(path, f"label {fields[0][:20]!r} is not 0 or 1", line_no)
            labels.append(int(label))
            seqs_a.append(encode_bytes(fields[3], cut))
            seqs_b.append(encode_bytes(fields[4], cut))
    return seqs_a, seqs_b, np.asarray(labels, dtype=np.int64)


@register_task("retrieval", RetrievalTaskConfig, order=2)
class RetrievalDataModule(LRADataModule):
    """AAN document matching (pair task, 2 classes, 258 ids, ``max_length`` per document)."""

    vocab_size = BYTE_VOCAB_SIZE
    num_classes = 2
    is_pair = True

    def files(self) -> dict[str, Path]:
        """The three split files under ``root``."""
        return {s: self.root / f"new_aan_pairs.{f}.tsv" for s, f in FILE_SPLITS.items()}

    def source_files(self) -> list[Path]:
        """The three TSV files; raises ``DataNotFoundError`` naming the first missing one."""
        for path in self.files().values():
            if not path.is_file():
                raise DataNotFoundError(
                    path,
                    "the AAN split new_aan_pairs.{train,eval,test}.tsv (no header; columns "
                    "label id1 id2 text1 text2)",
                    GET_AAN,
                )
        return list(self.files().values())

    def build_splits(self) -> SplitArrays:
        """Read and tokenise the three files."""
        out: SplitArrays = {}
        for split, path in self.files().items():
            seqs_a, seqs_b, labels = read_aan_tsv(path, self.cfg.raw_cut_bytes, self.max_length)
            tokens_a, offsets_a = pack(seqs_a, self.token_dtype)
            tokens_b, offsets_b = pack(seqs_b, self.token_dtype)
            out[split] = {
                "tokens_a": tokens_a,
                "offsets_a": offsets_a,
                "tokens_b": tokens_b,
                "offsets_b": offsets_b,
                "labels": labels,
            }
        return out
