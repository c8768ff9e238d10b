"""The spectral-attention comparison models: original constructor arguments, our layers."""

from __future__ import annotations

import torch

import spectrans.layers.mixing as mixing
import spectrans.transforms.spectral as spectral
from spectrans.layers.attention.spectral import PerformerAttention, SpectralAttention
from spectrans.models.spectral_attention import (
    PerformerTransformer,
    SpectralAttentionEncoder,
    SpectralAttentionTransformer,
)


def test_spectral_attention_transformer_arguments_reach_the_layers() -> None:
    model = SpectralAttentionTransformer(
        vocab_size=20,
        hidden_dim=32,
        num_layers=2,
        max_sequence_length=64,
        num_heads=4,
        num_features=16,
        kernel_type="gaussian",
        use_orthogonal=True,
        num_classes=3,
        ffn_hidden_dim=48,
        dropout=0.0,
        use_positional_encoding=True,
        positional_encoding_type="learned",
        gradient_checkpointing=True,
    )
    layer = model.blocks[0].mixer
    assert isinstance(layer, SpectralAttention) and not isinstance(layer, PerformerAttention)
    assert (layer.num_heads, layer.num_features, layer.kernel_type) == (4, 16, "gaussian")
    assert all(b.gradient_checkpointing for b in model.blocks)
    ids = torch.randint(0, 20, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 5:] = False
    assert model(input_ids=ids, attention_mask=mask).shape == (2, 3)


def test_encoder_and_performer() -> None:
    enc = SpectralAttentionEncoder(vocab_size=20, hidden_dim=32, num_layers=1, num_heads=2)
    assert enc(torch.randint(0, 20, (2, 7))).shape == (2, 7, 32)
    perf = PerformerTransformer(
        vocab_size=20, hidden_dim=32, num_layers=1, num_heads=2, num_features=8, num_classes=4
    )
    assert isinstance(perf.blocks[0].mixer, PerformerAttention)
    assert perf(input_ids=torch.randint(0, 20, (3, 7))).shape == (3, 4)


def test_namespaces_export_transforms_and_mixers() -> None:
    x = torch.randn(2, 16, dtype=torch.float64)
    assert torch.allclose(spectral.idct(spectral.dct(x)), x)
    assert torch.allclose(spectral.waverec(spectral.wavedec(x, "db2", 2), "db2", length=16), x)
    for name in ("AFNOMixing", "FNOMixing", "S4DMixing", "WaveletMixing", "FourierMixing"):
        assert hasattr(mixing, name)
