import time

import torch

from experiments import timing

CPU = torch.device("cpu")


def test_measure_reports_over_budget_after_the_warm_up_only():
    calls = []

    def slow() -> None:
        calls.append(1)
        time.sleep(0.02)

    time_ms, peak, done, status = timing.measure(slow, CPU, repeats=5, budget_s=0.005)
    assert (status, peak, done, len(calls)) == ("over_budget", None, 0, 1)
    assert time_ms >= 20.0


def test_measure_runs_warm_up_memory_step_and_the_repeats():
    calls = []
    time_ms, _, done, status = timing.measure(lambda: calls.append(1), CPU, 3, budget_s=10.0)
    assert (status, done, len(calls)) == ("ok", 3, 1 + 1 + 3)
    assert time_ms >= 0.0


def test_time_steps_counts_warm_up_and_timed_steps():
    calls = []
    ms, peak = timing.time_steps(lambda: calls.append(1), CPU, warmup=2, steps=4)
    assert len(calls) == 6 and peak is None and ms >= 0.0


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
