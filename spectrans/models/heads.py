"""Pooling, the classification head, and the sequence and dual-encoder classifiers.

Pooling of hidden states h (B, N, D) with mask m (B, N) (True = real):

- ``cls``:  ``h[:, 0]`` (the model prepended a CLS token).
- ``mean``: ``sum_i m_i h_i / max(1, sum_i m_i)``.
- ``mean_all``: ``(1/N) sum_i h_i``, every position, masked ones included (the LRA code's
  ``MEAN`` pooling, ``jnp.mean`` over the sequence).
- ``last``: ``h[b, t_b]`` with ``t_b`` the index of the last real token of row b.

Head: ``Dense(D -> H_h) -> ReLU -> Dense(H_h -> C)`` (LRA's ``classifier_head``); the pair head
may have a second hidden layer, ``Dense(H_h) -> ReLU -> Dense(H_h // 2) -> ReLU -> Dense(C)``
(LRA's ``classifier_head_dual``, ``depth=2``).

Dual encoder (LRA retrieval): one shared encoder gives document features u and v, the head
sees ``[u, v, u*v, u-v]`` (``concat4``) or ``[u, v]`` (``concat2``). ``independent`` encoding
runs each document alone (it attends only to itself: the LRA protocol); ``joint`` encodes the
concatenation ``[doc_a; doc_b]`` in one sequence, and an attention-pattern set over the token
groups ``doc_a``/``doc_b`` decides who attends to whom.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spectrans.config.patterns import TokenSpec
from spectrans.layers.attention.base import init_linear
from spectrans.models.base import BaseModel


def pool(h: Tensor, mask: Tensor | None, pooling: str) -> Tensor:
    """Pool (B, N, D) hidden states to (B, D); see the module docstring."""
    if pooling == "cls":
        return h[:, 0]  # (B, D)
    if pooling == "mean":
        if mask is None:
            return h.mean(1)
        weights = mask.to(h.dtype).unsqueeze(-1)  # (B, N, 1)
        return (h * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, D)
    if pooling == "mean_all":
        return h.mean(1)  # (B, D)
    if pooling == "last":
        if mask is None:
            return h[:, -1]
        positions = torch.arange(h.shape[1], device=h.device)  # (N,)
        last = (positions * mask.long()).argmax(-1)  # (B,)
        return h[torch.arange(h.shape[0], device=h.device), last]  # (B, D)
    raise ValueError(f"unknown pooling '{pooling}'; choose cls, mean, mean_all or last")


def head_init(mode: str, output: bool = False) -> str:
    """The init mode of a classifier-head linear under the model's ``mode``.

    ``xavier`` (the LRA code) gives the head flax's ``Dense`` default, LeCun normal
    (``truncnormal``: std ``1/sqrt(fan_in)``); otherwise the hidden linears follow ``mode`` and
    the output linear starts at ``truncnormal002`` (``torch`` leaves every linear to PyTorch).
    """
    if mode == "xavier":
        return "truncnormal"
    if mode == "torch" or not output:
        return mode
    return "truncnormal002"


class ClassifierHead(nn.Module):
    """``Dense -> ReLU -> Dense`` (or, ``depth=2``, two hidden layers of widths H and H/2).

    Args:
        in_dim: Feature width.
        hidden_dim: Width H of the (first) hidden layer.
        num_classes: Number of logits C.
        init_weights: Init mode of the linears.
        depth: Hidden layers: 1, or 2 (the second of width ``hidden_dim // 2``).
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        num_classes: int,
        init_weights: str = "truncnormal002",
        depth: int = 1,
    ) -> None:
        super().__init__()
        if depth not in (1, 2) or (depth == 2 and hidden_dim < 2):
            raise ValueError(f"head depth must be 1 or 2 (with hidden_dim >= 2), got {depth}")
        self.dense = nn.Linear(in_dim, hidden_dim)
        self.act = nn.ReLU()
        self.dense2 = nn.Linear(hidden_dim, hidden_dim // 2) if depth == 2 else None
        self.out = nn.Linear(hidden_dim // 2 if depth == 2 else hidden_dim, num_classes)
        init_linear(self.dense, head_init(init_weights))
        if self.dense2 is not None:
            init_linear(self.dense2, head_init(init_weights))
        init_linear(self.out, head_init(init_weights, output=True))

    def live_units(self, features: Tensor) -> Tensor:
        """How many units of the first hidden layer are positive for at least one row; () int.

        A unit that is 0 (ReLU of a non-positive input) for every input passes no gradient to
        its weights or to anything before it; with none left, only the output layer's bias
        learns, and the logits are the same for every input.
        """
        return (self.dense(features) > 0).any(dim=0).sum()  # ()

    def forward(self, features: Tensor) -> Tensor:
        """(B, F) -> (B, C)."""
        h = self.act(self.dense(features))  # (B, H)
        if self.dense2 is not None:
            h = self.act(self.dense2(h))  # (B, H/2)
        return self.out(h)  # (B, C)


class SequenceClassifier(nn.Module):
    """Encoder, pooling, head.

    Args:
        encoder: A :class:`~spectrans.models.base.BaseModel` (with a CLS token for ``cls``).
        pooling: ``cls`` | ``mean`` | ``last``.
        num_classes: Number of logits.
        head_hidden_dim: Head MLP width.
        init_weights: Head init mode.
    """

    def __init__(
        self,
        encoder: BaseModel,
        pooling: str,
        num_classes: int,
        head_hidden_dim: int,
        init_weights: str = "truncnormal002",
    ) -> None:
        super().__init__()
        if pooling == "cls" and encoder.cls_token is None:
            raise ValueError("pooling='cls' needs an encoder built with a CLS token")
        self.encoder = encoder
        self.pooling = pooling
        self.head = ClassifierHead(encoder.hidden_dim, head_hidden_dim, num_classes, init_weights)

    def features(
        self,
        input_ids: Tensor | None = None,
        input_values: Tensor | None = None,
        attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
    ) -> Tensor:
        """The pooled features the head reads, (B, D)."""
        h, mask = self.encoder.hidden_states(
            input_ids, inputs_embeds, attention_mask, input_values
        )  # (B, N', D)
        return pool(h, mask, self.pooling)  # (B, D)

    def forward(
        self,
        input_ids: Tensor | None = None,
        input_values: Tensor | None = None,
        attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
    ) -> Tensor:
        """Logits (B, C)."""
        features = self.features(input_ids, input_values, attention_mask, inputs_embeds)
        return self.head(features)  # (B, C)


class DualEncoderClassifier(nn.Module):
    """Shared encoder on two documents, pair features, head.

    Args:
        encoder: The shared encoder; for ``joint`` it must have been built with attention
            patterns over the groups ``doc_a`` and ``doc_b``.
        pooling: ``cls`` | ``mean`` | ``last`` (per document).
        num_classes: Number of logits.
        head_hidden_dim: Head MLP width.
        interaction: ``concat4`` (``[u, v, u*v, u-v]``) or ``concat2`` (``[u, v]``).
        encoding: ``independent`` | ``joint``.
        init_weights: Head init mode.
        head: ``mlp`` (one hidden layer) or ``lra`` (two, as LRA's ``classifier_head_dual``).
    """

    def __init__(
        self,
        encoder: BaseModel,
        pooling: str,
        num_classes: int,
        head_hidden_dim: int,
        interaction: str = "concat4",
        encoding: str = "independent",
        init_weights: str = "truncnormal002",
        head: str = "mlp",
    ) -> None:
        super().__init__()
        if interaction not in ("concat4", "concat2"):
            raise ValueError(
                f"unknown retrieval_interaction '{interaction}'; choose concat4 or concat2"
            )
        if encoding not in ("independent", "joint"):
            raise ValueError(
                f"unknown retrieval_encoding '{encoding}'; choose independent or joint"
            )
        if head not in ("mlp", "lra"):
            raise ValueError(f"unknown retrieval_head '{head}'; choose mlp or lra")
        if pooling == "cls" and encoder.cls_token is None:
            raise ValueError("pooling='cls' needs an encoder built with a CLS token")
        self.encoder = encoder
        self.pooling = pooling
        self.interaction = interaction
        self.encoding = encoding
        width = encoder.hidden_dim * (4 if interaction == "concat4" else 2)
        depth = 2 if head == "lra" else 1
        self.head = ClassifierHead(width, head_hidden_dim, num_classes, init_weights, depth)

    def encode_pair(
        self,
        input_ids_a: Tensor,
        attention_mask_a: Tensor | None,
        input_ids_b: Tensor,
        attention_mask_b: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        """Pooled document features ``(u, v)``, each (B, D)."""
        if self.encoding == "independent":
            same_shape = input_ids_a.shape == input_ids_b.shape
            if same_shape and (attention_mask_a is None) == (attention_mask_b is None):
                # one pass over both documents stacked on the batch axis (rows are independent)
                masks = (
                    None
                    if attention_mask_a is None
                    else torch.cat([attention_mask_a, attention_mask_b], 0)
                )  # (2B, N)
                h, m = self.encoder.hidden_states(
                    torch.cat([input_ids_a, input_ids_b], 0), attention_mask=masks
                )  # (2B, N', D)
                u, v = pool(h, m, self.pooling).chunk(2, 0)  # (B, D) each
                return u, v
            h_a, m_a = self.encoder.hidden_states(input_ids_a, attention_mask=attention_mask_a)
            h_b, m_b = self.encoder.hidden_states(input_ids_b, attention_mask=attention_mask_b)
            return pool(h_a, m_a, self.pooling), pool(h_b, m_b, self.pooling)
        e_a, m_a = self.encoder.embed(input_ids_a, attention_mask=attention_mask_a)
        e_b, m_b = self.encoder.embed(input_ids_b, attention_mask=attention_mask_b)
        n_a, n_b = e_a.shape[1], e_b.shape[1]
        m_a = m_a if m_a is not None else e_a.new_ones(e_a.shape[:2], dtype=torch.bool)
        m_b = m_b if m_b is not None else e_b.new_ones(e_b.shape[:2], dtype=torch.bool)
        specs = [TokenSpec(name="doc_a", size=n_a), TokenSpec(name="doc_b", size=n_b)]
        mask = torch.cat([m_a, m_b], 1)  # (B, N_a + N_b)
        h = self.encoder.encode(torch.cat([e_a, e_b], 1), mask, token_specs=specs)
        return pool(h[:, :n_a], m_a, self.pooling), pool(h[:, n_a:], m_b, self.pooling)

    def features(
        self,
        input_ids_a: Tensor,
        attention_mask_a: Tensor | None,
        input_ids_b: Tensor,
        attention_mask_b: Tensor | None,
    ) -> Tensor:
        """The pair features the head reads: (B, 4D) ``concat4`` or (B, 2D) ``concat2``."""
        u, v = self.encode_pair(input_ids_a, attention_mask_a, input_ids_b, attention_mask_b)
        if self.interaction == "concat4":
            return torch.cat([u, v, u * v, u - v], -1)  # (B, 4D)
        return torch.cat([u, v], -1)  # (B, 2D)

    def forward(
        self,
        input_ids_a: Tensor,
        attention_mask_a: Tensor | None,
        input_ids_b: Tensor,
        attention_mask_b: Tensor | None,
    ) -> Tensor:
        """Logits (B, C)."""
        features = self.features(input_ids_a, attention_mask_a, input_ids_b, attention_mask_b)
        return self.head(features)  # (B, C)
