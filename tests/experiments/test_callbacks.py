"""Harness callbacks: the per-step seeding and the throttled progress bar."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from experiments import callbacks as cb


def _draws() -> torch.Tensor:
    """What a training step draws from the CPU generator (dropout masks, randperm)."""
    return torch.cat([torch.rand(5), torch.randn(3), torch.randperm(7).float()])


@pytest.mark.parametrize("seed", [0, 1, 1_000_003 * 3 + 17, 2**40 + 5])
def test_seed_step_draws_what_manual_seed_draws(seed: int) -> None:
    torch.manual_seed(seed)
    state, want = torch.get_rng_state(), _draws()
    torch.manual_seed(seed + 1)  # a different state in between
    _draws()
    cb.seed_step(seed)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(_draws(), want)
    if torch.cuda.is_available():
        torch.cuda.init()
        torch.manual_seed(seed)
        cuda_want = [torch.rand(4, device=f"cuda:{i}") for i in range(torch.cuda.device_count())]
        cb.seed_step(seed)
        got = [torch.rand(4, device=f"cuda:{i}") for i in range(torch.cuda.device_count())]
        assert all(torch.equal(a, b) for a, b in zip(got, cuda_want))


def test_step_seeder_formats_no_stack_traces(monkeypatch) -> None:
    import traceback

    calls: list[int] = []
    real = traceback.format_stack
    monkeypatch.setattr(traceback, "format_stack", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(3)  # defers seeding of uninitialised backends, each with a stack trace
    deferred = len(calls)
    seeder = cb.StepSeeder(7)
    trainer = SimpleNamespace(global_rank=1, global_step=0)
    for step in range(5):
        trainer.global_step = step
        seeder.on_train_batch_start(trainer, torch.nn.Linear(1, 1), None, step)  # type: ignore[arg-type]
    assert len(calls) == deferred
    state = torch.get_rng_state()
    torch.manual_seed(7 + 1_000_003 + 4)
    assert torch.equal(state, torch.get_rng_state())


class _Bar:
    def __init__(self, total: int) -> None:
        self.total, self.n, self.draws, self.postfix = total, 0, 0, None

    def set_postfix(self, metrics: dict) -> None:
        self.postfix = metrics

    def refresh(self) -> None:
        self.draws += 1


def test_progress_bar_counts_every_step_but_redraws_at_most_every_interval(monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(cb.time, "monotonic", lambda: clock[0])
    progress = cb.StepProgressBar()
    bar = _Bar(total=200)
    progress._train_progress_bar = bar
    monkeypatch.setattr(
        progress, "get_metrics", lambda trainer, module: {"step": trainer.global_step}
    )
    trainer = SimpleNamespace(global_step=0, log_every_n_steps=50)
    drawn_at = []
    for step in range(1, 201):
        trainer.global_step = step
        clock[0] += 0.03  # 30 ms a step: a redraw every 4th step (>= 0.1 s)
        before = bar.draws
        progress.on_train_batch_end(trainer, None, None, None, step)  # type: ignore[arg-type]
        assert bar.n == step
        if bar.draws > before:
            drawn_at.append(step)
    assert drawn_at[0] == 1 and drawn_at[-1] == 200 and bar.postfix == {"step": 200}
    assert {50, 100, 150, 200} <= set(drawn_at)  # logging steps show new metrics at once
    gaps = [b - a for a, b in zip(drawn_at, drawn_at[1:])]
    assert all(g <= 4 for g in gaps) and 50 <= len(drawn_at) <= 60  # not once per step


def test_throughput_leaves_out_the_compile_trial(monkeypatch) -> None:
    """Batches while the module's compile=auto chooser runs (it compiles and switches modes)
    are not timed; the batches after it are."""
    clock = iter(range(1000))
    monkeypatch.setattr(cb.time, "perf_counter", lambda: float(next(clock)))
    monitor = cb.ThroughputMonitor(skip_batches=2)
    logged: list[float] = []
    module = SimpleNamespace(
        device=torch.device("cpu"), chooser=object(), log=lambda _k, v: logged.append(v)
    )
    trainer = SimpleNamespace(global_step=0, log_every_n_steps=1)
    batch = {"input_ids": torch.zeros(4, 8, dtype=torch.long)}  # 32 tokens
    for step in range(10):
        if step == 6:
            module.chooser = None  # the trial ends after six batches
        trainer.global_step = step + 1
        monitor.on_train_batch_start(trainer, module, batch, step)
        monitor.on_train_batch_end(trainer, module, None, batch, step)
    # batches 6..9 timed, each in its own window of one clock tick
    assert monitor.train_tokens == 4 * 32 and monitor.train_seconds == 4.0
    assert logged == [32.0] * 4


def _guard_steps(guard, losses, every_log: int = 50):  # noqa: ANN001, ANN202
    """Feed ``losses`` to ``guard`` as steps 1, 2, ...; the steps after which it stopped."""
    trainer = SimpleNamespace(global_step=0, log_every_n_steps=every_log, should_stop=False)
    stopped = []
    for step, value in enumerate(losses, start=1):
        trainer.global_step = step
        guard.on_train_batch_end(trainer, None, {"loss": torch.tensor(value)}, None, step)
        if trainer.should_stop:
            stopped.append(step)
            break
    else:
        guard.on_train_end(trainer, None)
        if trainer.should_stop:
            stopped.append("end")
    return stopped


@pytest.mark.parametrize(
    ("check_every", "losses", "stopped", "reason"),
    [
        (None, [1.0, float("nan"), 2.0], [2], "became nan at step 2"),  # CPU: every step
        (3, [1.0, float("inf"), 2.0, float("nan"), 1.0], [3], "became inf at step 2"),
        (4, [1.0, 2.0, float("nan")], ["end"], "became nan at step 3"),  # read when training ends
        (3, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [], None),
    ],
)
def test_nan_guard_names_the_first_non_finite_step(check_every, losses, stopped, reason) -> None:
    guard = cb.NonFiniteGuard(check_every)
    assert _guard_steps(guard, losses) == stopped
    if reason is None:
        assert guard.failure is None
    else:
        assert reason in guard.failure


def test_evaluation_is_timed_per_loop_not_per_batch(monkeypatch) -> None:
    """One clock reading at each end of a validation or test loop; every batch's tokens count."""
    readings: list[int] = []
    clock = iter(range(0, 1000, 10))

    def now() -> float:
        readings.append(1)
        return float(next(clock))

    monkeypatch.setattr(cb.time, "perf_counter", now)
    monitor = cb.ThroughputMonitor()
    module = SimpleNamespace(device=torch.device("cpu"))
    batch = {"input_ids": torch.zeros(2, 5, dtype=torch.long)}  # 10 tokens
    monitor.on_validation_epoch_start(None, module)
    for i in range(3):
        monitor.on_validation_batch_end(None, module, None, batch, i)
    monitor.on_validation_epoch_end(None, module)
    monitor.on_test_epoch_start(None, module)
    monitor.on_test_batch_end(None, module, None, batch, 0)
    monitor.on_test_epoch_end(None, module)
    assert len(readings) == 4  # two per loop, none per batch
    assert monitor.eval_tokens == 40 and monitor.eval_seconds == 20.0
    assert monitor.summary()["eval_tokens_per_s"] == 2.0


def test_progress_bar_reads_the_training_values_on_logging_steps_only(monkeypatch) -> None:
    """The module's logged tensors become numbers on logging steps; between them none is read."""
    logged = SimpleNamespace(progress_values={"train/loss": torch.tensor(2.0)})
    assert cb.progress_numbers(logged) == {"train/loss": 2.0}
    assert cb.progress_numbers(SimpleNamespace()) == {}
    progress = cb.StepProgressBar()
    progress._train_progress_bar = _Bar(total=100)
    reads: list[int] = []
    monkeypatch.setattr(cb, "progress_numbers", lambda m: reads.append(1) or {"train/loss": 1.5})
    monkeypatch.setattr(cb.TQDMProgressBar, "get_metrics", lambda self, t, m: {"v": 1})
    module = SimpleNamespace()
    trainer = SimpleNamespace(global_step=0, log_every_n_steps=10)
    for step in range(1, 31):
        trainer.global_step = step
        progress.on_train_batch_end(trainer, module, None, None, step)  # type: ignore[arg-type]
    assert len(reads) == 1 + 3  # the first step (nothing shown yet), then steps 10, 20, 30
    assert progress._train_progress_bar.postfix == {"v": 1, "train/loss": 1.5}
