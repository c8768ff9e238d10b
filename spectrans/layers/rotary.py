"""Rotary position embeddings (RoPE) for queries and keys.

For a head of even width d, pair the channels ``(2i, 2i+1)`` and rotate pair i at position
p by the angle ``p * base^(-2i/d)``:

    [q'_{2i}, q'_{2i+1}] = [q_{2i} cos θ - q_{2i+1} sin θ, q_{2i} sin θ + q_{2i+1} cos θ].

Then ``<R_p q, R_s k> = <q, R_{s-p} k>``: scores depend on relative position only. RoPE acts
on queries and keys inside the attention layers, never on hidden states.
"""

from __future__ import annotations

import torch
from torch import Tensor


def rotary_angles(
    seq_len: int, head_dim: int, *, base: float = 10000.0, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """Cosines and sines of the rotation angles.

    Returns:
        ``(cos, sin)``, each ``(seq_len, head_dim // 2)`` float32.
    """
    if head_dim % 2 != 0:
        raise ValueError(f"rotary embeddings need an even head_dim, got {head_dim}")
    channel = torch.arange(0, head_dim, 2, device=device, dtype=torch.float32)  # (d/2,)
    inv_freq = base ** (-channel / head_dim)
    angles = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()  # (N, d/2) each


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate channel pairs of ``x`` (..., N, d) by the angles of ``rotary_angles``."""
    x_even, x_odd = x[..., 0::2].float(), x[..., 1::2].float()  # (..., N, d/2)
    rotated = torch.stack((x_even * cos - x_odd * sin, x_even * sin + x_odd * cos), dim=-1)
    return rotated.flatten(-2).to(x.dtype)  # (..., N, d)
