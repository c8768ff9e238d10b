r"""Token embedding whose compiled backward does not serialise on frequent tokens.

The lookup is :math:`h_{bn} = E_{t_{bn}}` for a table :math:`E \in \mathbb{R}^{V \times D}`,
and its gradient is the sum of the output gradients over the positions holding each token:

.. math::  \frac{\partial L}{\partial E_v} = \sum_{b, n:\ t_{bn} = v} g_{bn}.

Eagerly, PyTorch computes this by sorting the token ids (no contention). Under
``torch.compile``, Inductor lowers it to one atomic scatter-add into the ``(V, D)`` table,
and atomic adds to the same address run one after another: when a token fills most positions
(the black pixel of a Pathfinder image is most of its 1,024 tokens) the whole batch's
gradients queue on that token's ``D`` addresses. :class:`TokenEmbedding` computes the same sum
in two stages when it is compiled and the per-sample table is small (at most
:data:`PER_SAMPLE_MAX_ELEMENTS` entries): a scatter-add into a ``(B, V, D)`` table, one per
batch item (``B`` times fewer adds queue on any address), then a sum over ``b``. It does so
without a custom backward: the forward gathers rows from the table expanded over the batch,
:math:`h_{bn} = (E \text{ expanded to } B \times V \times D)_{b, t_{bn}}`, whose autograd
backward is exactly that two-stage sum. The values and gradients equal ``nn.Embedding``'s;
only the order of the floating-point additions differs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PER_SAMPLE_MAX_ELEMENTS = 1 << 24
"""Largest ``B V D`` for the per-sample gradient table (64 MiB in float32)."""


class TokenEmbedding(nn.Embedding):
    """``nn.Embedding`` (same parameters and state dict) with a contention-free compiled backward.

    Only ``num_embeddings`` and ``embedding_dim`` are taken: no padding index, norm clipping
    or sparse gradients, whose semantics the two-stage sum does not reproduce.

    Args:
        num_embeddings: Vocabulary size ``V``.
        embedding_dim: Width ``D``.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__(num_embeddings, embedding_dim)

    def forward(self, input_ids: Tensor) -> Tensor:
        """Rows of the table for ``input_ids`` ``(B, N)`` (any leading shape eagerly).

        Returns:
            ``(*input_ids.shape, D)``.
        """
        if not self.per_sample(input_ids):
            return F.embedding(input_ids, self.weight)
        batch, length = input_ids.shape
        table = self.weight.expand(batch, *self.weight.shape)  # (B, V, D), a view
        index = input_ids.unsqueeze(-1).expand(batch, length, self.embedding_dim)  # (B, N, D)
        return torch.gather(table, 1, index)  # (B, N, D)

    def per_sample(self, input_ids: Tensor) -> bool:
        """Whether the forward takes the expanded-table gather (compiled, 2-D ids, small)."""
        if input_ids.dim() != 2 or not torch.compiler.is_compiling():
            return False
        return input_ids.shape[0] * self.weight.numel() <= PER_SAMPLE_MAX_ELEMENTS
