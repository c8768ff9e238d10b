"""The generic encoder with every registry mixer: padding, causality, checkpointing, options."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from spectrans.config.models import EncoderModelConfig
from spectrans.models import SequenceClassifier, build_classifier
from spectrans.models.encoder import Encoder
from spectrans.registry import get_entry, names

D, VOCAB, N = 16, 20, 12


def mixer_or_skip(name: str, **extra: Any) -> dict[str, Any]:
    """A small config dict for registry entry ``name``; skip if its module does not import."""
    entry = get_entry(name)
    try:
        entry.layer_class()
    except ImportError as error:
        pytest.skip(f"'{name}': layer module {entry.layer_path} does not import yet ({error})")
    fields = entry.config_class.model_fields
    config: dict[str, Any] = {"name": name, "hidden_dim": D, **extra}
    if "num_heads" in fields:
        config["num_heads"] = 2
    if "num_features" in fields and name != "kernel":
        config["num_features"] = 16
    return config


def model_config(**overrides: Any) -> EncoderModelConfig:
    base = {
        "hidden_dim": D,
        "num_layers": 2,
        "ffn_hidden_dim": 32,
        "head_hidden_dim": 16,
        "dropout": 0.0,
        "max_sequence_length": 64,
    }
    return EncoderModelConfig(**{**base, **overrides})


def padded_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two token batches that differ only at padded positions, and the mask."""
    torch.manual_seed(0)
    ids = torch.randint(1, VOCAB, (3, N))
    lengths = torch.tensor([N, 7, 3])
    mask = torch.arange(N)[None] < lengths[:, None]  # (B, N)
    other = ids.clone()
    other[~mask] = torch.randint(1, VOCAB, (int((~mask).sum()),))
    return ids, other, mask


@pytest.mark.parametrize("pooling", ["cls", "mean", "last"])
@pytest.mark.parametrize("name", names())
def test_padded_tokens_move_no_logit(name: str, pooling: str) -> None:
    mixer = mixer_or_skip(name)
    torch.manual_seed(1)
    model = build_classifier(
        model_config(pooling=pooling),
        mixer,
        vocab_size=VOCAB,
        num_classes=3,
        max_length=N,
        pair=False,
    ).eval()
    ids, other, mask = padded_batch()
    with torch.no_grad():
        a, b = (
            model(input_ids=ids, attention_mask=mask),
            model(input_ids=other, attention_mask=mask),
        )
    assert a.shape == (3, 3)
    assert (a - b).abs().max() <= 1e-6


@pytest.mark.parametrize("name", names())
def test_causal_layers_are_causal_through_the_encoder(name: str) -> None:
    mixer = mixer_or_skip(name, causal=True)
    kwargs = {
        "vocab_size": VOCAB,
        "hidden_dim": D,
        "num_layers": 2,
        "ffn_hidden_dim": 32,
        "max_sequence_length": 64,
        "positional_encoding_type": "learned",
    }
    if not get_entry(name).layer_class().supports_causal:
        with pytest.raises(ValueError, match="causal") as info:
            Encoder(mixer, **kwargs)
        assert "\n" not in str(info.value)
        return
    torch.manual_seed(2)
    encoder = Encoder(mixer, **kwargs).eval()
    ids = torch.randint(0, VOCAB, (2, N))
    t = 5
    future = ids.clone()
    future[:, t + 1 :] = torch.randint(0, VOCAB, (2, N - t - 1))
    with torch.no_grad():
        a, b = encoder(ids), encoder(future)
    assert (a[:, : t + 1] - b[:, : t + 1]).abs().max() <= 1e-6
    assert (a[:, t + 1 :] - b[:, t + 1 :]).abs().max() > 1e-4  # the future did change


@pytest.mark.parametrize("name", names())
def test_checkpointing_gives_same_outputs_and_gradients(name: str) -> None:
    mixer = mixer_or_skip(name)
    torch.manual_seed(3)
    plain = build_classifier(
        model_config(dropout=0.1), mixer, vocab_size=VOCAB, num_classes=3, max_length=N, pair=False
    ).train()
    checkpointed = build_classifier(
        model_config(dropout=0.1, gradient_checkpointing=True),
        mixer,
        vocab_size=VOCAB,
        num_classes=3,
        max_length=N,
        pair=False,
    ).train()
    checkpointed.load_state_dict(copy.deepcopy(plain.state_dict()))
    assert all(b.gradient_checkpointing for b in checkpointed.encoder.blocks)
    ids, _, mask = padded_batch()
    outs, grads = [], []
    for model in (plain, checkpointed):
        torch.manual_seed(4)
        logits = model(input_ids=ids, attention_mask=mask)
        (logits * torch.arange(logits.numel()).view_as(logits)).sum().backward()
        outs.append(logits.detach())
        grads.append([p.grad.clone() if p.grad is not None else None for p in model.parameters()])
    assert torch.allclose(outs[0], outs[1], atol=1e-6)
    for a, b in zip(*grads):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("name", names())
