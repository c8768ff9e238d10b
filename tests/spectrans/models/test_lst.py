"""LST models: parameters, example shapes, true causality, padding, checkpointing."""

from __future__ import annotations

import copy
import inspect

import pytest
import torch

from spectrans.config.models import LSTModelConfig
from spectrans.models import build_classifier
from spectrans.models.base import BaseModel
from spectrans.models.lst import LSTDecoder, LSTEncoder, LSTTransformer

TRANSFORMS = ["dct", "dst", "hadamard", "mixed"]
SMALL = {"hidden_dim": 16, "num_layers": 2, "num_heads": 2, "ffn_hidden_dim": 32}

SEED_PARAMS = {
    LSTTransformer: [
        "vocab_size",
        "hidden_dim",
        "num_layers",
        "max_sequence_length",
        "transform_type",
        "use_conv_bias",
        "num_classes",
        "ffn_hidden_dim",
        "dropout",
        "use_positional_encoding",
        "positional_encoding_type",
        "gradient_checkpointing",
    ],
    LSTEncoder: [
        "vocab_size",
        "hidden_dim",
        "num_layers",
        "max_sequence_length",
        "transform_type",
        "use_conv_bias",
        "ffn_hidden_dim",
        "dropout",
        "use_positional_encoding",
        "positional_encoding_type",
    ],
    LSTDecoder: [
        "vocab_size",
        "hidden_dim",
        "num_layers",
        "max_sequence_length",
        "transform_type",
        "causal",
        "use_conv_bias",
        "ffn_hidden_dim",
        "dropout",
        "use_positional_encoding",
        "positional_encoding_type",
        "gradient_checkpointing",
    ],
}
SEED_DEFAULTS = {
    LSTTransformer: {
        "hidden_dim": 512,
        "num_layers": 6,
        "max_sequence_length": 1024,
        "transform_type": "dct",
        "positional_encoding_type": "sinusoidal",
    },
    LSTDecoder: {
        "num_layers": 12,
        "max_sequence_length": 2048,
        "transform_type": "dst",
        "causal": True,
    },
}


@pytest.mark.parametrize("cls", [LSTTransformer, LSTEncoder, LSTDecoder])
def test_seed_parameters_in_seed_order_with_num_heads(cls: type) -> None:
    params = inspect.signature(cls.__init__).parameters
    positional = [p for p in params if p != "self"][: len(SEED_PARAMS[cls])]
    assert positional == SEED_PARAMS[cls]
    assert "num_heads" in params
    for name, default in SEED_DEFAULTS.get(cls, {}).items():
        assert params[name].default == default
    assert issubclass(cls, BaseModel)


def test_seed_example_shapes() -> None:
    torch.manual_seed(0)
    model = LSTTransformer(
        hidden_dim=32, num_layers=2, num_heads=4, transform_type="dct", max_sequence_length=128
    )
    x = torch.randn(4, 20, 32)
    assert model(inputs_embeds=x).shape == x.shape
    model = LSTTransformer(
        vocab_size=100,
        hidden_dim=32,
        num_layers=2,
        num_heads=4,
        transform_type="hadamard",
        num_classes=10,
        max_sequence_length=64,
    )
    assert model(torch.randint(0, 100, (4, 20))).shape == (4, 10)
    decoder = LSTDecoder(
        vocab_size=100,
        hidden_dim=32,
        num_layers=2,
        num_heads=4,
        transform_type="dst",
        causal=True,
        max_sequence_length=256,
    )
    assert decoder(torch.randint(0, 100, (4, 20))).shape == (4, 20, 100)
    encoder = LSTEncoder(vocab_size=100, **SMALL)
    assert encoder(torch.randint(0, 100, (4, 20))).shape == (4, 20, 16)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_decoder_is_truly_causal(transform: str, positional: str) -> None:
    torch.manual_seed(1)
    decoder = LSTDecoder(
        vocab_size=40,
        transform_type=transform,
        causal=True,
        positional_encoding_type=positional,
        max_sequence_length=32,
        **SMALL,
    ).eval()
    ids = torch.randint(0, 40, (2, 13))
    for t in (0, 6, 11):
        future = ids.clone()
        future[:, t + 1 :] = torch.randint(0, 40, (2, 12 - t))
        with torch.no_grad():
            a, b = decoder(ids), decoder(future)
        assert (a[:, : t + 1] - b[:, : t + 1]).abs().max() <= 1e-6
        assert (a[:, t + 1 :] - b[:, t + 1 :]).abs().max() > 1e-5


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_non_causal_decoder_sees_the_future(transform: str) -> None:
    """The causality test above can fail: without causal=True the past does move."""
    torch.manual_seed(2)
    decoder = LSTDecoder(vocab_size=40, transform_type=transform, causal=False, **SMALL).eval()
    ids = torch.randint(0, 40, (2, 12))
    future = ids.clone()
    future[:, 8:] = (future[:, 8:] + 1) % 40
    with torch.no_grad():
        assert (decoder(ids)[:, :8] - decoder(future)[:, :8]).abs().max() > 1e-6


