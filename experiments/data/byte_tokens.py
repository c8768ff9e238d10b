"""Byte-level tokens shared by the text and retrieval tasks.

Token of byte ``b`` is ``b + BYTE_OFFSET`` (0 is padding, 1 is reserved for end of sequence,
as in the tensor2tensor ``ByteTextEncoder`` the LRA code uses), so the vocabulary has
``256 + BYTE_OFFSET = 258`` ids.
"""

from __future__ import annotations

import numpy as np

BYTE_OFFSET = 2
BYTE_VOCAB_SIZE = 256 + BYTE_OFFSET


def encode_bytes(data: bytes, max_length: int) -> np.ndarray:
    """Token ids ``(min(len(data), max_length),)`` uint16 of the first ``max_length`` bytes."""
    raw = np.frombuffer(data[:max_length], dtype=np.uint8)
    return raw.astype(np.uint16) + BYTE_OFFSET
