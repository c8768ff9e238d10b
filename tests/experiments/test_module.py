"""Schedules, weight-decay groups and the LightningModule's steps against plain formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from experiments.config import OptimizerConfig, SchedulerConfig
from experiments.module import LRAModule, lr_multiplier, parameter_groups
from spectrans.config.models import EncoderModelConfig
from spectrans.models import build_classifier


def test_rsqrt_is_the_lra_schedule() -> None:
    cfg = SchedulerConfig(name="rsqrt", warmup_steps=1000)
    for step in (0, 9, 499, 999, 1000, 4999):
        s = step + 1
        expected = min(1.0, s / 1000) / math.sqrt(max(s, 1000))
        assert lr_multiplier(step, cfg, 5000) == pytest.approx(expected, rel=1e-12)
    peak = max(0.05 * lr_multiplier(s, cfg, 5000) for s in range(3000))
    assert peak == pytest.approx(0.05 / math.sqrt(1000), rel=1e-9)  # ListOps: ~1.6e-3


def test_cosine_warms_up_then_decays_to_the_floor() -> None:
    cfg = SchedulerConfig(name="cosine", warmup_steps=10, min_lr_ratio=0.1)
    values = [lr_multiplier(s, cfg, 110) for s in range(110)]
    assert values[4] == pytest.approx(0.5)
    assert values[9] == pytest.approx(1.0)
    assert values[59] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert values[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values[9:], values[10:]))


def test_constant_schedule() -> None:
    assert lr_multiplier(0, SchedulerConfig(name="constant"), 10) == 1.0
    assert lr_multiplier(1, SchedulerConfig(name="constant", warmup_steps=4), 10) == 0.5


class _Tiny(nn.Module):
    """Stand-in classifier: embedding, LayerNorm, masked mean, linear head."""

    def __init__(self, vocab: int = 7, dim: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, input_ids=None, input_values=None, attention_mask=None):  # noqa: ANN001
        h = self.norm(self.embed(input_ids))  # (B, N, D)
        m = attention_mask.unsqueeze(-1).float()  # (B, N, 1)
        return self.head((h * m).sum(1) / m.sum(1))  # (B, C)


def test_weight_decay_skips_norms_and_biases() -> None:
    model = _Tiny()
    decay, no_decay = parameter_groups(model, 0.1)
    decayed = {id(p) for p in decay["params"]}
    assert decayed == {id(model.embed.weight), id(model.head.weight)}
    assert {id(p) for p in no_decay["params"]} == {
        id(model.norm.weight),
        id(model.norm.bias),
        id(model.head.bias),
    }
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.1, 0.0)


def test_optimizer_uses_config_betas_eps_and_schedule() -> None:
    module = LRAModule(
        _Tiny(),
        num_classes=3,
        is_pair=False,
        optimizer=OptimizerConfig(name="adam", lr=0.05, weight_decay=0.1),
        scheduler=SchedulerConfig(name="rsqrt", warmup_steps=4),
        max_steps=10,
    )
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.Adam) and not isinstance(opt, torch.optim.AdamW)
    assert opt.param_groups[0]["betas"] == (0.9, 0.98) and opt.param_groups[0]["eps"] == 1e-9
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 * 0.25 / 2)  # step 0: s=1, w=4
    assert conf["lr_scheduler"]["interval"] == "step"
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5 / 2)


def test_forward_dispatches_single_and_pair_batches() -> None:
    single = LRAModule(
        _Tiny(),
        num_classes=3,
        is_pair=False,
        optimizer=OptimizerConfig(),
        scheduler=SchedulerConfig(),
        max_steps=1,
    )
    ids = torch.randint(0, 7, (2, 5))  # (B, N)
    mask = torch.ones(2, 5, dtype=torch.bool)  # (B, N)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 2])}
    loss, preds = single._step(batch)
    expected = nn.functional.cross_entropy(
        single.model(input_ids=ids, attention_mask=mask), batch["labels"]
    )
    assert torch.allclose(loss, expected) and preds.shape == (2,)

    class _Pair(nn.Module):
        def forward(self, a, ma, b, mb):  # noqa: ANN001
            return torch.stack([a.sum(1).float(), b.sum(1).float()], dim=-1)  # (B, 2)

    pair = LRAModule(
        _Pair(),
        num_classes=2,
        is_pair=True,
        optimizer=OptimizerConfig(),
        scheduler=SchedulerConfig(),
        max_steps=1,
    )
    out = pair(
        {
            "input_ids_a": ids,
            "attention_mask_a": mask,
            "input_ids_b": ids * 0,
            "attention_mask_b": mask,
        }
    )
    assert torch.equal(out[:, 1], torch.zeros(2)) and torch.equal(out[:, 0], ids.sum(1).float())


def test_decay_all_puts_every_parameter_in_one_decayed_group() -> None:
    model = _Tiny()
    (group,) = parameter_groups(model, 0.1, decay_all=True)
    assert {id(p) for p in group["params"]} == {id(p) for p in model.parameters()}
    assert group["weight_decay"] == 0.1
    optimizer = torch.optim.AdamW([group], lr=1.0)
    bias_before = model.head.bias.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # zero gradient: only the decay moves the parameters
    assert torch.allclose(model.head.bias, bias_before * (1 - 0.1))
    assert torch.allclose(model.norm.weight, torch.full_like(model.norm.weight, 0.9))


def _module(compile: bool | str, max_steps: int = 100, **extra) -> LRAModule:
    return LRAModule(
        _Tiny(),
        num_classes=3,
        is_pair=False,
        optimizer=OptimizerConfig(),
        scheduler=SchedulerConfig(),
        max_steps=max_steps,
        compile=compile,
        **extra,
    )


def test_compiled_model_shares_parameters_and_checkpoint_keys(monkeypatch) -> None:
    calls = []

    def fake_compile(model, **kwargs):  # noqa: ANN001, ANN003
        calls.append(model)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    eager, compiled = _module(False), _module(True)
    assert eager.runner is eager.model and not calls
    assert compiled.runner is compiled.model and calls == [compiled.model]
    compiled.runner  # noqa: B018 - built once
    assert len(calls) == 1
    assert eager.state_dict().keys() == compiled.state_dict().keys()


def _batch(rows: int, length: int = 5) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(rows)
    return {
        "input_ids": torch.randint(0, 7, (rows, length), generator=gen),
        "attention_mask": torch.ones(rows, length, dtype=torch.bool),
        "labels": torch.randint(0, 3, (rows,), generator=gen),
    }


@pytest.mark.parametrize(("batch_size", "compiled_rows"), [(4, [4, 4, 4]), (None, [4, 4, 3, 4])])
def test_short_batches_run_eager_when_the_batch_size_is_known(
    monkeypatch, batch_size, compiled_rows
) -> None:
    seen: list[int] = []

    def fake_compile(model, mode=None):  # noqa: ANN001
        def compiled(**inputs):  # noqa: ANN003
            seen.append(inputs["input_ids"].shape[0])
            return model(**inputs)

        return compiled

    monkeypatch.setattr(torch, "compile", fake_compile)
    module = _module(True, batch_size=batch_size)
    for rows in (4, 4, 3, 4):
        logits = module(_batch(rows))
        assert logits.shape == (rows, 3)
    assert seen == compiled_rows


def test_short_last_batch_keeps_one_compiled_graph(monkeypatch) -> None:
    from torch._dynamo.utils import counters

    real_compile = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda model, mode=None: real_compile(model, backend="eager")
    )
    torch._dynamo.reset()
    before = counters["stats"]["unique_graphs"]  # a process-wide count
    module = _module(True, batch_size=4)
    for rows in (4, 4, 3, 4, 3, 4):
        module(_batch(rows)).sum().backward()
    assert counters["stats"]["unique_graphs"] - before == 1
    torch._dynamo.reset()


def test_reduce_overhead_compiles_with_cuda_graphs_and_marks_each_step(monkeypatch) -> None:
    modes, marks = [], []

    def fake_compile(model, mode=None):  # noqa: ANN001
        modes.append(mode)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    graphs = _module(True, max_steps=10, compile_mode="reduce-overhead")
    graphs.runner  # noqa: B018
    graphs.runner  # noqa: B018
    assert modes == ["reduce-overhead"] and len(marks) == 2
    _module(True).runner  # noqa: B018
    assert modes == ["reduce-overhead", None] and len(marks) == 2


class _FakeEvent:
    """Device-event stand-in: elapsed time comes from a script of window lengths."""

    windows: list[float] = []

    def __init__(self, enable_timing: bool = True) -> None:
        pass

    def record(self) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, other: _FakeEvent) -> float:
        return self.windows.pop(0)


@pytest.mark.parametrize(
    ("eager_ms", "compiled_ms", "use_compiled"),
    [
        ((30, 32, 31), (10, 11, 10), True),
        ((10, 12, 11), (30, 28, 29), False),
        ((20, 20, 20), (12, 40, 12), True),  # one slow compiled window does not decide
    ],
)
def test_compile_auto_alternates_windows_and_keeps_the_faster_median(
    monkeypatch, eager_ms, compiled_ms, use_compiled
) -> None:
    """Windows: eager 3+10 steps, compiled 3+10 (compiling), then eager and compiled 1+10
    twice; each mode's time is the median of its three windows."""
    import statistics

    from experiments.module import CompileChooser

    monkeypatch.setattr(torch.cuda, "Event", _FakeEvent)
    _FakeEvent.windows = [10.0 * t for pair in zip(eager_ms, compiled_ms) for t in pair]
    module = _module("auto")
    chooser = CompileChooser(steps_left=200, warmup=3, timed=10, rounds=3)
    modes = []
    for _ in range(90):
        modes.append(module.use_compiled)
        chooser.batch_start(module)
        chooser.batch_end(module)
    assert modes[:13] == [False] * 13 and modes[13:26] == [True] * 13
    assert modes[26:37] == [False] * 11 and modes[37:48] == [True] * 11
    assert modes[48:59] == [False] * 11 and modes[59:70] == [True] * 11
    assert chooser.phase == "done" and module.use_compiled is use_compiled
    assert chooser.times == {"eager": list(eager_ms), "compiled": list(compiled_ms)}
    assert chooser.ms == {
        "eager": statistics.median(eager_ms),
        "compiled": statistics.median(compiled_ms),
    }
    assert modes[70:] == [use_compiled] * 20


