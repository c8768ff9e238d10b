r"""The shared frame of the mixing layers (no queries, keys, heads or scores).

With :math:`m \in \{0, 1\}^N` the mask of a sequence and ``mix`` the layer's own token
mixing, every mixing layer computes

.. math::

    y = m \odot \mathrm{dropout}\big(\mathrm{mix}(m \odot x)\big),

so padded positions enter ``mix`` as zeros and leave as zeros. ``mix`` runs in float32 (float64
for float64 inputs); its result is cast back to the input dtype before the dropout.
"""

from __future__ import annotations

from torch import Tensor

from spectrans.layers.attention.base import AttentionLayer, check_input, zero_masked
from spectrans.layers.dropout import Dropout
from spectrans.transforms.precision import compute_dtype


class MixingLayer(AttentionLayer):
    """Base of the mixing layers: the contract's arguments, masking and dropout around :meth:`mix`.

    Args:
        hidden_dim: Model width D.
        dropout: Dropout on the output.
        causal: Causal mixing (refused unless the class sets ``supports_causal``).
        init_weights: Initialisation mode of the layer's weights.
    """

    def __init__(self, hidden_dim: int, dropout: float, causal: bool, init_weights: str) -> None:
        super().__init__()
        self.check_options(causal=causal, dropout=dropout)
        self.hidden_dim, self.causal, self.init_weights = hidden_dim, causal, init_weights
        self.dropout = Dropout(dropout)

    def mix(self, x: Tensor) -> Tensor:
        """The token mixing of ``x`` (B, N, D), zero at masked positions, in its compute dtype."""
        raise NotImplementedError

    def forward(
        self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, None]:
        """Mix ``x`` (B, N, D); returns (B, N, D), or ``(out, None)`` (no attention weights)."""
        mask = check_input(x, mask, self.hidden_dim)
        y = self.mix(zero_masked(x, mask).to(compute_dtype(x)))  # (B, N, D)
        out = zero_masked(self.dropout(y.to(x.dtype)), mask)  # (B, N, D)
        return (out, None) if return_attention else out
