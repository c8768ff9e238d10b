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
    assert probe_paths.autocast_ms(lambda: torch.zeros(1), 2, graph=True) == "capture failed"
    assert seen == [True]


def test_graph_timing_reaches_the_lst_fnet_and_wavelet_tables(monkeypatch, tmp_path) -> None:
    lst_calls, fnet_calls, wavelet_calls = [], [], []

    def fake_lst(b, width, heads, n, path, reps, transform="dct", graph=False):
        lst_calls.append(graph)
        return "1.00"

    def fake_fnet(b, width, n, path, reps, graph=False):
        fnet_calls.append(graph)
        return "2.00"

    monkeypatch.setattr(probe_paths, "lst_ms", fake_lst)
    monkeypatch.setattr(probe_paths, "fnet_ms", fake_fnet)

    def fake_wavelet(b, width, n, path, reps, graph=False):
        wavelet_calls.append((width, n, path, graph))
        return "3.00"

    monkeypatch.setattr(probe_paths, "wavelet_ms", fake_wavelet)
    monkeypatch.setattr(probe_paths.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(probe_paths, "short_device_name", lambda device: "GPU")
    out = tmp_path / "probe.md"
    tables = "lst,fnet,wavelet"
    argv = ["--tables", tables, "--transforms", "dct", "--timing", "graph", "--out", str(out)]
    assert probe_paths.main(argv) == 0
    assert lst_calls and fnet_calls and all(lst_calls) and all(fnet_calls)
    assert (32, 1024, "gemm", True) in wavelet_calls and all(c[3] for c in wavelet_calls)
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
    assert probe_paths.autocast_ms(lambda: torch.zeros(1), 2, graph=True) == "oom"
