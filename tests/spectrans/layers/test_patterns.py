"""Attention patterns: validation, and PatternAttention against a dense float64 oracle."""

from __future__ import annotations

import importlib

import pytest
import torch
from pydantic import ValidationError
from torch import Tensor

from spectrans.config.patterns import (
    AttentionPattern,
    AttentionPatternSet,
    TokenSpec,
    independent_patterns,
    joint_patterns,
    validate_attention_patterns,
)
from spectrans.layers.attention.base import AttentionLayer, zero_masked
from spectrans.layers.attention.projections import add_qkv_projections, merge_heads, project_qkv
from spectrans.layers.patterns import PatternAttention, pattern_block_mask


class StandInSoftmax(AttentionLayer):
    """Exact softmax attention on the shared projections (stand-in for SoftmaxAttention)."""

    has_queries_keys = True
    has_scores = True
    supports_causal = True

    def __init__(self, hidden_dim: int, num_heads: int = 2, causal: bool = False) -> None:
        super().__init__()
        self.causal, self.dropout = causal, 0.0
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
        n = x.shape[1]
        allowed = torch.ones(x.shape[0], n, n, dtype=torch.bool)
        if mask is not None:
            allowed = allowed & mask[:, None, :]
        scores = (q @ k.transpose(-2, -1)) / q.shape[-1] ** 0.5
        scores = scores.masked_fill(~allowed[:, None], float("-inf"))
        out = self.out_proj(merge_heads(scores.softmax(-1) @ v))
        return zero_masked(out, mask)


def softmax_layers(hidden_dim: int) -> list[AttentionLayer]:
    layers: list[AttentionLayer] = [StandInSoftmax(hidden_dim)]
    try:
        module = importlib.import_module("spectrans.layers.attention.softmax")
        layers.append(module.SoftmaxAttention(hidden_dim=hidden_dim, num_heads=2))
    except ImportError:
        pass
    return layers


SPECS = [
    TokenSpec(name="doc_a", size=4),
    TokenSpec(name="doc_b", size=3),
    TokenSpec(name="doc_c", size=2),
]


def test_token_spec_round_trip_and_name_parts() -> None:
    spec = TokenSpec.from_dict({"surface_anchors": 5})
    assert spec.to_dict() == {"surface_anchors": 5}
    assert (spec.domain, spec.attn_type) == ("surface", "anchors")
    with pytest.raises(ValueError, match="exactly one"):
        TokenSpec.from_dict({"a": 1, "b": 2})


def test_validation_rejects_missing_group() -> None:
    patterns = [AttentionPattern(query_tokens=["doc_a", "doc_b"], key_value_tokens=["doc_a"])]
    with pytest.raises(ValueError, match="'doc_c' is not a query"):
        validate_attention_patterns(SPECS, patterns)
    with pytest.raises(ValidationError, match="'doc_c' is not a query"):
        AttentionPatternSet(tokens=SPECS, patterns=patterns)


def test_validation_rejects_group_listed_as_query_twice() -> None:
    patterns = [
        *independent_patterns(["doc_a", "doc_b", "doc_c"]),
        AttentionPattern(query_tokens=["doc_b"], key_value_tokens=["doc_a"]),
    ]
    with pytest.raises(ValueError, match="'doc_b' is a query in 2"):
        validate_attention_patterns(SPECS, patterns)


def test_validation_rejects_unknown_group_and_accepts_complete_sets() -> None:
    with pytest.raises(ValueError, match="unknown token group 'doc_z'"):
        validate_attention_patterns(
            SPECS,
            [
                AttentionPattern(
                    query_tokens=["doc_a", "doc_b", "doc_c"], key_value_tokens=["doc_z"]
                )
            ],
        )
    validate_attention_patterns(SPECS, joint_patterns(["doc_a", "doc_b", "doc_c"]))
    validate_attention_patterns(SPECS, independent_patterns(["doc_a", "doc_b", "doc_c"]))


def test_block_mask_matches_the_listed_groups() -> None:
    patterns = [
        AttentionPattern(query_tokens=["doc_a"], key_value_tokens=["doc_a", "doc_c"]),
        AttentionPattern(query_tokens=["doc_b", "doc_c"], key_value_tokens=["doc_b"]),
    ]
    block = pattern_block_mask(SPECS, patterns, 9)
    group = [0] * 4 + [1] * 3 + [2] * 2
    sees = {0: {0, 2}, 1: {1}, 2: {1}}
    expected = torch.tensor([[group[j] in sees[group[i]] for j in range(9)] for i in range(9)])
    assert torch.equal(block, expected)


