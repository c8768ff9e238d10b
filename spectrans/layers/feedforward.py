"""Position-wise feed-forward network: ``FFN(x) = W_2 drop(act(W_1 x + b_1)) + b_2``.

It acts on each position alone, so it is causal-safe and mask-safe by construction.
"""

from __future__ import annotations

from torch import Tensor, nn

from spectrans.layers.attention.base import init_linear
from spectrans.layers.dropout import Dropout

_ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}


class FeedForward(nn.Module):
    """Two linear maps with a nonlinearity between them.

    Args:
        hidden_dim: Model width D.
        ffn_hidden_dim: Inner width F.
        dropout: Dropout after the nonlinearity.
        activation: ``gelu`` or ``relu``.
        init_weights: ``InitWeightsMode`` of both linears (``*-identity`` zeroes ``W_2``).
    """

    def __init__(
        self,
        hidden_dim: int,
        ffn_hidden_dim: int,
        dropout: float = 0.0,
        activation: str = "gelu",
        init_weights: str = "truncnormal002",
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown ffn activation '{activation}'; choose gelu or relu")
        self.fc1 = nn.Linear(hidden_dim, ffn_hidden_dim)
        self.act = _ACTIVATIONS[activation]()
        self.drop = Dropout(dropout)
        self.fc2 = nn.Linear(ffn_hidden_dim, hidden_dim)
        init_linear(self.fc1, init_weights)
        init_linear(self.fc2, init_weights, zero=init_weights == "truncnormal002-identity")

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, N, D) -> (B, N, D)."""
        return self.fc2(self.drop(self.act(self.fc1(x))))  # (B, N, D)