def test_compile_auto_stays_eager_on_short_runs() -> None:
    from experiments.module import CompileChooser

    # the trial takes 13 + 13 + 4 * 11 = 70 steps; a run needs twice that
    assert CompileChooser(steps_left=139, warmup=3, timed=10, rounds=3).phase == "done"
    assert CompileChooser(steps_left=140, warmup=3, timed=10, rounds=3).phase == "trial"


def test_training_accuracy_reads_nothing_back_and_equals_the_validating_metric(
    monkeypatch,
) -> None:
    from torchmetrics.classification import MulticlassAccuracy

    module = _module(False, max_steps=1)
    reference = MulticlassAccuracy(3, average="micro")
    gen = torch.Generator().manual_seed(0)
    batches = [
        (torch.randint(0, 3, (n,), generator=gen), torch.randint(0, 3, (n,), generator=gen))
        for n in (5, 8, 1, 13)
    ]
    for preds, labels in batches:
        reference.update(preds, labels)  # validates: torch.unique reads the values back
    calls: list[int] = []
    real_unique = torch.unique
    monkeypatch.setattr(torch, "unique", lambda *a, **k: calls.append(1) or real_unique(*a, **k))
    for preds, labels in batches:
        module.train_acc.update(preds, labels)
    assert calls == []  # no per-step value check, so no host read of device values
    got, want = module.train_acc.compute(), reference.compute()
    assert got.dtype == want.dtype and torch.equal(got, want)
    correct = sum(int((p == t).sum()) for p, t in batches)
    assert float(got) == pytest.approx(correct / sum(len(t) for _, t in batches), rel=1e-7)