def dense_oracle(layer: AttentionLayer, x: Tensor, mask: Tensor, allowed: Tensor) -> Tensor:
    """float64 loops: out_i = W_o sum_{j allowed, real} softmax(q_i k_j / sqrt d) v_j."""
    layer = layer.double()
    q, k, v = project_qkv(layer, x.double())  # (B, H, N, d)
    batch, heads, n, d = q.shape
    out = torch.zeros(batch, heads, n, d, dtype=torch.float64)
    valid = torch.zeros(batch, n, 1, dtype=torch.float64)  # real query with a visible key
    for b in range(batch):
        for i in range(n):
            keys = [j for j in range(n) if allowed[i, j] and mask[b, j]]
            if not mask[b, i] or not keys:
                continue
            valid[b, i] = 1.0
            for h in range(heads):
                scores = torch.stack([q[b, h, i] @ k[b, h, j] / d**0.5 for j in keys])
                weights = scores.softmax(0)
                out[b, h, i] = sum(w * v[b, h, j] for w, j in zip(weights, keys))
    result = layer.out_proj(merge_heads(out)) * valid
    layer.float()
    return result


@pytest.mark.parametrize("layer_index", [0, 1])
def test_pattern_attention_equals_dense_oracle(layer_index: int) -> None:
    torch.manual_seed(0)
    layers = softmax_layers(8)
    if layer_index >= len(layers):
        pytest.skip("spectrans.layers.attention.softmax does not import yet")
    layer = layers[layer_index].eval()
    patterns = [
        AttentionPattern(query_tokens=["doc_a"], key_value_tokens=["doc_a", "doc_b"]),
        AttentionPattern(query_tokens=["doc_b"], key_value_tokens=["doc_b"]),
        AttentionPattern(query_tokens=["doc_c"], key_value_tokens=["doc_a", "doc_c"]),
    ]
    x = torch.randn(2, 9, 8)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[0, 2:4] = False  # padding inside doc_a
    mask[1, 4:7] = False  # all of doc_b is padding: its queries see nothing
    got = PatternAttention(layer, patterns, SPECS).eval()(x, mask)
    want = dense_oracle(layer, x, mask, pattern_block_mask(SPECS, patterns, 9))
    assert torch.allclose(got.double(), want, atol=1e-5)
    assert torch.isfinite(got).all()


def test_independent_pattern_equals_each_group_alone_and_joint_differs() -> None:
    torch.manual_seed(1)
    layer = StandInSoftmax(8).eval()
    specs = SPECS[:2]
    x = torch.randn(2, 7, 8)
    independent = PatternAttention(layer, independent_patterns(["doc_a", "doc_b"]))
    got = independent(x, None, token_specs=specs)
    alone = torch.cat([layer(x[:, :4]), layer(x[:, 4:])], 1)
    assert torch.allclose(got, alone, atol=1e-6)
    joint = PatternAttention(layer, joint_patterns(["doc_a", "doc_b"]))(x, None, token_specs=specs)
    assert torch.allclose(joint, layer(x), atol=1e-6)
    assert (joint - got).abs().max() > 1e-3


def test_padding_never_moves_real_outputs() -> None:
    torch.manual_seed(2)
    layer = PatternAttention(
        StandInSoftmax(8), joint_patterns(["doc_a", "doc_b"]), SPECS[:2]
    ).eval()
    x = torch.randn(2, 7, 8)
    mask = torch.tensor([[1, 1, 1, 0, 1, 1, 0], [1, 1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    y = x.clone()
    y[~mask] = 100 * torch.randn(int((~mask).sum()), 8)
    out_x, out_y = layer(x, mask), layer(y, mask)
    assert (out_x - out_y)[mask].abs().max() <= 1e-6
    assert out_x[~mask].abs().max() == 0


def test_refuses_layers_without_scores_in_one_sentence() -> None:
    class NoScores(AttentionLayer):
        def forward(self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False):
            return x

    with pytest.raises(ValueError, match="softmax-style attention") as info:
        PatternAttention(NoScores(), joint_patterns(["doc_a"]))
    assert "\n" not in str(info.value)


def test_wrong_group_sizes_are_refused() -> None:
    layer = PatternAttention(StandInSoftmax(8), joint_patterns(["doc_a", "doc_b"]), SPECS[:2])
    with pytest.raises(ValueError, match="sum to the sequence length 6"):
        layer(torch.randn(1, 6, 8))
