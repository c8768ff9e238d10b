"""Every registered mixer runs forward and backward under bf16 autocast (as on a GPU)."""

import pytest
import torch

from spectrans.registry import REGISTRY, build_layer, names

VARIANTS = [(name, {}) for name in names()] + [
    ("lst", {"transform_type": kind}) for kind in ("dst", "hadamard", "wavelet")
]


@pytest.mark.parametrize(("name", "extra"), VARIANTS, ids=lambda v: str(v))
@pytest.mark.parametrize("n", [37, 64])
def test_mixer_runs_under_bf16_autocast(name: str, extra: dict, n: int) -> None:
    torch.manual_seed(0)
    fields = REGISTRY[name].config_class.model_fields
    wanted = {"hidden_dim": 32, "max_sequence_length": 128, "num_heads": 4, **extra}
    layer = build_layer({"name": name, **{k: v for k, v in wanted.items() if k in fields}})
    x = torch.randn(2, n, 32, requires_grad=True)
    mask = torch.ones(2, n, dtype=torch.bool)
    mask[1, n // 2 :] = False
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x, mask=mask)
    assert y.shape == x.shape
    assert torch.isfinite(y.float()).all()
    y.float().pow(2).mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
