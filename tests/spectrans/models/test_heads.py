"""Pooling oracles and the dual-encoder retrieval model (independent vs joint encoding)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from spectrans.config.models import EncoderModelConfig
from spectrans.config.patterns import independent_patterns
from spectrans.layers.patterns import PatternAttention
from spectrans.models import DualEncoderClassifier, build_classifier, pool
from spectrans.models.heads import ClassifierHead
from spectrans.registry import get_entry

D, VOCAB = 16, 30


def softmax_or_skip() -> dict[str, Any]:
    try:
        get_entry("softmax").layer_class()
    except ImportError as error:
        pytest.skip(f"softmax attention does not import yet ({error})")
    return {"name": "softmax", "num_heads": 2}


def config(**overrides: Any) -> EncoderModelConfig:
    base = {
        "hidden_dim": D,
        "num_layers": 2,
        "ffn_hidden_dim": 32,
        "head_hidden_dim": 16,
        "dropout": 0.0,
        "pooling": "mean",
        "init_weights": "truncnormal",
    }
    return EncoderModelConfig(**{**base, **overrides})


def test_pooling_matches_slow_loops() -> None:
    torch.manual_seed(0)
    h = torch.randn(3, 6, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 1, 1, 0, 0]]).bool()
    mean, last, cls = pool(h, mask, "mean"), pool(h, mask, "last"), pool(h, mask, "cls")
    for b in range(3):
        real = [i for i in range(6) if mask[b, i]]
        assert torch.allclose(mean[b], sum(h[b, i] for i in real) / len(real), atol=1e-6)
        assert torch.equal(last[b], h[b, real[-1]])
        assert torch.equal(cls[b], h[b, 0])
    assert torch.allclose(pool(h, None, "mean"), h.mean(1))
    every = pool(h, mask, "mean_all")  # the LRA code's MEAN: masked positions count
    for b in range(3):
        assert torch.allclose(every[b], sum(h[b, i] for i in range(6)) / 6, atol=1e-6)
    assert torch.equal(pool(h, None, "mean_all"), every)
    assert torch.equal(pool(h, None, "last"), h[:, -1])
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        pool(h, mask, "max")


def pair_batch(len_b: int = 7) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(1)
    ids_a, ids_b = torch.randint(1, VOCAB, (2, 10)), torch.randint(1, VOCAB, (2, len_b))
    mask_a = torch.arange(10)[None] < torch.tensor([[10], [6]])
    mask_b = torch.arange(len_b)[None] < torch.tensor([[4], [len_b]])
    return ids_a, mask_a, ids_b, mask_b


@pytest.mark.parametrize("len_b", [7, 10])  # 10: both documents in one batched pass
@pytest.mark.parametrize("interaction", ["concat4", "concat2"])
@pytest.mark.parametrize("mixer_name", ["softmax", "fnet", "lst"])
def test_independent_equals_encoding_each_document_alone(
    interaction: str, mixer_name: str, len_b: int
) -> None:
    mixer = softmax_or_skip() if mixer_name == "softmax" else {"name": mixer_name}
    torch.manual_seed(2)
    model = build_classifier(
        config(retrieval_interaction=interaction),
        mixer,
        vocab_size=VOCAB,
        num_classes=2,
        max_length=10,
        pair=True,
    ).eval()
    assert isinstance(model, DualEncoderClassifier)
    ids_a, mask_a, ids_b, mask_b = pair_batch(len_b)
    with torch.no_grad():
        logits = model(ids_a, mask_a, ids_b, mask_b)
        u = pool(model.encoder(input_ids=ids_a, attention_mask=mask_a), mask_a, "mean")
        v = pool(model.encoder(input_ids=ids_b, attention_mask=mask_b), mask_b, "mean")
        parts = [u, v, u * v, u - v] if interaction == "concat4" else [u, v]
        want = model.head(torch.cat(parts, -1))
    assert model.head.dense.in_features == D * len(parts)
    assert logits.shape == (2, 2)
    assert torch.allclose(logits, want, atol=1e-6)


@pytest.mark.parametrize("pooling", ["cls", "mean", "last"])
def test_joint_differs_and_an_independent_pattern_recovers_independent(pooling: str) -> None:
    mixer = {**softmax_or_skip(), "init_weights": "truncnormal"}
    torch.manual_seed(3)
    joint = build_classifier(
        config(retrieval_encoding="joint", pooling=pooling),
        mixer,
        vocab_size=VOCAB,
        num_classes=2,
        max_length=10,
        pair=True,
    ).eval()
    independent = build_classifier(
        config(pooling=pooling), mixer, vocab_size=VOCAB, num_classes=2, max_length=10, pair=True
    ).eval()
    state = {k.replace("mixer.attention.", "mixer."): v for k, v in joint.state_dict().items()}
    independent.load_state_dict(state)
    batch = pair_batch()
    with torch.no_grad():
        joint_logits, indep_logits = joint(*batch), independent(*batch)
        assert (joint_logits - indep_logits).abs().max() > 1e-4
        for block in joint.encoder.blocks:
            assert isinstance(block.mixer, PatternAttention)
            block.mixer.patterns = independent_patterns(["doc_a", "doc_b"])
        assert torch.allclose(joint(*batch), indep_logits, atol=1e-5)


def test_joint_padding_moves_no_logit() -> None:
    mixer = softmax_or_skip()
    torch.manual_seed(4)
    model = build_classifier(
        config(retrieval_encoding="joint", pooling="last"),
        mixer,
        vocab_size=VOCAB,
        num_classes=2,
        max_length=10,
        pair=True,
    ).eval()
    ids_a, mask_a, ids_b, mask_b = pair_batch()
    other_a, other_b = ids_a.clone(), ids_b.clone()
    other_a[~mask_a] = 3
    other_b[~mask_b] = 5
    with torch.no_grad():
        diff = model(ids_a, mask_a, ids_b, mask_b) - model(other_a, mask_a, other_b, mask_b)
    assert diff.abs().max() <= 1e-6


def test_joint_refused_for_mixers_without_scores() -> None:
    with pytest.raises(ValueError, match="retrieval_encoding='independent'") as info:
        build_classifier(
            config(retrieval_encoding="joint"),
            {"name": "fnet"},
            vocab_size=VOCAB,
            num_classes=2,
            max_length=10,
            pair=True,
        )
    assert "\n" not in str(info.value)


def test_lra_pair_head_has_two_hidden_layers() -> None:
    torch.manual_seed(3)
    model = build_classifier(
        config(pooling="cls", retrieval_interaction="concat2", retrieval_head="lra"),
        softmax_or_skip(),
        vocab_size=VOCAB,
        num_classes=2,
        max_length=8,
        pair=True,
    )
    head = model.head
    assert (head.dense.in_features, head.dense.out_features) == (2 * D, 16)
    assert (head.dense2.in_features, head.dense2.out_features, head.out.in_features) == (16, 8, 8)
    features = torch.randn(3, 2 * D)
    expected = head.out(torch.relu(head.dense2(torch.relu(head.dense(features)))))
    assert torch.allclose(head(features), expected)
    ids = torch.randint(1, VOCAB, (3, 8))
    assert model(ids, None, ids, None).shape == (3, 2)


@pytest.mark.parametrize(
    ("mode", "hidden_std", "out_std"),
    [
        # LRA: flax Dense default (LeCun normal, std 1/sqrt(fan_in)) for both head linears
        ("xavier", 0.88 / 64**0.5, 0.88 / 128**0.5),
        ("truncnormal002", 0.88 * 0.02, 0.88 * 0.02),
        ("truncnormal", 0.88 / 64**0.5, 0.88 * 0.02),
    ],
)
def test_head_init_by_model_mode(mode: str, hidden_std: float, out_std: float) -> None:
    torch.manual_seed(0)
    head = ClassifierHead(64, 128, 256, init_weights=mode)
    assert head.dense.weight.std().item() == pytest.approx(hidden_std, rel=0.05)
    assert head.out.weight.std().item() == pytest.approx(out_std, rel=0.05)


def test_features_are_what_the_head_reads() -> None:
    torch.manual_seed(2)
    mixer = {**softmax_or_skip(), "init_weights": "truncnormal"}
    single = build_classifier(
        config(pooling="mean"), mixer, vocab_size=VOCAB, num_classes=3, max_length=10, pair=False
    ).eval()
    ids = torch.randint(1, VOCAB, (2, 10))
    mask = torch.arange(10)[None] < torch.tensor([[10], [6]])
    features = single.features(input_ids=ids, attention_mask=mask)  # (B, D)
    h, m = single.encoder.hidden_states(ids, None, mask, None)
    torch.testing.assert_close(features, pool(h, m, "mean"))
    torch.testing.assert_close(single(input_ids=ids, attention_mask=mask), single.head(features))
    pair = build_classifier(
        config(), mixer, vocab_size=VOCAB, num_classes=2, max_length=10, pair=True
    ).eval()
    batch = pair_batch()
    torch.testing.assert_close(pair(*batch), pair.head(pair.features(*batch)))
    assert pair.features(*batch).shape == (2, 4 * D)


def test_live_units_count_rows_with_a_positive_pre_activation() -> None:
    head = ClassifierHead(3, 4, 2)
    with torch.no_grad():
        head.dense.weight.copy_(torch.eye(4, 3))
        head.dense.bias.copy_(torch.tensor([0.0, 0.0, 0.0, -1.0]))
    features = torch.tensor([[1.0, -1.0, 0.0], [-1.0, -1.0, 0.0]])  # unit 0 live, 1-3 not
    assert int(head.live_units(features)) == 1


@pytest.mark.parametrize("name", ["encoder", "lst"])
def test_head_init_weights_sets_the_head_alone(name: str) -> None:
    from spectrans.config.models import LSTModelConfig

    def build(head_mode: str | None) -> torch.nn.Module:
        torch.manual_seed(0)
        if name == "lst":
            cfg = LSTModelConfig(
                hidden_dim=32, num_layers=1, num_heads=4, head_hidden_dim=32, pooling="mean",
                head_init_weights=head_mode,
            )  # fmt: skip
            return build_classifier(
                cfg, None, vocab_size=VOCAB, num_classes=2, max_length=16, pair=False
            )
        cfg = config(
            hidden_dim=32,
            head_hidden_dim=32,
            init_weights="truncnormal002",
            head_init_weights=head_mode,
        )
        return build_classifier(
            cfg, softmax_or_skip(), vocab_size=VOCAB, num_classes=2, max_length=16, pair=False
        )

    preset, lra_head = build(None), build("xavier")
    assert float(preset.head.dense.weight.detach().std()) < 0.03  # truncnormal002
    assert 0.12 < float(lra_head.head.dense.weight.detach().std()) < 0.2  # LeCun, 1/sqrt(32)
    assert torch.count_nonzero(lra_head.head.dense.bias) == 0
    body = [k for k in preset.state_dict() if not k.startswith("head.")]
    for key in body:  # everything else as it was
        torch.testing.assert_close(preset.state_dict()[key], lra_head.state_dict()[key])