def test_compiled_graph_count_counts_the_pieces_of_a_broken_graph() -> None:
    from experiments.module import compiled_graph_count

    def piecewise(x: torch.Tensor) -> torch.Tensor:
        y = x + 1
        torch._dynamo.graph_break()
        return y * 2

    torch._dynamo.reset()
    before = compiled_graph_count()
    torch.compile(piecewise, backend="eager")(torch.ones(3))
    assert compiled_graph_count() - before == 2
    torch._dynamo.reset()


def test_compile_diagnosis_names_graph_breaks_and_recompilations() -> None:
    from experiments.module import compile_diagnosis

    def piecewise(x: torch.Tensor, scale: int) -> torch.Tensor:
        y = x * scale
        torch._dynamo.graph_break()
        return y * 2

    torch._dynamo.reset()
    compiled = torch.compile(piecewise, backend="eager", dynamic=False)
    compiled(torch.ones(3), 2)
    compiled(torch.ones(3), 3)  # the guard on scale fails: compiled again
    lines = compile_diagnosis()
    assert any(line.startswith("graph break: ") for line in lines)
    assert any(line.startswith("recompiled: ") and "scale" in line for line in lines)
    assert len(lines) == len(set(lines)) and all("\n" not in line for line in lines)
    torch._dynamo.reset()


def test_head_live_units_counts_units_positive_for_some_row() -> None:
    """All units dead (every pre-activation negative): 0, and the logits ignore the input."""
    torch.manual_seed(0)
    model = build_classifier(
        EncoderModelConfig(
            hidden_dim=16,
            num_layers=1,
            ffn_hidden_dim=32,
            head_hidden_dim=8,
            pooling="mean",
            init_weights="truncnormal",
        ),
        {"name": "softmax", "num_heads": 2},
        vocab_size=11,
        num_classes=2,
        max_length=12,
        pair=False,
    ).eval()
    module = LRAModule(
        model,
        num_classes=2,
        is_pair=False,
        optimizer=OptimizerConfig(),
        scheduler=SchedulerConfig(),
        max_steps=1,
    )
    ids = torch.randint(1, 11, (6, 12))  # (B, N)
    batch = {"input_ids": ids, "attention_mask": ids > 2, "labels": torch.zeros(6).long()}
    pre = model.head.dense(model.features(input_ids=ids, attention_mask=ids > 2))  # (B, 8)
    assert module.head_live_units(batch) == int((pre > 0).any(0).sum()) > 0
    with torch.no_grad():
        model.head.dense.bias.fill_(-100.0)
    assert module.head_live_units(batch) == 0
    logits = module(batch)
    assert torch.equal(logits, logits[:1].expand_as(logits))  # the same for every input
    assert _module(False, max_steps=1).head_live_units(batch) is None  # no ClassifierHead
