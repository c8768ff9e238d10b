import pytest
import torch

from experiments import probe_paths


def test_unknown_table_is_one_sentence_and_exit_2(capsys) -> None:
    assert probe_paths.main(["--tables", "performer,bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert "bogus" in err and "sdpa, lst, fnet, performer" in err and "\n" not in err


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
