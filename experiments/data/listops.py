"""ListOps: reader of ``basic_{train,val,test}.tsv`` (official or generated) and tokenizer.

Tokenisation follows the LRA input pipeline: ``]`` becomes ``X``, the parentheses are
dropped, and the rest is split on whitespace. Vocabulary (17 ids)::

    0 <pad>  1 <unk>  2 [MIN  3 [MAX  4 [MED  5 [SM  6 X  7..16 digits 0..9

``<unk>`` is reserved but never produced: an unknown token is a corrupt row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.data.cache import SplitArrays
from experiments.data.config import ListOpsTaskConfig
from experiments.data.datamodule import SPLITS, LRADataModule, pack
from experiments.data.errors import DataCorruptError, DataNotFoundError
from experiments.data.registry import register_task

VOCAB: tuple[str, ...] = (
    "<pad>",
    "<unk>",
    "[MIN",
    "[MAX",
    "[MED",
    "[SM",
    "X",
    *(str(d) for d in range(10)),
)
TOKEN_TO_ID = {t: i for i, t in enumerate(VOCAB)}
HEADER = "Source\tTarget"
# Each multi-character token is replaced by one character so that a whole row maps to ids
# through one byte lookup table.
_SHORT = (("[MIN", "a"), ("[MAX", "b"), ("[MED", "c"), ("[SM", "d"), ("]", "X"))
_LUT = np.full(256, 255, dtype=np.uint8)
for _tok, _ch in (*_SHORT, *((str(d), str(d)) for d in range(10))):
    _LUT[ord(_ch)] = TOKEN_TO_ID["X" if _tok == "]" else _tok]
GET_LISTOPS = "python -m experiments.data listops --out <data_dir>/listops-1000 (or lra_release.gz)"


def tokenize(source: str) -> np.ndarray:
    """Token ids of one ``Source`` string (``]`` -> ``X``, parentheses dropped).

    Raises:
        ValueError: On a token outside the ListOps vocabulary (the message names it).
    """
    if any(ch in source for ch in "abcd"):
        raise ValueError(f"unexpected characters in {source[:60]!r}")
    s = source
    for tok, ch in _SHORT:
        s = s.replace(tok, ch)
    toks = s.replace("(", " ").replace(")", " ").split()
    joined = "".join(toks)
    ids = _LUT[np.frombuffer(joined.encode("ascii", "replace"), dtype=np.uint8)]
    if len(joined) != len(toks) or (ids == 255).any():
        bad = next(t for t in toks if len(t) != 1 or _LUT[ord(t) % 256] == 255 or ord(t) > 255)
        raise ValueError(f"unknown ListOps token {bad!r}")
    return ids


def read_listops_tsv(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    r"""Read one ``Source\tTarget`` file into token arrays and labels.

    Raises:
        DataCorruptError: On a bad header, field count, label or token (names file and line).
    """
    seqs: list[np.ndarray] = []
    labels: list[int] = []
    with open(path, encoding="utf-8", newline="") as f:
        for line_no, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n")
            if line_no == 1:
                if line != HEADER:
                    raise DataCorruptError(path, f"expected the header {HEADER!r}", line_no)
                continue
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise DataCorruptError(
                    path, f"expected 2 tab-separated fields, got {len(fields)}", line_no
                )
            try:
                seqs.append(tokenize(fields[0]))
            except ValueError as exc:
                raise DataCorruptError(path, str(exc), line_no) from exc
            if fields[1].strip() not in {str(d) for d in range(10)}:
                raise DataCorruptError(path, f"target {fields[1]!r} is not a digit 0..9", line_no)
            labels.append(int(fields[1]))
    return seqs, np.asarray(labels, dtype=np.int64)


@register_task("listops", ListOpsTaskConfig, order=0)
class ListOpsDataModule(LRADataModule):
    """ListOps data module (10 classes, vocabulary of 17)."""

    vocab_size = len(VOCAB)
    num_classes = 10
    token_dtype = np.uint8

    def files(self) -> dict[str, Path]:
        """The three split files under ``root``."""
        return {split: self.root / f"basic_{split}.tsv" for split in SPLITS}

    def prepare_data(self) -> None:
        """Generate the files when they are missing and ``cfg.generate`` is set."""
        from experiments.data.listops_generator import TreeShape, folder_state, generate_listops

        gen = self.cfg.generate
        if gen is None or folder_state(self.root)[0] in ("official", "complete"):
            return

        generate_listops(
            self.root,
            size=gen.size,
            sizes=gen.sizes,
            seed=gen.seed,
            workers=gen.workers,
            shape=TreeShape(gen.max_depth, gen.min_tokens, gen.max_tokens),
        )

    def source_files(self) -> list[Path]:
        """The three TSV files; raises ``DataNotFoundError`` naming the first missing one.

        A generated folder that was cut short raises ``DataCorruptError`` naming the fix.
        """
        from experiments.data.listops_generator import folder_state

        state, why = folder_state(self.root)
        if state in ("incomplete", "stale"):
            raise DataCorruptError(
                self.root,
                f"the ListOps folder is {state} ({why}); regenerate it with: "
                f"{GET_LISTOPS} (or set task.generate)",
            )
        for path in self.files().values():
            if not path.is_file():
                raise DataNotFoundError(
                    path,
                    "the ListOps split basic_{train,val,test}.tsv (header 'Source\\tTarget')",
                    GET_LISTOPS + ", or set task.generate",
                )
        return list(self.files().values())

    def build_splits(self) -> SplitArrays:
        """Read and tokenise the three files (a generated folder's checksum is verified first)."""
        from experiments.data.listops_generator import folder_state
        from experiments.data.manifest import verify

        if folder_state(self.root)[0] == "complete":
            verify(self.root, list(self.files().values()), GET_LISTOPS)
        out: SplitArrays = {}
        for split, path in self.files().items():
            seqs, labels = read_listops_tsv(path)
            tokens, offsets = pack(seqs, self.token_dtype)
            out[split] = {"tokens": tokens, "offsets": offsets, "labels": labels}
        return out
