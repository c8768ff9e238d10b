"""The library's custom ops keep no tensors alive between calls.

A compiled step under ``mode="reduce-overhead"`` runs each custom op inside a CUDA graph's
warm-up and recording, where every allocation comes from the graph's private memory pool. A
tensor an op caches on its first call (an index map, a weight vector) outlives the call in
that pool, and the next recording fails with "tensor(s) in the cudagraph pool not tracked as
outputs". Here each op runs forward and backward at shapes it has not seen, and no tensor may
be alive afterwards that was not alive before.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import os
import pkgutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import spectrans
from spectrans.transforms.fft import (
    HALF_SPECTRUM_MIN_WIDTH,
    fourier_mix_2d,
    fourier_mix_2d_traced,
)
from spectrans.transforms.fft_filter import filter_conv
from spectrans.transforms.frequency_filter import frequency_filter


def _live_tensors() -> list[torch.Tensor]:
    gc.collect()
    return [obj for obj in gc.get_objects() if isinstance(obj, torch.Tensor)]


def _fnet(n: int) -> None:
    x = torch.randn(2, n, HALF_SPECTRUM_MIN_WIDTH, requires_grad=True)  # half-spectrum op
    fourier_mix_2d(x).sum().backward()


def _fnet_traced(n: int) -> None:
    x = torch.randn(2, n, 8, requires_grad=True)
    fourier_mix_2d_traced(x).sum().backward()


def _frequency_filter(n: int) -> None:
    x = torch.randn(2, n, 3, requires_grad=True)
    w = torch.randn(n // 2 + 1, 3, 2, requires_grad=True)
    frequency_filter(x, w).sum().backward()


def _filter_conv(n: int) -> None:
    u = torch.randn(2, 3, n, requires_grad=True)
    h = torch.randn(3, 2 * n, requires_grad=True)
    filter_conv(u, h).sum().backward()


OPS: dict[str, Callable[[int], None]] = {
    "fourier_mix_2d": _fnet,
    "half_spectrum_2d": _fnet_traced,
    "frequency_filter": _frequency_filter,
    "filter_conv": _filter_conv,
}


def test_every_custom_op_of_the_library_is_covered() -> None:
    for module in pkgutil.walk_packages(spectrans.__path__, "spectrans."):
        if "triton" not in module.name or importlib.util.find_spec("triton"):
            importlib.import_module(module.name)  # every module, so every op is registered
    registered = {
        name
        for name in dir(torch.ops.spectrans)
        if not name.startswith("_") and name != "name" and not name.endswith("_backward")
    }
    kernels = {"small_head_attention", "favor_contract"}  # Triton launches, no tensor caches
    assert registered - kernels == set(OPS)


@pytest.mark.parametrize("name", sorted(OPS))
def test_a_custom_op_keeps_no_tensor_after_it_returns(name: str) -> None:
    run = OPS[name]
    run(6)  # first use of the op at all: imports, registrations
    before = _live_tensors()  # held: no id of theirs can be reused by a new tensor
    known = {id(t) for t in before}
    for n in (9, 10, 11):  # shapes it has not seen: a per-shape cache would grow
        run(n)
    kept = [tuple(t.shape) for t in _live_tensors() if id(t) not in known]
    assert kept == []


GRAPHED_STEPS = """
import torch
from spectrans.transforms.fft import HALF_SPECTRUM_MIN_WIDTH, fourier_mix_2d
from spectrans.transforms.fft import fourier_mix_2d_traced
from spectrans.transforms.fft_filter import filter_conv
from spectrans.transforms.frequency_filter import frequency_filter

n, dev = 33, "cuda"
x = torch.randn(2, n, HALF_SPECTRUM_MIN_WIDTH, device=dev, requires_grad=True)
w = torch.randn(n // 2 + 1, HALF_SPECTRUM_MIN_WIDTH, 2, device=dev, requires_grad=True)
h = torch.randn(2, HALF_SPECTRUM_MIN_WIDTH, 2 * n, device=dev, requires_grad=True)


def step():
    y = fourier_mix_2d(x) + fourier_mix_2d_traced(x) + frequency_filter(x, w)  # (2, N, D)
    return y.sum() + filter_conv(x.transpose(1, 2), h).sum()


run = torch.compile(step, mode="reduce-overhead")
for _ in range(4):  # warm-up, recording, replays
    # gradients of a graphed backward live in its pool and a replay overwrites them: drop
    # them before each step (an optimizer's zero_grad(set_to_none=True)), never accumulate
    x.grad = w.grad = h.grad = None
    torch.compiler.cudagraph_mark_step_begin()
    run().backward()
torch.cuda.synchronize()
print("ok")
"""


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_first_use_inside_a_cuda_graph_warm_up_leaves_the_pool_clean() -> None:
    """Each op's first call in the process comes from the compiled step's warm-up."""
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", GRAPHED_STEPS],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