def test_rotary_acts_inside_the_mixer_or_is_refused(name: str) -> None:
    mixer = mixer_or_skip(name)
    cfg = model_config(positional_encoding="rotary")
    layer_class = get_entry(name).layer_class()
    if not layer_class.has_queries_keys:
        with pytest.raises(ValueError, match="rotary|use_rope") as info:
            build_classifier(cfg, mixer, vocab_size=VOCAB, num_classes=3, max_length=N, pair=False)
        assert "\n" not in str(info.value)
        return
    model = build_classifier(cfg, mixer, vocab_size=VOCAB, num_classes=3, max_length=N, pair=False)
    assert isinstance(model.encoder.positional, torch.nn.Identity)  # hidden states untouched
    assert all(block.mixer.use_rope for block in model.encoder.blocks)


@pytest.mark.parametrize("name", names())
def test_alibi_only_for_layers_with_scores(name: str) -> None:
    mixer = mixer_or_skip(name)
    cfg = model_config(positional_encoding="alibi")
    if "alibi" not in get_entry(name).config_class.model_fields:
        with pytest.raises(ValueError, match="alibi") as info:
            build_classifier(cfg, mixer, vocab_size=VOCAB, num_classes=3, max_length=N, pair=False)
        assert "\n" not in str(info.value)
        return
    model = build_classifier(cfg, mixer, vocab_size=VOCAB, num_classes=3, max_length=N, pair=False)
    assert all(block.mixer.alibi for block in model.encoder.blocks)


def test_rotary_softmax_scores_depend_on_relative_position_only() -> None:
    """With rotary and no additive encoding, shifting a pattern shifts the output."""
    mixer_or_skip("softmax")
    torch.manual_seed(5)
    encoder = Encoder(
        mixer_or_skip("softmax", causal=True),
        vocab_size=VOCAB,
        hidden_dim=D,
        num_layers=1,
        positional_encoding_type="rotary",
    ).eval()
    ids = torch.randint(0, VOCAB, (1, 8))
    with torch.no_grad():
        shifted = encoder(torch.cat([ids[:, :1], ids], 1))[:, 1:]
        base = encoder(ids)
    # causal + relative scores: the tail sees a prefix that differs only by one extra token
    assert (shifted - base).abs().max() > 1e-5
    nopos = Encoder(
        mixer_or_skip("softmax", causal=True),
        vocab_size=VOCAB,
        hidden_dim=D,
        num_layers=1,
        positional_encoding_type="none",
    ).eval()
    nopos.load_state_dict(encoder.state_dict())
    with torch.no_grad():
        assert (nopos(ids) - base).abs().max() > 1e-5  # rotary changed the scores


def test_learned_positions_over_the_limit_fail_clearly() -> None:
    mixer = mixer_or_skip("fnet")
    cfg = model_config(positional_encoding="learned", max_sequence_length=16)
    with pytest.raises(ValueError) as info:
        build_classifier(cfg, mixer, vocab_size=VOCAB, num_classes=3, max_length=32, pair=False)
    assert "model.max_sequence_length" in str(info.value) and "16" in str(info.value)
    model = build_classifier(cfg, mixer, vocab_size=VOCAB, num_classes=3, max_length=16, pair=False)
    with pytest.raises(ValueError, match="limit of 16.*model.max_sequence_length"):
        model(input_ids=torch.randint(0, VOCAB, (1, 17)))


def test_sinusoidal_model_runs_past_max_sequence_length() -> None:
    mixer = mixer_or_skip("global_filter")
    model = build_classifier(
        model_config(max_sequence_length=8),
        mixer,
        vocab_size=VOCAB,
        num_classes=3,
        max_length=40,
        pair=False,
    )
    assert model(input_ids=torch.randint(0, VOCAB, (2, 40))).shape == (2, 3)


