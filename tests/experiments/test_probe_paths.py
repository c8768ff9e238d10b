import pytest
import torch

from experiments import probe_paths


def test_unknown_table_is_one_sentence_and_exit_2(capsys) -> None:
    assert probe_paths.main(["--tables", "performer,bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert "bogus" in err and "sdpa, lst, fnet, wavelet, performer" in err and "\n" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_performer_table_needs_cuda(capsys, tmp_path) -> None:
    assert probe_paths.main(["--tables", "performer", "--out", str(tmp_path / "p.md")]) == 2
    assert "needs a CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "p.md").exists()


def test_performer_table_rows() -> None:
    calls = []

    def fake(shape, path, masked, compiled, reps):
        calls.append((shape, path, masked, compiled))
        return "1.00"

    rows = probe_paths.performer_table(3, measure_ms=fake)
    n_rows = len(probe_paths.PERFORMER_SHAPES) * 2 * len(probe_paths.PERFORMER_PATHS)
    assert len(rows) == 2 + n_rows and len(calls) == 2 * n_rows
    assert rows[0].count("ms") == 2 and all(r.endswith("| 1.00 | 1.00 |") for r in rows[2:])
    assert {c[1] for c in calls} == {"fused", "triton", "autograd", "relu"}


def test_a_step_that_cannot_be_captured_is_reported_as_such(monkeypatch) -> None:
    seen = []

    def fake_median(step, reps, graph=False):
        seen.append(graph)
        raise probe_paths.GraphCaptureError("CUDA graph capture failed: RuntimeError: copy")

    monkeypatch.setattr(probe_paths, "median_ms", fake_median)
    assert probe_paths.autocast_ms(lambda: torch.zeros(1), 2, "graph") == "capture failed"
    assert seen == [True]


def test_graph_timing_reaches_the_lst_fnet_and_wavelet_tables(monkeypatch, tmp_path) -> None:
    lst_calls, fnet_calls, wavelet_calls = [], [], []

    def fake_lst(b, width, heads, n, path, reps, transform="dct", timing="eager"):
        lst_calls.append(timing)
        return "1.00"

    def fake_fnet(b, width, n, path, reps, timing="eager"):
        fnet_calls.append(timing)
        return "2.00"

    monkeypatch.setattr(probe_paths, "lst_ms", fake_lst)
    monkeypatch.setattr(probe_paths, "fnet_ms", fake_fnet)

    def fake_wavelet(b, width, n, path, reps, timing="eager"):
        wavelet_calls.append((width, n, path, timing))
        return "3.00"

    monkeypatch.setattr(probe_paths, "wavelet_ms", fake_wavelet)
    monkeypatch.setattr(probe_paths.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(probe_paths, "short_device_name", lambda device: "GPU")
    out = tmp_path / "probe.md"
    tables = "lst,fnet,wavelet"
    argv = ["--tables", tables, "--transforms", "dct", "--timing", "graph", "--out", str(out)]
    assert probe_paths.main(argv) == 0
    assert lst_calls and fnet_calls and set(lst_calls) == set(fnet_calls) == {"graph"}
    assert (32, 1024, "gemm", "graph") in wavelet_calls
    assert {c[3] for c in wavelet_calls} == {"graph"}
    text = out.read_text()
    assert (
        "## Wavelet mixing paths" in text
        and "| pathfinder-32 (512, 32) | 1024 | 3.00 | 3.00 |" in text
    )
    assert "--timing graph" in text and "replays of one CUDA graph" in text


def test_a_capture_that_runs_out_of_memory_is_an_oom(monkeypatch) -> None:
    def fake_median(step, reps, graph=False):
        raise probe_paths.GraphCaptureError(
            "CUDA graph capture failed: OutOfMemoryError: CUDA out of memory."
        )

    monkeypatch.setattr(probe_paths, "median_ms", fake_median)
    assert probe_paths.autocast_ms(lambda: torch.zeros(1), 2, "graph") == "oom"


def test_compiled_timing_reaches_the_tables_and_says_so(monkeypatch, tmp_path) -> None:
    timings = []

    def fake_lst(b, width, heads, n, path, reps, transform="dct", timing="eager"):
        timings.append(timing)
        return "1.00"

    monkeypatch.setattr(probe_paths, "lst_ms", fake_lst)
    monkeypatch.setattr(probe_paths.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(probe_paths, "short_device_name", lambda device: "GPU")
    out = tmp_path / "probe.md"
    argv = ["--tables", "lst", "--transforms", "dct", "--timing", "compiled", "--out", str(out)]
    assert probe_paths.main(argv) == 0
    assert timings and set(timings) == {"compiled"}
    assert "compiled by torch.compile" in out.read_text()


def test_compiled_timing_compiles_the_layer_and_steps_it_before_the_timed_replays(
    monkeypatch,
) -> None:
    events = []

    class Layer(torch.nn.Module):
        mixing_path = "fast"

        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            events.append(("forward", self.mixing_path))
            return x * self.scale

    def fake_compile(module, mode=None, backend="inductor"):
        events.append(("compile", module.mixing_path))
        return module

    def fake_median(step, reps, graph=False):
        events.append(("timed", graph))
        return 1.5

    monkeypatch.setattr(probe_paths, "compile_fresh", fake_compile)
    monkeypatch.setattr(probe_paths, "median_ms", fake_median)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
    monkeypatch.setattr(torch.nn.Module, "cuda", lambda self, *a, **k: self)
    real_randn = torch.randn
    monkeypatch.setattr(
        probe_paths.torch, "randn", lambda *a, device=None, **k: real_randn(*a, **k)
    )
    cell = probe_paths._mixing_layer_ms(Layer(), 2, 4, 8, "gemm", 3, "compiled")
    assert cell == "1.50"
    assert events == [
        ("compile", "gemm"),
        ("forward", "gemm"),
        ("forward", "gemm"),
        ("timed", True),
    ]


def test_lengths_and_lst_paths_choose_the_rows_and_columns(monkeypatch, tmp_path) -> None:
    cells = []

    def fake_lst(b, width, heads, n, path, reps, transform="dct", timing="eager"):
        cells.append((n, path))
        return "1.00"

    monkeypatch.setattr(probe_paths, "lst_ms", fake_lst)
    monkeypatch.setattr(probe_paths.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(probe_paths, "short_device_name", lambda device: "GPU")
    out = tmp_path / "probe.md"
    argv = ["--tables", "lst", "--transforms", "dct", "--lengths", "1024,65536"]
    argv += ["--lst-paths", "fast,fast-strided", "--out", str(out)]
    assert probe_paths.main(argv) == 0
    assert {n for n, _ in cells} == {1024, 65536} and {p for _, p in cells} == {
        "fast",
        "fast-strided",
    }
    text = out.read_text()
    assert "| N | fast ms | fast-strided ms |" in text
    assert "--lengths 1024,65536 --lst-paths fast,fast-strided" in text
    rows = [line for line in text.splitlines() if line.startswith("| dct |")]
    assert len(rows) == 3  # 1024 at both widths, 65536 at the layer width


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--lengths", "1024,many", "not a comma list of integers"),
        ("--lst-paths", "fast,warp", "warp"),
    ],
)
def test_bad_lengths_or_paths_are_one_sentence_and_exit_2(capsys, option, value, words) -> None:
    assert probe_paths.main(["--tables", "lst", option, value]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err
