"""Dropout with hashed masks: the rate, independence, scaling, gradient and compiled form."""

from __future__ import annotations

import math

import pytest
import torch

from experiments.bench_specs import default_specs
from spectrans.config.layers import parse_layer_config
from spectrans.config.models import EncoderModelConfig
from spectrans.layers import dropout as dropout_module
from spectrans.layers.dropout import Dropout, hashed_dropout, hashed_keep
from spectrans.models import build_classifier

N = 1 << 20


def _seeds(a: int, b: int) -> torch.Tensor:
    return torch.tensor([a, b], dtype=torch.int32)


def _within_sigmas(rate: float, expected: float, n: int, sigmas: float = 6.0) -> bool:
    return abs(rate - expected) <= sigmas * math.sqrt(expected * (1 - expected) / n)


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.9])
def test_keep_rate_is_one_minus_p(p: float) -> None:
    for seeds in (_seeds(0, 0), _seeds(12345, -987654321), _seeds(-(1 << 31), (1 << 31) - 1)):
        keep = hashed_keep((N,), p, seeds)
        assert keep.dtype == torch.bool and keep.shape == (N,)
        assert _within_sigmas(keep.float().mean().item(), 1 - p, N)


def test_neighbours_and_strided_pairs_are_independent() -> None:
    p = 0.1
    keep = hashed_keep((N,), p, _seeds(7, 11)).float()
    for lag in (1, 2, 3, 16, 512, 1024, 4096):  # e.g. the next token at widths 512 and 1024
        both = (keep[:-lag] * keep[lag:]).mean().item()
        assert _within_sigmas(both, (1 - p) ** 2, N - lag)


def test_calls_with_other_seeds_are_independent_even_when_shifted() -> None:
    """Each call draws both seeds afresh: pairs that differ in both, by little or at random."""
    p = 0.5
    first = hashed_keep((N,), p, _seeds(1, 2)).float()
    drawn = torch.randint(
        -(1 << 31), (1 << 31) - 1, (2,), generator=torch.Generator().manual_seed(0)
    )
    for seeds in (_seeds(2, 3), _seeds(0, 1), _seeds(3, 0), drawn.to(torch.int32)):
        other = hashed_keep((N,), p, seeds).float()
        for shift in range(0, 9):
            agree = (first[shift:] == other[: N - shift]).float().mean().item()
            assert _within_sigmas(agree, 0.5, N - shift)


def test_same_seeds_give_the_same_mask_at_any_shape() -> None:
    seeds = _seeds(3, 4)
    flat = hashed_keep((6 * 7 * 8,), 0.3, seeds)
    assert torch.equal(hashed_keep((6, 7, 8), 0.3, seeds).flatten(), flat)


def test_output_is_zero_or_scaled_input_and_gradient_is_the_mask() -> None:
    p = 0.25
    x = torch.randn(4, 33, 65, dtype=torch.float64, requires_grad=True)
    seeds = _seeds(5, 6)
    y = hashed_dropout(x, p, seeds)
    keep = hashed_keep(x.shape, p, seeds)
    torch.testing.assert_close(y, torch.where(keep, x / (1 - p), torch.zeros_like(x)))
    y.sum().backward()
    torch.testing.assert_close(x.grad, keep.double() / (1 - p))


def test_module_is_native_dropout_in_eager_code_and_identity_in_eval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dropout_module, "HASHED_MASKS_WHEN_COMPILED", True)
    layer = Dropout(0.3)
    x = torch.randn(64, 64)
    torch.manual_seed(0)
    got = layer(x)
    torch.manual_seed(0)
    torch.testing.assert_close(got, torch.nn.functional.dropout(x, 0.3, True))
    assert torch.equal(layer.eval()(x), x)
    assert isinstance(layer, torch.nn.Dropout)


def test_compiled_module_draws_hashed_masks_that_equal_the_eager_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inductor's code and eager PyTorch wrap int32 products the same way."""
    monkeypatch.setattr(dropout_module, "HASHED_MASKS_WHEN_COMPILED", True)
    drawn: list[torch.Tensor] = []
    real_draw = dropout_module.draw_seeds

    def fixed_seeds(device: torch.device) -> torch.Tensor:
        drawn.append(real_draw(device))
        return torch.tensor([123456789, -55555], dtype=torch.int32, device=device)

    monkeypatch.setattr(dropout_module, "draw_seeds", fixed_seeds)
    torch._dynamo.reset()
    layer = Dropout(0.1)
    x = torch.randn(8, 257, 64, requires_grad=True)  # (B, N, D)
    y = torch.compile(layer, backend="inductor", fullgraph=True)(x)
    assert drawn, "the compiled layer took the hashed path"
    keep = hashed_keep(x.shape, 0.1, torch.tensor([123456789, -55555], dtype=torch.int32))
    torch.testing.assert_close(y, torch.where(keep, x / 0.9, torch.zeros_like(x)))
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, keep.float() / 0.9)


@pytest.mark.parametrize(
    "spec",
    [s for s in default_specs(32, 4) if s.config.get("name") is not None],
    ids=lambda s: s.label,
)
def test_every_dropout_of_a_model_is_the_library_dropout(spec: object) -> None:
    """So the hashed masks, when switched on, reach every dropout site of every model."""
    mixer = parse_layer_config({**spec.config, "dropout": 0.1})  # type: ignore[attr-defined]
    model = build_classifier(
        EncoderModelConfig(hidden_dim=32, num_layers=1, dropout=0.1, max_sequence_length=16),
        mixer,
        vocab_size=8,
        num_classes=2,
        max_length=16,
        pair=False,
    )
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(isinstance(m, Dropout) for m in dropouts)


def test_the_keep_mask_follows_the_dropout(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = dropout_module.Dropout(0.25)
    device = torch.device("cpu")
    layer.eval()
    assert dropout_module.keep_mask(layer, (2, 3), device) is None
    layer.train()
    assert dropout_module.keep_mask(dropout_module.Dropout(0.0), (2, 3), device) is None
    torch.manual_seed(0)
    keep = dropout_module.keep_mask(layer, (400, 500), device)
    assert keep.dtype == torch.bool and abs(keep.float().mean().item() - 0.75) < 0.01
    monkeypatch.setattr(dropout_module, "HASHED_MASKS_WHEN_COMPILED", True)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    torch.manual_seed(1)
    seeds = dropout_module.draw_seeds(device)
    torch.manual_seed(1)
    want = dropout_module.hashed_keep((40, 50), 0.25, seeds)
    assert torch.equal(dropout_module.keep_mask(layer, (40, 50), device), want)
