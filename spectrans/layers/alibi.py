"""ALiBi: linear distance biases added to attention scores (Press et al., 2022).

Head h (of H) gets slope ``m_h = 2^(-8 (h+1) / H)`` (for H a power of two; otherwise the
paper's interleaving rule) and the score of query i on key j is biased by ``-m_h |i - j|``.
For causal attention only ``j <= i`` survives the causal mask, which gives the paper's
``-m_h (i - j)``. Only layers that form scores can use it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spectrans.transforms.constants import graph_constant


def alibi_slopes(num_heads: int) -> Tensor:
    """Per-head slopes, shape (H,)."""

    def power_of_two_slopes(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(num_heads).is_integer():
        slopes = power_of_two_slopes(num_heads)
    else:
        closest = 2 ** math.floor(math.log2(num_heads))
        slopes = power_of_two_slopes(closest)
        slopes += power_of_two_slopes(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(num_heads: int, seq_len: int, device: torch.device | None = None) -> Tensor:
    """Bias ``-m_h |i - j|``, shape (H, N, N) float32."""
    positions = torch.arange(seq_len, device=device, dtype=torch.float32)
    distance = (positions[None, :] - positions[:, None]).abs()  # (N, N)
    slopes = _slopes_on(num_heads, torch.device(device) if device is not None else None)
    return -slopes[:, None, None] * distance  # (H, N, N)


@graph_constant(maxsize=32)
def _slopes_on(num_heads: int, device: torch.device | None) -> Tensor:
    """:func:`alibi_slopes` on ``device``, cached (do not modify in place).

    The host-to-device copy then happens once, not inside every forward, where a CUDA graph
    could not capture it; a compiled graph holds the slopes as a constant
    (:func:`~spectrans.transforms.constants.graph_constant`).
    """
    return alibi_slopes(num_heads).to(device)
