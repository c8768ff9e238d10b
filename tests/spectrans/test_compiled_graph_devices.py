"""A compiled mixer builds every tensor of its graphs on its input's device.

A ``torch.compile`` trace calls the cached builders of constant tensors (permutations,
twiddles, filter taps, slopes) instead of their caches, so a builder that makes its tensor
on the host and copies it records a host-to-device copy in the graph, which CUDA-graph
capture refuses. The mixers are traced here on the ``meta`` device (no data, no GPU): every
tensor in the forward and backward graphs, and every constant they hold, must be on it.
"""

from __future__ import annotations

import traceback

import pytest
import torch
from torch import nn
from torch._dynamo.backends.common import aot_autograd

from experiments.bench_specs import build_mixer, default_specs
from tests.mixer_cases import mixer_path_cases

HIDDEN, HEADS, LENGTH = 64, 4, 63
DEFAULT_CASES = {
    ("lst-dct", "fast"),
    ("lst-dst", "dense"),
    ("lst-mixed", "factored"),
    ("wavelet", None),
}
"""Cases in the default test run (the builders behind them once copied from the host); the
rest are ``slow``."""


def _refused_by_autocast(err: BaseException | None) -> bool:
    """Whether ``err`` (or an error it was raised from) came out of ``torch.autocast``.

    Some mixers open ``torch.autocast(device_type=x.device.type)`` blocks, which refuse the
    meta device.
    """
    while err is not None:
        if "device type for autocast" in str(err):
            return True
        frames = traceback.extract_tb(err.__traceback__)
        if any(f.filename.replace("\\", "/").endswith("amp/autocast_mode.py") for f in frames):
            return True
        err = err.__cause__ or err.__context__
    return False


def _cases() -> list[object]:
    cases = mixer_path_cases(HIDDEN, HEADS, LENGTH, default=DEFAULT_CASES)
    softmax = next(s for s in default_specs(HIDDEN, HEADS) if s.label == "softmax")
    alibi = type(softmax)(label="softmax-alibi", config={**softmax.config, "alibi": True})
    return [*cases, pytest.param(alibi, None, id="softmax-alibi")]


def _off_device(gm: torch.fx.GraphModule, device: torch.device) -> list[str]:
    """Nodes of an aten graph whose tensors (values or held constants) are not on ``device``."""
    found = []
    for node in gm.graph.nodes:
        value = getattr(gm, node.target) if node.op == "get_attr" else node.meta.get("val")
        for t in value if isinstance(value, (tuple, list)) else [value]:
            if isinstance(t, torch.Tensor) and t.device != device:
                found.append(f"{node.op} {node.target} on {t.device} {tuple(t.shape)}")
    return found


@pytest.mark.parametrize(("spec", "path"), _cases())
def test_compiled_forward_and_backward_stay_on_the_input_device(
    spec: object, path: str | None
) -> None:
    meta = torch.device("meta")
    found: list[str] = []

    def inspect(gm: torch.fx.GraphModule, _inputs: object) -> torch.fx.GraphModule:
        found.extend(_off_device(gm, meta))
        return gm

    torch._dynamo.reset()
    with meta:
        mixer: nn.Module = build_mixer(spec, LENGTH)  # type: ignore[arg-type]
    if path is not None:
        mixer.mixing_path = path
    x = torch.randn(2, LENGTH, HIDDEN, device=meta, requires_grad=True)  # (B, N, D)
    compiled = torch.compile(mixer, backend=aot_autograd(fw_compiler=inspect, bw_compiler=inspect))
    try:
        out = compiled(x)
    except Exception as err:  # noqa: BLE001 -- only the meta-autocast refusal is a skip
        if _refused_by_autocast(err):
            pytest.skip("the mixer opens torch.autocast, which refuses the meta device")
        raise
    out = out[0] if isinstance(out, tuple) else out
    out.sum().backward()
    assert found == [], f"{spec.label} ({path}) graphs hold tensors off the input's device: {found}"
