import time

import pytest
import torch

from experiments import timing

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("sleep_s", "budget_s", "calls_made"),
    [(0.02, 0.005, 1), (0.03, 0.025, 2)],
    ids=["over twice the budget: one warm-up", "within twice it: a second warm-up decides"],
)
def test_a_warm_up_over_the_budget_reports_over_budget_and_runs_nothing_else(
    sleep_s: float, budget_s: float, calls_made: int
) -> None:
    calls = []

    def slow() -> None:
        calls.append(1)
        time.sleep(sleep_s)

    time_ms, peak, done, status = timing.measure(slow, CPU, repeats=5, budget_s=budget_s)
    assert (status, peak, done, len(calls)) == ("over_budget", None, 0, calls_made)
    assert time_ms >= 1e3 * sleep_s


def test_a_slow_first_call_within_twice_the_budget_gets_a_second_warm_up():
    calls = []

    def first_slow() -> None:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.03)  # one-time cost, as a kernel compiled on first use

    time_ms, _, done, status = timing.measure(first_slow, CPU, repeats=3, budget_s=0.025)
    assert (status, done, len(calls)) == ("ok", 3, 2 + 1 + 3)
    assert time_ms < 20.0


def test_measure_runs_warm_up_memory_step_and_the_repeats():
    calls = []
    time_ms, _, done, status = timing.measure(lambda: calls.append(1), CPU, 3, budget_s=10.0)
    assert (status, done, len(calls)) == ("ok", 3, 1 + 1 + 3)
    assert time_ms >= 0.0


def test_time_steps_counts_warm_up_and_timed_steps():
    calls = []
    ms, peak = timing.time_steps(lambda: calls.append(1), CPU, warmup=2, steps=4)
    assert len(calls) == 6 and peak is None and ms >= 0.0


def test_time_step_windows_times_each_window_after_one_warm_up():
    calls = []
    figures, peak = timing.time_step_windows(lambda: calls.append(1), CPU, 2, 4, windows=3)
    assert len(calls) == 2 + 3 * 4 and len(figures) == 3 and peak is None
    assert all(f >= 0.0 for f in figures)
    with pytest.raises(ValueError, match="windows and steps must be >= 1"):
        timing.time_step_windows(lambda: None, CPU, 0, 1, windows=0)


def test_is_oom_tells_memory_failures_from_other_errors():
    assert timing.is_oom(MemoryError())
    assert timing.is_oom(RuntimeError("DefaultCPUAllocator: not enough memory: you tried"))
    assert timing.is_oom(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert not timing.is_oom(RuntimeError("shape mismatch"))


def test_make_train_step_updates_the_parameters():
    model = torch.nn.Linear(4, 3)
    x, labels = torch.randn(8, 4), torch.randint(0, 3, (8,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.weight.detach().clone()
    timing.make_train_step(model, lambda: model(x), labels, optimizer, "fp32", CPU)()
    assert not torch.equal(before, model.weight) and model.weight.grad is None


def test_measure_with_graph_times_replays_after_eager_warm_up_and_memory_steps(monkeypatch):
    calls = []

    def capture_graph(step, device, warmup=3):
        calls.append("capture")
        return lambda: calls.append("replay")

    monkeypatch.setattr(timing, "capture_graph", capture_graph)
    time_ms, _, done, status = timing.measure(
        lambda: calls.append("step"), CPU, 3, budget_s=10.0, graph=True
    )
    assert (status, done) == ("ok", 3) and time_ms >= 0.0
    assert calls == ["step", "step", "capture", "replay", "replay", "replay"]


def test_measure_with_graph_reports_a_failed_capture_in_one_line(monkeypatch):
    def capture_graph(step, device, warmup=3):
        raise RuntimeError("operation not permitted when stream is capturing\ndetails")

    monkeypatch.setattr(timing, "capture_graph", capture_graph)
    with pytest.raises(timing.GraphCaptureError) as info:
        timing.measure(lambda: None, CPU, 3, budget_s=10.0, graph=True)
    assert str(info.value) == (
        "CUDA graph capture failed: RuntimeError: operation not permitted when stream is capturing"
    )
    assert isinstance(info.value.__cause__, RuntimeError)


class _CacheProbe(torch.nn.Linear):
    """Records whether autocast's weight cache is on during each forward."""

    def __init__(self) -> None:
        super().__init__(4, 4)
        self.cache: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.cache.append(torch.is_autocast_cache_enabled())
        return super().forward(x)


@pytest.mark.parametrize(("autocast_cache", "expected"), [(None, True), (False, False)])
def test_make_step_autocast_cache_keyword(autocast_cache, expected):
    probe = _CacheProbe()
    x = torch.randn(2, 3, 4, requires_grad=True)  # (B, N, D)
    timing.make_step(probe, x, "bf16", autocast_cache=autocast_cache)()
    assert probe.cache == [expected] and probe.weight.grad is not None and x.grad is not None


class _Attention(torch.nn.Module):
    """A small softmax-attention layer: q, k, v and output projections."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv, self.out = torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # 3 x (B, N, D)
        weights = torch.softmax(q @ k.transpose(1, 2) / x.shape[-1] ** 0.5, dim=-1)  # (B, N, N)
        return self.out(weights @ v)  # (B, N, D)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_the_graphed_step_gives_the_eager_gradients(dtype):
    device = torch.device("cuda")
    torch.manual_seed(0)
    layer = _Attention(32).to(device)
    x = torch.randn(2, 64, 32, device=device, requires_grad=True)  # (B, N, D)
    step = timing.make_step(layer, x, dtype, autocast_cache=False)
    step()
    eager = [p.grad.clone() for p in layer.parameters()] + [x.grad.clone()]
    replay = timing.capture_graph(step, device)
    for p in [*layer.parameters(), x]:
        p.grad.zero_()  # the captured gradient buffers; a replay must fill them again
    replay()
    torch.cuda.synchronize(device)
    graphed = [p.grad for p in layer.parameters()] + [x.grad]
    for a, b in zip(graphed, eager, strict=True):
        torch.testing.assert_close(a, b)
    del replay
    time_ms, peak, done, status = timing.measure(step, device, 3, budget_s=10.0, graph=True)
    assert (status, done) == ("ok", 3) and time_ms > 0.0 and peak is not None and peak > 0


def test_the_step_backpropagates_one_fixed_output_gradient():
    """x.grad is W^T g for a linear layer, with the same g on every call (no loss term)."""
    layer = torch.nn.Linear(4, 3, bias=False)
    x = torch.randn(2, 5, 4, requires_grad=True)  # (B, N, D)
    step = timing.make_step(layer, x, "fp32")
    step()
    first = x.grad.clone()
    step()
    torch.testing.assert_close(x.grad, first)  # the same g, not accumulated
    upstream = timing.UpstreamGradient()
    out = layer(x.detach())
    upstream(out.requires_grad_())
    g = upstream.grad
    assert g is not None and g.shape == (2, 5, 3) and g.dtype == out.dtype
    torch.testing.assert_close(first, g @ layer.weight)  # d(g . W x)/dx
    upstream(torch.zeros(1, 3, requires_grad=True))
    assert upstream.grad.shape == (1, 3)  # a new output shape draws a new g
