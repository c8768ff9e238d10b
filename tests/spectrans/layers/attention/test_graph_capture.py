"""Layers issue no host-to-device copies after their first call, so a CUDA graph can hold them.

A CUDA graph cannot capture a copy from pageable host memory. Such copies come from Python
scalars written into device tensors (``t[i] = 0.5`` copies a host scalar tensor) and from
``torch.tensor(...)`` built inside a forward; on the CPU they show up in the dispatched ops as
``aten.copy_`` from a 0-d tensor and ``aten.lift_fresh``. Caches filled on the first call
(transform tables) are allowed, so every step is checked on the second call.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from spectrans.layers.attention.lst import LSTAttention
from spectrans.layers.attention.softmax import SoftmaxAttention

HOST_COPY_OPS = (torch.ops.aten.lift_fresh.default, torch.ops.aten.lift_fresh_copy.default)


class HostCopySpy(TorchDispatchMode):
    """Records the dispatched ops that become host-to-device copies on a CUDA tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func in HOST_COPY_OPS or (func is torch.ops.aten.copy_.default and args[1].dim() == 0):
            self.found.append(str(func))
        return func(*args, **(kwargs or {}))


def host_copies(layer: nn.Module, x: torch.Tensor) -> list[str]:
    """The host-copy ops of the second forward+backward of ``layer`` on ``x``."""
    layer(x).sum().backward()  # first call: caches may fill
    spy = HostCopySpy()
    with spy:
        layer(x).sum().backward()  # (B, N, D) -> scalar
    return spy.found


@pytest.mark.parametrize("kind", ["dct", "dst", "hadamard", "mixed"])
@pytest.mark.parametrize("path", ["gemm", "dense", "fast", "factored"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("recompute", [False, True])
def test_lst_paths_make_no_host_copies(kind: str, path: str, causal: bool, recompute: bool) -> None:
    torch.manual_seed(0)
    layer = LSTAttention(hidden_dim=32, num_heads=4, transform_type=kind, causal=causal)
    layer.mixing_path = path  # type: ignore[assignment]
    layer.recompute_mixing = recompute
    x = torch.randn(2, 24, 32, requires_grad=True)  # (B, N, D)
    assert host_copies(layer, x) == []


def test_softmax_with_alibi_makes_no_host_copies() -> None:
    layer = SoftmaxAttention(hidden_dim=32, num_heads=4, alibi=True)
    x = torch.randn(2, 24, 32, requires_grad=True)  # (B, N, D)
    assert host_copies(layer, x) == []


def test_the_spy_sees_a_scalar_written_into_a_tensor() -> None:
    def write_scalar(x: torch.Tensor) -> torch.Tensor:
        w = torch.ones(x.shape[-1])
        w[0] = 0.5  # a host scalar copied in: not capturable on CUDA
        return x * w

    x = torch.randn(2, 3, 4, requires_grad=True)
    assert host_copies(write_scalar, x)  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", ["dct", "dst", "hadamard", "mixed"])
@pytest.mark.parametrize("path", ["gemm", "fast", "factored"])
@pytest.mark.parametrize("recompute", [False, True])
def test_lst_layer_step_replays_in_a_cuda_graph(kind: str, path: str, recompute: bool) -> None:
    """With autograd's backward and with the recomputing one."""
    torch.manual_seed(0)
    layer = LSTAttention(hidden_dim=64, num_heads=4, transform_type=kind).cuda()
    layer.mixing_path = path  # type: ignore[assignment]
    layer.recompute_mixing = recompute
    x = torch.randn(2, 40, 64, device="cuda", requires_grad=True)  # (B, N, D)

    def step() -> torch.Tensor:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        out = layer(x)  # (B, N, D)
        out.square().mean().backward()
        return out

    eager = step().detach().clone()
    eager_grad = x.grad.clone()  # type: ignore[union-attr]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = step()
    graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(captured, eager)
    torch.testing.assert_close(x.grad, eager_grad)


@pytest.mark.parametrize("generalized", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("recompute", [False, True])
def test_performer_makes_no_host_copies(generalized: bool, causal: bool, recompute: bool) -> None:
    from spectrans.layers.attention.spectral import PerformerAttention

    torch.manual_seed(0)
    layer = PerformerAttention(32, 4, num_features=16, generalized=generalized, causal=causal)
    layer.recompute_mixing = recompute
    x = torch.randn(2, 24, 32, requires_grad=True)  # (B, N, D)
    assert host_copies(layer, x) == []
