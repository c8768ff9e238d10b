"""Pre-norm block: formula, exact masking, gradient checkpointing equal to plain."""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from spectrans.layers.attention.base import AttentionLayer, zero_masked
from spectrans.layers.attention.projections import add_qkv_projections, merge_heads, project_qkv
from spectrans.layers.blocks import PreNormBlock
from spectrans.layers.feedforward import FeedForward


class StandInSoftmax(AttentionLayer):
    """Exact softmax attention with dropout on the weights (stand-in mixer)."""

    has_queries_keys = True
    has_scores = True

    def __init__(self, hidden_dim: int, num_heads: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.drop = torch.nn.Dropout(dropout)
        add_qkv_projections(
            self,
            hidden_dim,
            num_heads,
            hidden_dim // num_heads,
            bias=True,
            qk_norm=False,
            use_rope=False,
            init_weights="truncnormal",
        )

    def forward(self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False):
        q, k, v = project_qkv(self, x)
        scores = (q @ k.transpose(-2, -1)) / q.shape[-1] ** 0.5
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        out = self.out_proj(merge_heads(self.drop(scores.softmax(-1)) @ v))
        return zero_masked(out, mask)


def make_block(dropout: float = 0.0, checkpointing: bool = False) -> PreNormBlock:
    return PreNormBlock(
        StandInSoftmax(8, dropout=dropout),
        8,
        16,
        dropout=dropout,
        init_weights="truncnormal",
        gradient_checkpointing=checkpointing,
    )


def test_block_is_prenorm_residual() -> None:
    torch.manual_seed(0)
    block = make_block().eval()
    x = torch.randn(2, 5, 8)
    h = x + block.mixer(block.norm1(x))
    want = h + block.ffn.fc2(torch.nn.functional.gelu(block.ffn.fc1(block.norm2(h))))
    assert torch.allclose(block(x), want, atol=1e-6)


def test_feedforward_relu_and_identity_init() -> None:
    ffn = FeedForward(4, 8, activation="relu", init_weights="truncnormal002-identity")
    assert torch.equal(ffn(torch.randn(3, 4)), ffn.fc2.bias.expand(3, 4))
    assert ffn.fc2.weight.abs().max() == 0


def test_padding_does_not_move_real_outputs() -> None:
    torch.manual_seed(1)
    block = make_block().eval()
    x = torch.randn(2, 6, 8)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 0, 1, 1, 1]], dtype=torch.bool)
    y = x.clone()
    y[~mask] = 50 * torch.randn(int((~mask).sum()), 8)
    assert (block(x, mask) - block(y, mask))[mask].abs().max() <= 1e-6


def test_checkpointing_gives_same_outputs_and_gradients_with_dropout() -> None:
    torch.manual_seed(2)
    plain = make_block(dropout=0.2).train()
    checkpointed = make_block(dropout=0.2, checkpointing=True).train()
    checkpointed.load_state_dict(copy.deepcopy(plain.state_dict()))
    x = torch.randn(2, 6, 8)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1] * 6], dtype=torch.bool)
    results = []
    for block in (plain, checkpointed):
        xi = x.clone().requires_grad_(True)
        torch.manual_seed(3)
        out = block(xi, mask)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads = [p.grad.clone() for p in block.parameters()]
        results.append((out.detach(), xi.grad.clone(), grads))
    (out_a, gx_a, g_a), (out_b, gx_b, g_b) = results
    assert torch.allclose(out_a, out_b, atol=1e-6)
    assert torch.allclose(gx_a, gx_b, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_a, g_b))
    # the dropout really was active (else the comparison would be weaker than it looks)
    torch.manual_seed(4)
    assert not torch.allclose(plain(x, mask), out_a)
