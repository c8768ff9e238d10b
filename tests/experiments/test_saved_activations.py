"""The saved-activation count: exact on a layer whose saved tensors are known."""

from __future__ import annotations

import torch
from torch import nn

from experiments import saved_activations


def test_saved_bytes_of_a_linear_layer_are_its_input_and_weight() -> None:
    layer = nn.Linear(16, 8, bias=False)
    x = torch.randn(3, 5, 16, requires_grad=True)
    # the product saves its input (for the weight's gradient) and its weight (for the input's)
    assert saved_activations.saved_bytes(layer, x, "fp32") == x.nbytes + layer.weight.nbytes
    # under bfloat16 autocast both are saved as their bfloat16 casts
    assert saved_activations.saved_bytes(layer, x, "bf16") == (x.nbytes + layer.weight.nbytes) // 2


def test_a_storage_saved_twice_is_counted_once() -> None:
    x = torch.randn(4, 6, requires_grad=True)
    # x * x saves x twice (once per operand)
    assert saved_activations.saved_bytes(lambda t: t * t, x, "fp32") == x.nbytes


def test_the_table_names_its_command_and_lists_the_mixers(tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "saved.md"
    argv = ["--length", "32", "--hidden", "16", "--heads", "2", "--mixers", "softmax,lst-dct"]
    assert saved_activations.main([*argv, "--out", str(out)]) == 0
    text = out.read_text()
    assert "python -m experiments.saved_activations --length 32" in text
    rows = [line for line in text.splitlines() if line.startswith(("| softmax ", "| lst-dct "))]
    assert len(rows) == 2 and all(float(r.split("|")[3]) > 0 for r in rows)


def test_an_unknown_mixer_is_refused(capsys) -> None:  # noqa: ANN001
    assert saved_activations.main(["--mixers", "softmx"]) == 2
    assert "unknown mixers ['softmx']" in capsys.readouterr().out


def test_a_compiled_layer_is_counted_after_its_compilation() -> None:
    """The compiled linear layer saves what the eager one does; the compiling pass leaves no
    gradient behind on the input."""
    layer = nn.Linear(16, 8, bias=False)
    x = torch.randn(3, 5, 16, requires_grad=True)
    forward = saved_activations.compiled_forward(layer, x, "fp32")
    assert x.grad is None
    assert saved_activations.saved_bytes(forward, x, "fp32") == x.nbytes + layer.weight.nbytes
