"""Constant tensors: one cached build in eager code, a fresh build inside a compiled graph."""

from __future__ import annotations

import torch

from spectrans.transforms.constants import clear_caches, eager_cached, graph_constant


def test_eager_callers_share_one_build_made_outside_inference_mode() -> None:
    builds = []

    @eager_cached(maxsize=2)
    def ramp(n: int) -> torch.Tensor:
        builds.append(n)
        return torch.arange(float(n))

    with torch.inference_mode():
        first = ramp(3)
    assert not first.is_inference() and not first.requires_grad
    assert ramp(3) is first and builds == [3]
    w = torch.ones(3, requires_grad=True)
    (w * ramp(3)).sum().backward()  # autograd may save it
    assert w.grad is not None
    ramp.cache_clear()
    assert ramp(3) is not first and builds == [3, 3]


def test_a_compiled_graph_builds_the_constant_itself() -> None:
    builds = []

    @eager_cached()
    def ramp(n: int) -> torch.Tensor:
        builds.append(n)
        return torch.arange(float(n))

    def f(x: torch.Tensor) -> torch.Tensor:
        return x * ramp(x.shape[0])

    torch._dynamo.reset()
    explained = torch._dynamo.explain(f)(torch.ones(4))
    assert explained.graph_break_count == 0
    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(torch.ones(5)), torch.arange(5.0))
    assert 5 in builds  # traced through the builder, not through the cache


def test_graph_constant_is_built_once_outside_inference_mode_and_held_by_graphs() -> None:
    builds = []

    @graph_constant(maxsize=2)
    def taps(n: int) -> torch.Tensor:
        builds.append(n)
        return torch.tensor([float(i) for i in range(n)])  # from a host list

    with torch.inference_mode():
        first = taps(3)
    assert not first.is_inference() and taps(3) is first and builds == [3]

    def f(x: torch.Tensor) -> torch.Tensor:
        return x * taps(x.shape[0])

    graphs: list[torch.fx.GraphModule] = []

    def keep_graph(gm: torch.fx.GraphModule, _inputs: object) -> torch.fx.GraphModule:
        graphs.append(gm)
        return gm

    torch._dynamo.reset()
    compiled = torch.compile(f, backend=keep_graph, fullgraph=True)
    for _ in range(2):
        torch.testing.assert_close(compiled(torch.ones(5)), torch.arange(5.0))
    assert builds == [3, 5]  # the trace called it once
    (graph,) = graphs
    ops = [node.op for node in graph.graph.nodes]
    assert ops.count("call_function") == 1 and "get_attr" in ops  # x * constant, nothing built
    taps.cache_clear()
    assert taps(3) is not first and builds == [3, 5, 3]


def test_clear_caches_empties_every_decorated_builder() -> None:
    @eager_cached()
    def ones(n: int) -> torch.Tensor:
        return torch.ones(n)

    @graph_constant()
    def zeros(n: int) -> torch.Tensor:
        return torch.zeros(n)

    first = ones(2), zeros(2)
    clear_caches()
    assert ones(2) is not first[0] and zeros(2) is not first[1]
