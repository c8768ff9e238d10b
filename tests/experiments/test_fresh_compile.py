"""Benchmarks compile every model, however many one process compiles."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from experiments.fresh_compile import compile_fresh, fail_on_recompile_limit

ACTIVATIONS = [
    nn.Identity,
    nn.ReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.Softplus,
    nn.Softsign,
    nn.Hardtanh,
    nn.LeakyReLU,
    nn.Mish,
]


class Wrapper(nn.Module):
    """One ``forward`` code object shared by every model, as an encoder's is across mixers."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) + 1


def _counting_backend(compiled: list[int]):
    def backend(gm: torch.fx.GraphModule, example_inputs: list[torch.Tensor]):
        compiled.append(1)
        return gm.forward

    return backend


def test_plain_compile_stops_compiling_past_the_recompile_limit() -> None:
    torch._dynamo.reset()
    compiled: list[int] = []
    x = torch.randn(4)
    for act in ACTIVATIONS:
        torch.compile(Wrapper(act()), backend=_counting_backend(compiled))(x)
    assert len(compiled) < len(ACTIVATIONS)  # the later models ran eagerly


def test_compile_fresh_compiles_every_model() -> None:
    compiled: list[int] = []
    x = torch.randn(4)
    for act in ACTIVATIONS:
        model = Wrapper(act())
        out = compile_fresh(model, backend=_counting_backend(compiled))(x)
        torch.testing.assert_close(out, model(x))
    assert len(compiled) == len(ACTIVATIONS)


def test_inside_fail_on_recompile_limit_the_fallback_raises() -> None:
    if "fail_on_recompile_limit_hit" not in torch._dynamo.config._config:
        pytest.skip("this PyTorch has no fail_on_recompile_limit_hit")
    torch._dynamo.reset()
    compiled: list[int] = []
    x = torch.randn(4)
    with fail_on_recompile_limit(), pytest.raises(Exception, match="(?i)limit"):
        for act in ACTIVATIONS:
            torch.compile(Wrapper(act()), backend=_counting_backend(compiled))(x)
    assert not torch._dynamo.config.fail_on_recompile_limit_hit  # restored on exit
    torch._dynamo.reset()
