r"""Positional information: additive encodings and the options handed to token mixers.

- ``sinusoidal``: ``PE[p, 2i] = sin(p / 10000^(2i/D))``, ``PE[p, 2i+1] = cos(p / 10000^(2i/D))``,
  added to the embeddings; computed for any length.
- ``sinusoidal2d``: for a row-major square image of side :math:`S = \sqrt{N}` (pixel ``p`` at
  row :math:`r = \lfloor p / S \rfloor`, column :math:`c = p \bmod S`),
  ``PE[p] = [PE_{D_r}(r), PE_{D - D_r}(c)]`` with :math:`D_r = \lceil D/2 \rceil` and
  :math:`PE_k` the sinusoidal table of width ``k``. Both coordinates are then smooth functions
  of a few features; in the 1-D table the column is not (no period
  :math:`2\pi \cdot 10000^{2i/D}` divides ``S``, so the features of one column differ from
  row to row). ``N`` must be a perfect square.
- ``learned``: a table ``E[p]`` of ``max_sequence_length`` rows added to the embeddings; a
  longer sequence fails with a message naming the limit and ``model.max_sequence_length``.
- ``rotary``, ``alibi``: never added to hidden states. They are options of the token mixer
  (``use_rope=True`` rotates queries and keys, ``alibi=True`` biases the scores); see
  :func:`apply_positional_to_mixer`. Mixers that cannot honour them fail at construction.
- ``none``: nothing.

All additive encodings act per position, so they are causal-safe and mask-safe.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from spectrans.config.core import ModelT as ConfigT
from spectrans.config.core import with_fields

MIXER_OPTIONS = {"rotary": "use_rope", "alibi": "alibi"}


def sinusoidal_table(
    seq_len: int,
    hidden_dim: int,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Sinusoidal table ``(seq_len, hidden_dim)`` (odd ``hidden_dim``: last cosine dropped)."""
    position = torch.arange(seq_len, device=device, dtype=torch.float64)[:, None]  # (N, 1)
    inv_freq = torch.exp(
        torch.arange(0, hidden_dim, 2, device=device, dtype=torch.float64)
        * (-math.log(10000.0) / hidden_dim)
    )  # (ceil(D/2),)
    table = torch.zeros(seq_len, hidden_dim, device=device, dtype=torch.float64)  # (N, D)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq)[:, : hidden_dim // 2]
    return table.to(dtype)


def image_sinusoidal_table(
    seq_len: int,
    hidden_dim: int,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Row and column sinusoidal table ``(S * S, hidden_dim)`` of a row-major ``S x S`` image.

    Raises:
        ValueError: ``seq_len`` is not a perfect square.
    """
    side = math.isqrt(seq_len)
    if side * side != seq_len:
        raise ValueError(
            f"positional_encoding='sinusoidal2d' needs a square image, but the sequence has "
            f"{seq_len} positions, which is not a perfect square; use sinusoidal or learned"
        )
    row_dim = (hidden_dim + 1) // 2
    rows = sinusoidal_table(side, row_dim, device=device, dtype=dtype)  # (S, D_r)
    cols = sinusoidal_table(side, hidden_dim - row_dim, device=device, dtype=dtype)  # (S, D_c)
    return torch.cat(
        [
            rows[:, None].expand(side, side, row_dim),  # (S, S, D_r): row r of pixel (r, c)
            cols[None, :].expand(side, side, hidden_dim - row_dim),  # (S, S, D_c): column c
        ],
        dim=-1,
    ).reshape(seq_len, hidden_dim)  # (N, D), row-major


class SinusoidalPositionalEncoding(nn.Module):
    """Add a fixed sinusoidal table, of the 1-D position or of an image's row and column.

    :func:`sinusoidal_table` works at any length; with ``image=True``,
    :func:`image_sinusoidal_table` needs a row-major square image.

    Args:
        hidden_dim: Model width D.
        image: Encode the row and the column of a square image instead of the 1-D position.
    """

    def __init__(self, hidden_dim: int, image: bool = False) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.image = image

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, N, D) -> x + PE[:N]."""
        make = image_sinusoidal_table if self.image else sinusoidal_table
        table = make(x.shape[1], self.hidden_dim, device=x.device, dtype=x.dtype)  # (N, D)
        return x + table[None]  # (B, N, D)


class LearnedPositionalEncoding(nn.Module):
    """Add a learned table ``E`` of ``max_sequence_length`` rows (init normal, std 0.02).

    Args:
        hidden_dim: Model width D.
        max_sequence_length: Rows of the table, the longest sequence accepted.
        config_key: Config key named in the error for a too-long sequence.
    """

    def __init__(
        self,
        hidden_dim: int,
        max_sequence_length: int,
        config_key: str = "model.max_sequence_length",
    ) -> None:
        super().__init__()
        self.max_sequence_length = max_sequence_length
        self.config_key = config_key
        self.table = nn.Parameter(torch.empty(max_sequence_length, hidden_dim))  # (L, D)
        nn.init.normal_(self.table, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, N, D) -> x + E[:N]; N above the table's length raises ValueError."""
        seq_len = x.shape[1]
        if seq_len > self.max_sequence_length:
            raise ValueError(
                f"sequence length {seq_len} exceeds the learned positional encoding's limit of "
                f"{self.max_sequence_length} positions; raise {self.config_key} to at least "
                f"{seq_len}"
            )
        return x + self.table[:seq_len][None].to(x.dtype)  # (B, N, D)


def build_positional_encoding(
    kind: str,
    hidden_dim: int,
    max_sequence_length: int,
    config_key: str = "model.max_sequence_length",
) -> nn.Module:
    """Additive encoding module for ``kind`` (identity for rotary, alibi and none)."""
    if kind == "sinusoidal":
        return SinusoidalPositionalEncoding(hidden_dim)
    if kind == "sinusoidal2d":
        return SinusoidalPositionalEncoding(hidden_dim, image=True)
    if kind == "learned":
        return LearnedPositionalEncoding(hidden_dim, max_sequence_length, config_key)
    if kind in ("rotary", "alibi", "none"):
        return nn.Identity()
    raise ValueError(
        f"unknown positional encoding '{kind}'; choose one of sinusoidal, sinusoidal2d, "
        f"learned, rotary, alibi, none"
    )


def apply_positional_to_mixer(kind: str, mixer_config: ConfigT) -> ConfigT:
    """The mixer config with ``use_rope``/``alibi`` set for rotary/alibi (else unchanged).

    Args:
        kind: Positional encoding type.
        mixer_config: The token mixer's config.

    Raises:
        ValueError: the mixer's config has no such option (one sentence, naming it).
    """
    option = MIXER_OPTIONS.get(kind)
    if option is None:
        return mixer_config
    if option not in type(mixer_config).model_fields:
        what = "queries and keys to rotate" if kind == "rotary" else "attention scores to bias"
        raise ValueError(
            f"positional_encoding='{kind}' cannot be used with the "
            f"'{getattr(mixer_config, 'name', type(mixer_config).__name__)}' "
            f"token mixer: it has no {what}; choose sinusoidal, sinusoidal2d, learned or none"
        )
    return with_fields(mixer_config, **{option: True})