def test_build_classifier_copies_width_and_length_into_the_mixer() -> None:
    mixer = mixer_or_skip("lst")
    mixer["hidden_dim"] = 999
    model = build_classifier(
        model_config(max_sequence_length=48),
        mixer,
        vocab_size=VOCAB,
        num_classes=3,
        max_length=N,
        pair=False,
    )
    assert isinstance(model, SequenceClassifier)
    assert model.encoder.mixer_config.hidden_dim == D
    assert model.encoder.mixer_config.max_sequence_length == 48 + 1  # + CLS
    with pytest.raises(ValueError, match="needs an attention"):
        build_classifier(
            model_config(), None, vocab_size=VOCAB, num_classes=3, max_length=N, pair=False
        )


def test_input_values_go_through_a_linear_map() -> None:
    mixer = mixer_or_skip("fnet")
    model = build_classifier(
        model_config(pooling="mean"),
        mixer,
        vocab_size=256,
        num_classes=10,
        max_length=N,
        pair=False,
        input_type="values",
    )
    assert model.encoder.embedding is None and model.encoder.value_proj.in_features == 1
    values = torch.rand(2, N)
    assert model(input_values=values).shape == (2, 10)
    with pytest.raises(ValueError, match="exactly one"):
        model(input_ids=torch.zeros(2, N, dtype=torch.long), input_values=values)


def test_explicit_weight_init() -> None:
    mixer = mixer_or_skip("fnet")
    torch.manual_seed(6)
    model = build_classifier(
        model_config(hidden_dim=64, num_layers=1),
        mixer,
        vocab_size=500,
        num_classes=3,
        max_length=N,
        pair=False,
    )
    assert model.encoder.embedding.weight.std().item() == pytest.approx(0.02, rel=0.1)
    fc1 = model.encoder.blocks[0].ffn.fc1
    assert fc1.weight.abs().max() <= 0.04 and fc1.bias.abs().max() == 0
    assert torch.equal(model.encoder.final_norm.weight, torch.ones(64))


@pytest.mark.parametrize(
    "name", [n for n in names() if "feature_redraw" in get_entry(n).config_class.model_fields]
)
def test_checkpointing_replays_random_feature_redraws(name: str) -> None:
    """A redraw inside the block must not happen again in the checkpoint recompute."""
    mixer = mixer_or_skip(name, feature_redraw=True, redraw_interval=1)
    grads, buffers = [], []
    for checkpointing in (False, True):
        torch.manual_seed(7)
        encoder = Encoder(
            mixer,
            vocab_size=VOCAB,
            hidden_dim=D,
            num_layers=1,
            init_weights="truncnormal",
            gradient_checkpointing=checkpointing,
        ).train()
        ids = torch.randint(0, VOCAB, (2, 6))
        run = []
        for _ in range(3):
            encoder.zero_grad()
            encoder(ids).square().sum().backward()
            run.append([p.grad.clone() for p in encoder.parameters() if p.grad is not None])
        grads.append(run)
        buffers.append([b.clone() for b in encoder.buffers()])
    for step_plain, step_ckpt in zip(*grads):
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(step_plain, step_ckpt))
    assert all(torch.equal(a, b) for a, b in zip(*buffers))


@pytest.mark.parametrize("name", names())
def test_attention_dropout_reaches_only_mixers_with_attention_weights(name: str) -> None:
    mixer = mixer_or_skip(name, dropout=0.05)
    encoder = Encoder(mixer, vocab_size=VOCAB, hidden_dim=D, num_layers=1, attention_dropout=0.3)
    has_scores = get_entry(name).layer_class().has_scores
    assert encoder.mixer_config.dropout == (0.3 if has_scores else 0.05)
    if name == "softmax":
        assert encoder.blocks[0].mixer.dropout == 0.3  # the SDPA dropout_p on the weights


def test_embedding_and_cls_init_std() -> None:
    mixer = mixer_or_skip("fnet")
    torch.manual_seed(7)
    model = build_classifier(
        model_config(hidden_dim=64, num_layers=1, embedding_init_std=1.0, cls_init_std=0.0),
        mixer,
        vocab_size=500,
        num_classes=3,
        max_length=N,
        pair=False,
    )
    assert model.encoder.embedding.weight.std().item() == pytest.approx(1.0, rel=0.05)
    assert torch.equal(model.encoder.cls_token, torch.zeros_like(model.encoder.cls_token))
