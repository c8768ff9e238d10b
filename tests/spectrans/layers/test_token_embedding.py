"""spectrans.layers.token_embedding: nn.Embedding's values and gradients, summed per sample."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spectrans.layers import token_embedding
from spectrans.layers.token_embedding import TokenEmbedding


def _pair(vocab: int = 7, dim: int = 5) -> tuple[TokenEmbedding, nn.Embedding]:
    ours = TokenEmbedding(vocab, dim).double()
    oracle = nn.Embedding(vocab, dim).double()
    oracle.load_state_dict(ours.state_dict())
    return ours, oracle


def _skewed_ids(batch: int, length: int, vocab: int) -> torch.Tensor:
    """Token 0 at most positions, as Pathfinder's black pixels, the rest random."""
    ids = torch.randint(0, vocab, (batch, length))
    return torch.where(torch.rand(batch, length) < 0.8, torch.zeros_like(ids), ids)


def _value_and_grad(module: nn.Module, ids: torch.Tensor, g: torch.Tensor) -> tuple:
    module.zero_grad(set_to_none=True)
    out = module(ids)
    (out * g).sum().backward()
    return out.detach(), module.weight.grad.clone()


@pytest.mark.parametrize("shape", [(3, 11), (1, 8), (4, 1)])
def test_the_per_sample_sum_is_the_embedding_gradient(
    monkeypatch: pytest.MonkeyPatch, shape: tuple[int, int]
) -> None:
    """The expanded-table gather (taken when compiling) against nn.Embedding in float64."""
    torch.manual_seed(0)
    ours, oracle = _pair()
    ids = _skewed_ids(*shape, vocab=7)
    g = torch.randn(*shape, 5, dtype=torch.float64)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert ours.per_sample(ids)
    out, grad = _value_and_grad(ours, ids, g)
    out_ref, grad_ref = _value_and_grad(oracle, ids, g)
    torch.testing.assert_close(out, out_ref, rtol=0, atol=0)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-12, atol=1e-12)
    unused = torch.ones(7, dtype=torch.bool)
    unused[ids.unique()] = False
    assert grad[unused].abs().max().item() == 0.0  # tokens absent from the batch get no gradient


def test_eagerly_and_for_large_tables_it_is_the_plain_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours, _ = _pair()
    ids = _skewed_ids(2, 6, vocab=7)
    assert not ours.per_sample(ids)  # not compiling
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert not ours.per_sample(ids[0])  # 1-D ids
    monkeypatch.setattr(token_embedding, "PER_SAMPLE_MAX_ELEMENTS", 2 * 7 * 5 - 1)
    assert not ours.per_sample(ids)  # B V D over the limit


def test_compiled_gradients_match_the_eager_embedding() -> None:
    """Through torch.compile (Inductor on the CPU), skewed ids, float32."""
    torch.manual_seed(1)
    ours, oracle = _pair(vocab=16, dim=8)
    ours, oracle = ours.float(), oracle.float()
    ids = _skewed_ids(4, 64, vocab=16)
    g = torch.randn(4, 64, 8)
    compiled = torch.compile(ours, backend="inductor", fullgraph=True)
    out, grad = _value_and_grad(compiled, ids, g)
    out_ref, grad_ref = _value_and_grad(oracle, ids, g)
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-5, atol=1e-5)


def test_the_state_dict_is_nn_embeddings() -> None:
    ours = TokenEmbedding(7, 5)
    assert list(ours.state_dict()) == ["weight"] and isinstance(ours, nn.Embedding)
