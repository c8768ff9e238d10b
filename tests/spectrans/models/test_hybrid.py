"""Hybrid and alternating encoders: block layout, masks, causality, config path."""

from __future__ import annotations

import pytest
import torch

from spectrans.config.models import HybridModelConfig
from spectrans.models import build_classifier
from spectrans.models.hybrid import AlternatingTransformer, HybridEncoder


@pytest.mark.parametrize(("every", "layout"), [(1, "SSSS"), (2, "MSMS"), (3, "MMSM")])
def test_softmax_every_attention_every_blocks(every: int, layout: str) -> None:
    enc = HybridEncoder(
        {"name": "wavelet"}, vocab_size=10, hidden_dim=16, num_layers=4, attention_every=every
    )
    names = "".join(
        "S" if type(b.mixer).__name__ == "SoftmaxAttention" else "M" for b in enc.blocks
    )
    assert names == layout


def test_hybrid_classifier_ignores_padding_and_is_built_from_its_config() -> None:
    cfg = HybridModelConfig(
        hidden_dim=16,
        num_layers=2,
        ffn_hidden_dim=32,
        head_hidden_dim=16,
        dropout=0.0,
        attention_heads=2,
        max_sequence_length=32,
    )
    torch.manual_seed(0)
    model = build_classifier(
        cfg,
        {"name": "s4d", "bidirectional": True},
        vocab_size=20,
        num_classes=3,
        max_length=12,
        pair=False,
    ).eval()
    assert isinstance(model.encoder, HybridEncoder)
    assert model.encoder.blocks[1].mixer.num_heads == 2
    ids = torch.randint(1, 20, (2, 12))
    mask = torch.arange(12)[None] < torch.tensor([[12], [5]])
    other = ids.clone()
    other[~mask] = 7
    with torch.no_grad():
        assert (
            model(input_ids=ids, attention_mask=mask) - model(input_ids=other, attention_mask=mask)
        ).abs().max() <= 1e-6


def test_causal_hybrid_is_causal() -> None:
    torch.manual_seed(1)
    enc = HybridEncoder(
        {"name": "s4d", "causal": True},
        vocab_size=10,
        hidden_dim=16,
        num_layers=2,
        attention_heads=2,
        positional_encoding_type="learned",
        max_sequence_length=32,
    ).eval()
    assert enc.blocks[1].mixer.causal
    ids = torch.randint(0, 10, (2, 12))
    future = ids.clone()
    future[:, 6:] = (future[:, 6:] + 1) % 10
    with torch.no_grad():
        a, b = enc(ids), enc(future)
    assert (a[:, :6] - b[:, :6]).abs().max() <= 1e-5
    assert (a[:, 6:] - b[:, 6:]).abs().max() > 1e-4


def test_alternating_transformer_and_bad_period() -> None:
    model = AlternatingTransformer(
        vocab_size=10,
        hidden_dim=16,
        num_layers=3,
        num_classes=2,
        layer1_type="afno",
        layer1_config={"num_blocks": 4},
        layer2_config={"num_heads": 2},
    )
    kinds = [type(b.mixer).__name__ for b in model.blocks]
    assert kinds == ["AFNOMixing", "SoftmaxAttention", "AFNOMixing"]
    assert model(torch.randint(0, 10, (2, 7))).shape == (2, 2)
    with pytest.raises(ValueError, match="attention_every"):
        HybridEncoder({"name": "fnet"}, hidden_dim=16, attention_every=0)
    with pytest.raises(ValueError, match="attention_heads"):
        HybridModelConfig(hidden_dim=18, attention_heads=4)
