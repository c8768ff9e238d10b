"""The CPU peak-memory tool: its table, and what it measures for the LST backward."""

from __future__ import annotations

from pathlib import Path

import torch

from experiments import peak_memory
from experiments.bench_specs import set_recompute
from spectrans.layers.attention.lst import LSTAttention
from spectrans.layers.attention.softmax import SoftmaxAttention

TINY = ["--lengths", "64", "--batch", "2", "--hidden", "32", "--heads", "2"]


def test_table_has_a_row_per_mixer_and_length_against_the_first(tmp_path: Path) -> None:
    out = tmp_path / "peak.md"
    assert peak_memory.main([*TINY, "--mixers", "softmax,fnet", "--out", str(out)]) == 0
    text = out.read_text()
    assert "Command: `python -m experiments.peak_memory --lengths 64" in text
    rows = [line for line in text.splitlines() if line.startswith("| softmax |")]
    assert rows == [rows[0]] and rows[0].endswith("| 1.000 |")
    assert len([line for line in text.splitlines() if line.startswith("| fnet | 64 |")]) == 1


def test_unknown_mixer_is_refused(capsys) -> None:
    assert peak_memory.main([*TINY, "--mixers", "softmax,nope"]) == 2
    assert "unknown mixers ['nope']" in capsys.readouterr().out


def test_a_temporary_counts_in_the_peak() -> None:
    class Wasteful(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            spare = torch.zeros(64, *x.shape)  # 64 float32 copies of x, freed at once
            return x * 2 + spare.sum() * 0

    x = torch.randn(2, 64, 32, requires_grad=True)
    spare = 64 * x.numel() * 4
    assert peak_memory.peak_bytes(Wasteful(), x) >= spare
    assert peak_memory.peak_bytes(torch.nn.Identity(), x) < spare / 4


def test_lst_recompute_brings_the_peak_to_softmax_at_most() -> None:
    """Fast path, batch 4 (one row per chunk), N = 512: measured 1.06x softmax's peak keeping
    the intermediates (1.16x before the gated output projection rebuilt its input), 1.00x with
    the recomputing backward."""
    torch.manual_seed(0)
    x = torch.randn(4, 512, 64, requires_grad=True)
    softmax = peak_memory.peak_bytes(SoftmaxAttention(64, 2), x)
    layer = LSTAttention(64, 2, "dct", max_sequence_length=512)
    try:
        set_recompute("off")
        keep = peak_memory.peak_bytes(layer, x)
        set_recompute("on")
        rebuild = peak_memory.peak_bytes(layer, x)
    finally:
        set_recompute("auto")
    assert keep > 1.02 * softmax
    assert rebuild <= softmax
