"""build_classifier: ``recompute_mixing`` of the model config reaches every mixer that reads it."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from spectrans.layers.attention.chunked_recompute import set_recompute_mixing
from spectrans.models import build_classifier

VOCAB, N, CLASSES = 20, 12, 3
RECOMPUTE_NODES = ("GatedMixRecomputeBackward", "_ChunkedRecomputeBackward")
"""Autograd node names of the two recomputing backwards (LST; feature maps and S4D)."""

CASES: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
    "lst-dct": ({"name": "encoder"}, {"name": "lst", "transform_type": "dct", "num_heads": 2}),
    "performer": ({"name": "encoder"}, {"name": "performer", "num_heads": 2}),
    "s4d": ({"name": "encoder"}, {"name": "s4d"}),
    "model=lst": ({"name": "lst", "num_heads": 2}, None),
}


def _model(case: str, recompute: bool | None) -> nn.Module:
    model_cfg, mixer_cfg = CASES[case]
    model_cfg = {**model_cfg, "hidden_dim": 16, "num_layers": 2, "ffn_hidden_dim": 32}
    model_cfg |= {"dropout": 0.0, "max_sequence_length": N, "recompute_mixing": recompute}
    return build_classifier(
        model_cfg, mixer_cfg, vocab_size=VOCAB, num_classes=CLASSES, max_length=N, pair=False
    )


def _graph_names(out: Tensor) -> set[str]:
    """Names of every autograd node that ``out`` depends on."""
    names, stack, seen = set(), [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(fn for fn, _ in node.next_functions)
    return names


def _loss_and_grads(model: nn.Module) -> tuple[set[str], dict[str, Tensor]]:
    gen = torch.Generator().manual_seed(5)
    ids = torch.randint(1, VOCAB, (3, N), generator=gen)  # (B, N)
    mask = torch.ones(3, N, dtype=torch.bool)
    mask[1, N // 2 :] = False  # one padded row
    labels = torch.randint(0, CLASSES, (3,), generator=gen)
    logits = model(input_ids=ids, attention_mask=mask)  # (B, C)
    loss = nn.functional.cross_entropy(logits, labels)
    names = _graph_names(loss)
    loss.backward()
    return names, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("case", list(CASES))
def test_recompute_mixing_true_rebuilds_the_mixing_with_the_same_gradients(case: str) -> None:
    torch.manual_seed(0)
    kept = _model(case, False)
    rebuilt = _model(case, True)
    rebuilt.load_state_dict(kept.state_dict())
    mixers = [m for m in rebuilt.modules() if hasattr(m, "recompute_mixing")]
    assert mixers and all(m.recompute_mixing is True for m in mixers)

    kept_names, kept_grads = _loss_and_grads(kept)
    rebuilt_names, rebuilt_grads = _loss_and_grads(rebuilt)
    assert not kept_names & set(RECOMPUTE_NODES)
    assert rebuilt_names & set(RECOMPUTE_NODES)
    assert kept_grads.keys() == rebuilt_grads.keys()
    for name, grad in kept_grads.items():
        torch.testing.assert_close(rebuilt_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_recompute_mixing_none_leaves_the_layers_default() -> None:
    model = _model("performer", None)
    assert [m.recompute_mixing for m in model.modules() if hasattr(m, "recompute_mixing")] == [
        None,
        None,
    ]
    names, _ = _loss_and_grads(model)  # the default keeps autograd's backward
    assert not names & set(RECOMPUTE_NODES)


def test_set_recompute_mixing_counts_the_layers_it_sets() -> None:
    model = _model("lst-dct", None)
    assert set_recompute_mixing(model, False) == 2
    mixers = [m for m in model.modules() if hasattr(m, "recompute_mixing")]
    assert len(mixers) == 2 and all(m.recompute_mixing is False for m in mixers)
    assert set_recompute_mixing(nn.Linear(2, 2), True) == 0