@pytest.mark.parametrize("pooling", ["cls", "mean", "last"])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_padding_moves_no_logit(transform: str, pooling: str) -> None:
    torch.manual_seed(3)
    model = LSTTransformer(
        vocab_size=40, transform_type=transform, num_classes=3, pooling=pooling, **SMALL
    ).eval()
    ids = torch.randint(1, 40, (3, 11))
    mask = torch.arange(11)[None] < torch.tensor([[11], [6], [2]])
    other = ids.clone()
    other[~mask] = 0
    with torch.no_grad():
        diff = model(ids, attention_mask=mask) - model(other, attention_mask=mask)
    assert diff.abs().max() <= 1e-6


def test_checkpointing_gives_same_outputs_and_gradients() -> None:
    torch.manual_seed(4)
    plain = LSTDecoder(vocab_size=40, dropout=0.1, **SMALL).train()
    ckpt = LSTDecoder(vocab_size=40, dropout=0.1, gradient_checkpointing=True, **SMALL).train()
    ckpt.load_state_dict(copy.deepcopy(plain.state_dict()))
    ids = torch.randint(0, 40, (2, 10))
    results = []
    for model in (plain, ckpt):
        torch.manual_seed(5)
        logits = model(ids)
        logits.square().mean().backward()
        results.append((logits.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(results[0][1], results[1][1]))


def test_from_config_and_positional_options() -> None:
    cfg = LSTModelConfig(vocab_size=50, num_classes=4, transform_type="dst", **SMALL)
    model = LSTTransformer.from_config(cfg)
    assert model(torch.randint(0, 50, (2, 9))).shape == (2, 4)
    assert LSTEncoder.from_config(cfg)(torch.randint(0, 50, (2, 9))).shape == (2, 9, 16)
    decoder = LSTDecoder.from_config(cfg)
    assert decoder.causal and decoder(torch.randint(0, 50, (2, 9))).shape == (2, 9, 50)
    assert all(block.mixer.causal for block in decoder.blocks)
    off = LSTTransformer(vocab_size=50, use_positional_encoding=False, **SMALL)
    assert isinstance(off.positional, torch.nn.Identity)
    rotary = LSTTransformer(vocab_size=50, positional_encoding_type="rotary", **SMALL)
    assert all(block.mixer.use_rope for block in rotary.blocks)
    with pytest.raises(ValueError, match="alibi") as info:
        LSTTransformer(vocab_size=50, positional_encoding_type="alibi", **SMALL)
    assert "\n" not in str(info.value)


def test_build_classifier_for_lst() -> None:
    cfg = LSTModelConfig(transform_type="hadamard", **SMALL)
    model = build_classifier(cfg, None, vocab_size=30, num_classes=5, max_length=20, pair=False)
    assert isinstance(model, LSTTransformer) and model.transform_type == "hadamard"
    mask = torch.ones(2, 20, dtype=torch.bool)
    assert model(input_ids=torch.randint(0, 30, (2, 20)), attention_mask=mask).shape == (2, 5)
    pair = build_classifier(cfg, None, vocab_size=30, num_classes=2, max_length=20, pair=True)
    ids = torch.randint(0, 30, (2, 20))
    assert pair(ids, mask, ids, mask).shape == (2, 2)
    learned = LSTModelConfig(positional_encoding_type="learned", max_sequence_length=16, **SMALL)
    with pytest.raises(ValueError, match="model.max_sequence_length"):
        build_classifier(learned, None, vocab_size=30, num_classes=5, max_length=20, pair=False)
