import csv
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from experiments import bench, timing
from experiments.bench import MixerSpec, Row

LENGTHS = [2**k for k in range(6, 14)]


# ------------------------------------------------------------------ fitting and crossover


@pytest.mark.parametrize("alpha", [1.0, 1.15, 2.0, 0.5])
def test_fit_power_law_exact(alpha: float) -> None:
    times = [3.0 * n**alpha for n in LENGTHS]
    fitted, c = bench.fit_power_law(LENGTHS, times)
    assert fitted == pytest.approx(alpha, abs=1e-9)
    assert c == pytest.approx(math.log(3.0), abs=1e-9)


def test_fit_power_law_rejects_degenerate_input() -> None:
    with pytest.raises(ValueError, match="two distinct lengths"):
        bench.fit_power_law([128, 128], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        bench.fit_power_law([128, 256], [0.0, 2.0])


def test_upper_half_and_alpha_on_upper_half() -> None:
    assert bench.upper_half([1024, 256, 512, 2048]) == [1024, 2048]
    assert bench.upper_half([256, 512, 1024, 2048, 4096]) == [1024, 2048, 4096]
    # flat (overhead-bound) at short lengths, quadratic from 1024 on
    times = {n: (1.0 if n < 1024 else (n / 1024) ** 2) for n in [128, 256, 512, 1024, 2048, 4096]}
    assert bench.alpha_upper_half(times) == pytest.approx(2.0)
    assert bench.alpha_all(times) < 1.5
    assert bench.alpha_upper_half({256: 1.0}) is None


def test_crossover_length_on_exact_power_laws() -> None:
    base = {n: float(n) ** 2 for n in LENGTHS}  # softmax: N^2
    linear = {n: 100.0 * n for n in LENGTHS}  # faster than N^2 once N > 100
    assert bench.crossover_length(linear, base) == 128
    assert bench.crossover_length({n: 0.5 * n**2 for n in LENGTHS}, base) == LENGTHS[0]
    assert bench.crossover_length({n: 2.0 * n**2 for n in LENGTHS}, base) is None
    assert bench.crossover_length(base, base) is None  # equal is not faster
    # faster at short lengths only: never faster "from" any N
    assert bench.crossover_length({n: float(n) ** 3 / 256 for n in LENGTHS}, base) is None
    # the baseline running out of memory counts as slower
    base_oom = {**base, 8192: math.inf}
    assert bench.crossover_length({n: 1e9 for n in LENGTHS}, base_oom) == 8192


def test_verdict_against_claims() -> None:
    assert bench.verdict("O(n^2)", 1.95) == "consistent"
    assert bench.verdict("O(n^2)", 1.2).startswith("below N^2")
    assert bench.verdict("O(n log n)", 1.1) == "consistent"
    assert bench.verdict("O(n)", 1.6) == "GROWS FASTER than claimed"
    assert bench.verdict("O(n)", 0.3) == "consistent (overhead-bound)"
    assert bench.verdict("", 1.0) == "—" and bench.verdict("O(n)", None) == "—"


def _rows(times: dict[str, dict[int, float]], status: dict[tuple[str, int], str] | None = None):
    status = status or {}
    return [
        Row(m, "layer", "fp32", "cpu", n, 4, t, 1, status.get((m, n), "ok"))
        for m, ts in times.items()
        for n, t in ts.items()
    ]


def test_summarize_alpha_ratio_crossover() -> None:
    ns = [1024, 2048, 4096, 8192]
    times = {"softmax": {n: 1e-6 * n**2 for n in ns}, "lst-dct": {n: 1e-3 * n**1.1 for n in ns}}
    summary = {s["mixer"]: s for s in bench.summarize(_rows(times), "layer", "fp32")}
    lst = summary["lst-dct"]
    assert lst["alpha_upper"] == pytest.approx(1.1) and lst["alpha_all"] == pytest.approx(1.1)
    assert lst["ratio_n"] == 8192
    assert lst["ratio"] == pytest.approx(1e-3 * 8192**1.1 / (1e-6 * 8192**2))
    # 1e-3 N^1.1 < 1e-6 N^2  <=>  N > 1000^(1/0.9) = 2154.4: first measured length 4096
    assert lst["crossover"] == 4096
    assert summary["softmax"]["alpha_upper"] == pytest.approx(2.0)
    _, ratios = bench.ratio_rows(_rows(times), "layer", "fp32")
    assert ratios[1][0] == "lst-dct"
    assert float(ratios[1][3]) == pytest.approx(1e-3 * 4096**1.1 / (1e-6 * 4096**2), abs=0.01)
    header, body = bench.table_rows(_rows(times), "layer", "fp32")
    assert header[0] == "mixer" and body[0][-3] == "1.00 (8192)"


def test_summarize_uses_softmax_oom_as_slower() -> None:
    times = {"softmax": {256: 1.0, 512: 4.0}, "fnet": {256: 2.0, 512: 5.0, 1024: 9.0}}
    rows = _rows(times) + [Row("softmax", "layer", "fp32", "cpu", 1024, 4, status="oom")]
    fnet = {s["mixer"]: s for s in bench.summarize(rows, "layer", "fp32")}["fnet"]
    assert fnet["crossover"] == 1024 and fnet["ratio_n"] == 512


# ------------------------------------------------------------------ measurement


class _Quadratic(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = torch.softmax(x @ x.transpose(1, 2) / x.shape[-1] ** 0.5, -1)  # (B, N, N)
        return self.proj(scores @ x)  # (B, N, D)


class _Sleepy(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.05)
        return super().forward(x)


def _broken(n: int) -> nn.Module:
    raise RuntimeError("boom: this mixer is broken")


def _oom(n: int) -> nn.Module:
    raise RuntimeError("CUDA out of memory. Tried to allocate 64 GiB")


def test_run_benchmark_tiny_cpu(tmp_path: Path) -> None:
    dim = 16
    specs = [
        MixerSpec("softmax", factory=lambda n: _Quadratic(dim)),
        MixerSpec("linear", factory=lambda n: nn.Linear(dim, dim)),
        MixerSpec("broken", factory=_broken),
        MixerSpec("oom", factory=_oom),
    ]
    rows = bench.run_benchmark(
        specs,
        lengths=[32, 64],
        dtypes=["fp32", "bf16"],
        scopes=["layer", "model"],
        device=torch.device("cpu"),
        batch=2,
        hidden=dim,
        repeats=1,
        budget_s=30.0,
    )
    assert len(rows) == 4 * 2 * 2 * 2
    by = {(r.mixer, r.scope, r.dtype, r.N): r for r in rows}
    for mixer in ("softmax", "linear"):
        for scope in ("layer", "model"):
            r = by[(mixer, scope, "fp32", 64)]
            assert r.status == "ok" and r.time_ms > 0 and r.repeats == 1, r
    assert by[("broken", "layer", "fp32", 32)].status == "error"
    assert "boom" in by[("broken", "layer", "fp32", 32)].message
    assert by[("oom", "layer", "fp32", 32)].status == "oom"
    assert by[("oom", "layer", "fp32", 64)].status == "skipped"
    meta = {
        "command": "test",
        "git_commit": "abc",
        "device": "cpu",
        "torch": torch.__version__,
        "date": "today",
        "batch": 2,
        "hidden": dim,
        "heads": 1,
        "repeats": 1,
        "budget": 30.0,
        "model": "pre-norm stack",
        "memory": "rss",
    }
    paths = bench.write_outputs(rows, tmp_path, meta)
    with paths[0].open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(rows) and tuple(table[0]) == bench.CSV_COLUMNS
    md = paths[1].read_text()
    assert "## layer, fp32" in md and "## model, bf16" in md and "boom" in md
    assert "- git commit: `abc`" in md
    _, body = bench.table_rows(rows, "layer", "fp32")
    crossover = {cells[0]: cells[-2] for cells in body}
    assert crossover["softmax"] == "baseline" and crossover["broken"] == "n/a"
    assert crossover["linear"] in ("never in range", "≤ 32 (all measured)", "64")
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_over_budget_stops_growth() -> None:
    spec = MixerSpec("sleepy", factory=lambda n: _Sleepy(4, 4))
    rows = bench.run_benchmark(
        [spec],
        lengths=[8, 16, 32],
        dtypes=["fp32"],
        scopes=["layer"],
        device=torch.device("cpu"),
        batch=1,
        hidden=4,
        repeats=3,
        budget_s=0.01,
    )
    assert [r.status for r in rows] == ["over_budget", "skipped", "skipped"]
    assert rows[0].time_ms >= 50.0


def test_cpu_rss_growth_sees_a_large_allocation() -> None:
    holder = []
    growth = bench.cpu_rss_growth(lambda: holder.append(torch.ones(16 * 2**20)))  # 64 MiB
    if growth is None:
        pytest.skip("/proc/self/clear_refs is not available")
    assert growth >= 48 * 2**20


def test_main_tiny_registry_run(tmp_path: Path) -> None:
    rc = bench.main(
        [
            "--device",
            "cpu",
            "--lengths",
            "64",
            "128",
            "--repeats",
            "1",
            "--dtypes",
            "fp32",
            "--scopes",
            "layer",
            "--mixers",
            "softmax,fnet,lst-dct",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    with (tmp_path / "scaling.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert {r["mixer"] for r in table} == {"softmax", "fnet", "lst-dct"} and len(table) == 6
    assert all(r["status"] in ("ok", "error") for r in table)
    assert "python -m experiments.bench --device cpu" in (tmp_path / "scaling.md").read_text()
    assert (tmp_path / "scaling.png").stat().st_size > 0


def test_default_specs_cover_the_registry() -> None:
    from spectrans import registry

    labels = [s.label for s in bench.default_specs(64, 4)]
    assert {f"lst-{t}" for t in bench.LST_TRANSFORMS} <= set(labels)
    assert set(registry.names()) - {"lst"} <= set(labels)
    specs = {s.label: s for s in bench.default_specs(64, 4)}
    assert "num_heads" not in specs["fnet"].config  # mixing configs have no heads
    assert specs["softmax"].claim == "O(n^2)" and specs["lst-dct"].claim == "O(n log n)"


def test_sdpa_anchor_is_multi_head_softmax_attention() -> None:
    torch.manual_seed(0)
    layer = bench.SDPAAnchor(12, 3).double()
    x = torch.randn(2, 7, 12, dtype=torch.float64)  # (B, N, D)
    heads = layer.qkv(x).view(2, 7, 3, 3, 4).permute(2, 0, 3, 1, 4)  # (3, B, H, N, d)
    weights = torch.softmax(heads[0] @ heads[1].transpose(-1, -2) / 2.0, dim=-1)  # sqrt(4)
    expected = layer.out((weights @ heads[2]).transpose(1, 2).reshape(2, 7, 12))  # (B, N, D)
    torch.testing.assert_close(layer(x), expected)
    with pytest.raises(ValueError, match="must divide"):
        bench.SDPAAnchor(10, 3)


def test_the_report_compares_softmax_with_the_anchor(tmp_path: Path) -> None:
    assert bench.default_specs(64, 4)[0].label == "sdpa-anchor"
    argv = ["--device", "cpu", "--lengths", "64", "128", "--repeats", "1", "--dtypes", "fp32"]
    argv += ["--scopes", "layer", "--mixers", "sdpa-anchor,softmax", "--out", str(tmp_path)]
    assert bench.main(argv) == 0
    text = (tmp_path / "scaling.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| softmax / sdpa-anchor"))
    assert all(float(cell) > 0 for cell in row.strip("| ").split(" | ")[1:])  # N = 64, 128


def test_unknown_mixer_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="--mixers got unknown value"):
        bench.main(["--mixers", "nope", "--device", "cpu"])


def test_main_writes_tables_after_every_finished_mixer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bench.run_config

    def run_config(spec, *args, **kwargs):
        if spec.label == "fnet":
            raise KeyboardInterrupt  # the run is stopped while fnet is measured
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(bench, "run_config", run_config)
    (tmp_path / "scaling.png").write_bytes(b"a plot of an earlier run")
    argv = ["--device", "cpu", "--lengths", "64", "128", "--repeats", "1", "--dtypes", "fp32"]
    argv += ["--scopes", "layer", "--mixers", "softmax,fnet,lst-dct", "--out", str(tmp_path)]
    with pytest.raises(KeyboardInterrupt):
        bench.main(argv)
    with (tmp_path / "scaling.csv").open() as fh:
        table = list(csv.DictReader(fh))
    # registry order: softmax, lst-dct, then fnet
    assert [(r["mixer"], r["N"]) for r in table] == [
        (m, n) for m in ("softmax", "lst-dct") for n in ("64", "128")
    ]
    text = (tmp_path / "scaling.md").read_text()
    assert "Partial: 2 of 3 (scope, dtype, mixer) series finished" in text
    assert "| lst-dct |" in text and "| fnet |" not in text
    assert not (tmp_path / "scaling.png").exists() and not list(tmp_path.glob("*.tmp"))


# ------------------------------------------------------------------ CUDA graph timing


def test_graph_timing_on_the_cpu_is_a_usage_error() -> None:
    with pytest.raises(bench.BenchUsageError) as info:
        bench.main(["--timing", "graph", "--device", "cpu"])
    text = str(info.value)
    assert text.startswith("--timing graph needs --device cuda")
    assert "\n" not in text and text.count(";") <= 1


def test_compiled_timing_on_the_cpu_is_a_usage_error() -> None:
    with pytest.raises(bench.BenchUsageError) as info:
        bench.main(["--timing", "compiled", "--device", "cpu"])
    assert str(info.value).startswith("--timing compiled needs --device cuda")


def test_run_config_compiled_compiles_the_module_before_timing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The module is compiled, stepped twice untimed, then captured; eager rows are not."""
    log: list[str] = []
    monkeypatch.setattr(timing, "capture_graph", _fake_capture(log))
    probe = _CacheProbe(8)
    compiled: list[nn.Module] = []

    def compile_fresh(module):
        compiled.append(module)
        log.append("compile")
        return module

    monkeypatch.setattr(bench, "compile_fresh", compile_fresh)
    spec = MixerSpec("probe", factory=lambda n: probe)
    cpu = {"device": torch.device("cpu"), "batch": 2, "hidden": 8, "repeats": 2, "budget_s": 30.0}
    row = bench.run_config(spec, "layer", "bf16", 16, timing="compiled", **cpu)
    assert (row.status, row.repeats) == ("ok", 2)
    assert len(compiled) == 1 and probe in compiled[0].modules()  # the layer as built
    # two compiling steps, warm-up, memory, the capture's step and two replays
    assert log == ["compile", "capture on cpu"] and len(probe.cache) == 7
    assert bench.run_config(spec, "layer", "bf16", 16, timing="graph", **cpu).status == "ok"
    assert len(compiled) == 1


def test_graph_timing_on_the_cpu_exits_2_from_the_command_line() -> None:
    root = Path(bench.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    argv = [sys.executable, "-m", "experiments.bench", "--timing", "graph", "--device", "cpu"]
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --timing graph needs --device cuda")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("mode", "expected", "absent"),
    [
        (
            "eager",
            "Time: median of the timed repeats after one warm-up step (`--timing eager`)",
            "CUDA graph",
        ),
        (
            None,
            "Time: median of the timed repeats after one warm-up step (`--timing eager`)",
            "CUDA graph",
        ),
        (
            "graph",
            "Time: median of the timed replays of one CUDA graph (`--timing graph`)",
            "launched from Python",
        ),
        (
            "compiled",
            "Time: median of the timed replays of one CUDA graph (`--timing compiled`)",
            "(`--timing graph`)",
        ),
    ],
)
def test_the_report_names_the_timing(
    tmp_path: Path, mode: str | None, expected: str, absent: str
) -> None:
    rows = _rows({"softmax": {64: 1.0, 128: 3.0}, "fnet": {64: 0.5, 128: 1.0}})
    meta = {
        "command": "test",
        "git_commit": "abc",
        "device": "gpu",
        "torch": torch.__version__,
        "date": "today",
        "batch": 2,
        "hidden": 16,
        "heads": 1,
        "repeats": 1,
        "budget": 30.0,
        "model": "pre-norm stack",
        "memory": "allocator",
    }
    if mode is not None:
        meta["timing"] = mode
    bench.write_markdown(rows, tmp_path / "scaling.md", meta)
    intro = (tmp_path / "scaling.md").read_text().split("## ")[0]
    assert expected in intro and absent not in intro
    if mode == "graph":
        assert "peak memory is from an eager step" in intro


def _fake_capture(log: list[str]):
    """A capture that runs the step once (eagerly) and replays it eagerly."""

    def capture_graph(step, device, warmup=3):
        log.append(f"capture on {device.type}")
        step()
        return step

    return capture_graph


class _CacheProbe(nn.Linear):
    def __init__(self, dim: int) -> None:
        super().__init__(dim, dim)
        self.cache: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_autocast_enabled("cpu"):
            self.cache.append(torch.is_autocast_cache_enabled())
        return super().forward(x)


def test_run_config_with_graph_captures_a_cache_free_step(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    monkeypatch.setattr(timing, "capture_graph", _fake_capture(log))
    probe = _CacheProbe(8)
    spec = MixerSpec("probe", factory=lambda n: probe)
    cpu = {"device": torch.device("cpu"), "batch": 2, "hidden": 8, "repeats": 2, "budget_s": 30.0}
    row = bench.run_config(spec, "layer", "bf16", 16, timing="graph", **cpu)
    assert (row.status, row.repeats) == ("ok", 2) and row.time_ms > 0.0, row
    assert log == ["capture on cpu"]
    # warm-up, memory, the capture's step and two replays, all without autocast's weight cache
    assert probe.cache == [False] * 5
    eager = bench.run_config(spec, "layer", "bf16", 16, **cpu)
    assert eager.status == "ok" and probe.cache[5:] == [True] * 4 and len(log) == 1


def test_a_failed_capture_is_an_error_row_and_the_run_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    captured: list[str] = []

    def capture_graph(step, device, warmup=3):
        step()  # the step itself runs; only the capture fails
        captured.append(device.type)
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore")

    monkeypatch.setattr(timing, "capture_graph", capture_graph)
    dim = 8
    specs = [
        MixerSpec("syncs", factory=lambda n: nn.Linear(dim, dim)),
        MixerSpec("broken", factory=_broken),
    ]
    rows = bench.run_benchmark(
        specs,
        lengths=[16, 32],
        dtypes=["fp32"],
        scopes=["layer"],
        device=torch.device("cpu"),
        batch=1,
        hidden=dim,
        repeats=1,
        budget_s=30.0,
        timing="graph",
    )
    by = {(r.mixer, r.N): r for r in rows}
    for n in (16, 32):  # an error does not stop growth: each length is tried
        row = by[("syncs", n)]
        assert row.status == "error" and row.time_ms is None, row
        assert row.message == (
            "CUDA graph capture failed: RuntimeError: CUDA error: operation not permitted when "
            "stream is capturing"
        )
    assert captured == ["cpu", "cpu"]
    assert by[("broken", 16)].status == "error" and "boom" in by[("broken", 16)].message


def test_an_out_of_memory_capture_is_oom(monkeypatch: pytest.MonkeyPatch) -> None:
    def capture_graph(step, device, warmup=3):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 8 GiB")

    monkeypatch.setattr(timing, "capture_graph", capture_graph)
    spec = MixerSpec("big", factory=lambda n: nn.Linear(4, 4))
    row = bench.run_config(
        spec,
        "layer",
        "fp32",
        8,
        device=torch.device("cpu"),
        batch=1,
        hidden=4,
        repeats=1,
        budget_s=30.0,
        timing="graph",
    )
    assert row.status == "oom" and row.message.startswith("CUDA graph capture failed:")


def test_run_benchmark_rejects_an_unknown_timing() -> None:
    with pytest.raises(ValueError, match="timing must be one of"):
        bench.run_benchmark(
            [],
            lengths=[8],
            dtypes=["fp32"],
            scopes=["layer"],
            device=torch.device("cpu"),
            batch=1,
            hidden=4,
            repeats=1,
            budget_s=1.0,
            timing="jit",
        )


@pytest.mark.parametrize(("choice", "value"), [("on", True), ("off", False), ("auto", None)])
@pytest.mark.parametrize("flag", ["--recompute", "--lst-recompute"])
def test_recompute_option_sets_the_layers_rule(flag: str, choice: str, value: bool | None) -> None:
    from spectrans.layers.attention.lst import LSTAttention
    from spectrans.layers.attention.spectral import PerformerAttention
    from spectrans.layers.mixing.s4d import S4DMixing

    try:
        bench._settings(bench.parse_args(["--device", "cpu", flag, choice]))
        assert LSTAttention(16, 2, "dct", max_sequence_length=8).recompute_mixing is value
        assert PerformerAttention(16, 2).recompute_mixing is value
        assert S4DMixing(16).recompute_mixing is value
    finally:
        bench.set_recompute("auto")


def test_kernels_option_writes_a_table_per_measured_row(tmp_path: Path) -> None:
    """On the CPU the tables rank ATen operators by host time; no row, no file."""
    argv = [
        "--device", "cpu", "--lengths", "64", "--repeats", "1", "--dtypes", "fp32",
        "--scopes", "layer", "--mixers", "softmax,lst-dct", "--out", str(tmp_path),
    ]  # fmt: skip
    assert bench.main([*argv, "--kernels", "4"]) == 0
    text = (tmp_path / "kernels.md").read_text()
    assert "python -m experiments.bench --device cpu" in text and "--kernels 4" in text
    sections = text.split("\n## ")[1:]
    assert [s.split(":")[0] for s in sections] == [
        "softmax, layer, fp32, N = 64",
        "lst-dct, layer, fp32, N = 64",
    ]
    for section in sections:
        rows = [line for line in section.splitlines() if line.startswith("| `aten::")]
        assert 1 <= len(rows) <= 4
        assert "| total host time in ATen operators |" in section
    with (tmp_path / "scaling.csv").open() as fh:
        assert "kernels" not in next(csv.reader(fh))
    (tmp_path / "kernels.md").unlink()
    assert bench.main(argv) == 0
    assert not (tmp_path / "kernels.md").exists()


def test_negative_kernels_is_a_usage_error() -> None:
    with pytest.raises(bench.BenchUsageError, match="--kernels must be 0"):
        bench.main(["--device", "cpu", "--kernels", "-1"])
