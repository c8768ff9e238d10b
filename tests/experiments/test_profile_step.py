"""experiments.profile_step and experiments.probe_paths: the parts that run without a GPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from experiments import probe_paths, profile_step
from experiments.bench_step_setup import load_setup


def test_zero_dropout_silences_every_dropout_of_a_preset_model() -> None:
    model = load_setup("softmax", "listops", batch=2, max_len=16).model
    probabilities = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    floats = [m.dropout for m in model.modules() if isinstance(getattr(m, "dropout", None), float)]
    assert max(probabilities + floats) > 0  # the LRA preset has dropout to remove
    profile_step._zero_dropout(model)
    assert all(m.p == 0.0 for m in model.modules() if isinstance(m, nn.Dropout))
    assert all(
        m.dropout == 0.0 for m in model.modules() if isinstance(getattr(m, "dropout", None), float)
    )
    model.train()
    ids = torch.randint(0, 10, (2, 16))
    torch.testing.assert_close(model(input_ids=ids), model(input_ids=ids))  # deterministic


def test_unknown_mixer_or_variant_is_one_sentence(capsys: pytest.CaptureFixture) -> None:
    for argv in (["--mixers", "nope"], ["--variants", "half-mask"]):
        with pytest.raises(SystemExit) as err:
            profile_step.parse_args(argv)
        assert err.value.code == 2
        assert "unknown" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_both_tools_refuse_to_run_without_cuda(capsys: pytest.CaptureFixture) -> None:
    assert profile_step.main(["--mixers", "softmax"]) == 2
    assert probe_paths.main(["--out", "unused.md"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "CUDA" in err


def test_probe_refuses_unknown_tables_or_transforms(capsys: pytest.CaptureFixture) -> None:
    assert probe_paths.main(["--tables", "sdpa,nope"]) == 2
    assert probe_paths.main(["--transforms", "dct,fft"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and err.count("unknown") == 2


def test_lst_table_has_every_path_per_transform_and_skips_big_matrices() -> None:
    calls = []

    def fake(b, width, heads, n, path, reps, transform):  # noqa: ANN001, ANN202
        calls.append((transform, n, path))
        return "1.00"

    rows = probe_paths.lst_table(3, ["dct", "hadamard"], measure_ms=fake)
    lengths = sum(len(shape[3]) for shape in probe_paths.LST_SHAPES.values())
    assert len(rows) == 2 + 2 * lengths
    assert rows[0].count("ms") == len(probe_paths.LST_PATHS) == 6 and "folded" in rows[0]
    paths = {"gemm", "folded", "factored", "dense", "fast", "fast-strided"}
    assert {p for _, _, p in calls} == paths
    assert {n for _, n, _ in calls} >= {1024, 2048, 4096, 8192, 16384, 65536}
    assert probe_paths.lst_ms(1, 8, 2, 65536, "gemm", 1) == "-"  # N^2 matrix: not timed
    assert probe_paths.lst_ms(1, 8, 2, 65536, "dense", 1) == "-"
    assert probe_paths.lst_ms(1, 8, 2, 1024, "fast-strided", 1, "hadamard") == "-"  # no DCT


def test_fnet_table_times_every_path_at_every_length() -> None:
    calls = []

    def fake(b, width, n, path, reps):  # noqa: ANN001, ANN202
        calls.append((n, path))
        return "1.00"

    rows = probe_paths.fnet_table(3, measure_ms=fake)
    lengths = sum(len(shape[3]) for shape in probe_paths.LST_SHAPES.values())
    assert len(rows) == 2 + lengths and "factored ms" in rows[0] and "gemm ms" in rows[0]
    assert {p for _, p in calls} == {"fft", "factored", "gemm"} and len(calls) == 3 * lengths
