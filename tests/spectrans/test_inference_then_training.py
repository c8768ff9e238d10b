"""A mixer evaluated under ``torch.inference_mode`` first still trains afterwards.

Cached constant tensors (permutations, twiddles, transform matrices) made by a first call
inside ``torch.inference_mode`` would be inference tensors, which autograd refuses to save
for a backward; the caches build them outside it. Lightning's sanity check runs validation
under inference mode before the first training step, so this is the order of every run.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from experiments.bench_specs import build_mixer
from spectrans.transforms import constants
from tests.mixer_cases import mixer_path_cases

HIDDEN, HEADS, LENGTH = 32, 4, 37


@pytest.mark.parametrize(("spec", "path"), mixer_path_cases(HIDDEN, HEADS, LENGTH))
def test_training_step_after_an_inference_mode_evaluation(spec: object, path: str | None) -> None:
    torch.manual_seed(0)
    mixer: nn.Module = build_mixer(spec, LENGTH)  # type: ignore[arg-type]
    if path is not None:
        mixer.mixing_path = path
    x = torch.randn(2, LENGTH, HIDDEN)  # (B, N, D)
    constants.clear_caches()  # this test's calls build every constant afresh
    with torch.inference_mode():
        mixer.eval()(x)
    x.requires_grad_(True)
    out = mixer.train()(x)
    out = out[0] if isinstance(out, tuple) else out
    out.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
