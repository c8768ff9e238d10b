"""The GEMM form of the LST filters against the dense float64 operator A^T diag(gains) A."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from spectrans.layers import spectral_filter
from spectrans.layers.spectral_filter import analysis_matrix, matrix_filter, transform_matrix
from tests.filter_oracle import assert_matches_dense_operator, bfloat16_relative_error


@pytest.mark.parametrize("kind", ["dct", "dst", "hadamard"])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 100, 101])
def test_matrix_filter_matches_the_dense_operator(kind: str, n: int) -> None:
    assert_matches_dense_operator(matrix_filter, kind, n, atol=1e-12, grad_atol=1e-12)


@pytest.mark.parametrize("kind", ["dct", "dst"])
def test_matrix_filter_in_bfloat16_stays_close(kind: str) -> None:
    assert bfloat16_relative_error(matrix_filter, kind) < 1e-2  # measured 0.44 %


@pytest.mark.parametrize("kind", ["dct", "dst", "hadamard"])
def test_phases_in_int64_give_the_same_matrix(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    phase_dtype = spectral_filter._phase_dtype
    assert phase_dtype(32768, 32768) == torch.int64  # 2 n^2 = 2^31
    assert phase_dtype(32767, 32767) == torch.int32
    small = transform_matrix(kind, 37, torch.float64, torch.device("cpu"))
    monkeypatch.setattr(spectral_filter, "_phase_dtype", lambda rows, n: torch.int64)
    wide = transform_matrix(kind, 37, torch.float64, torch.device("cpu"))
    torch.testing.assert_close(small, wide, atol=0, rtol=0)


def test_analysis_matrix_is_built_once_and_can_be_saved_for_backward() -> None:
    spectral_filter.analysis_matrix.cache_clear()
    cpu = torch.device("cpu")
    with torch.inference_mode():  # first use under inference mode, e.g. an evaluation
        first = analysis_matrix("dct", 12, torch.float32, cpu)
    assert not first.is_inference()
    assert analysis_matrix("dct", 12, torch.float32, cpu) is first
    torch.testing.assert_close(first, transform_matrix("dct", 12, torch.float32, cpu))
    u = torch.randn(1, 2, 12, 3, requires_grad=True)
    gains = torch.rand(2, 12, requires_grad=True)
    matrix_filter(u, gains, "dct").square().sum().backward()  # saves the cached matrix
    assert u.grad is not None and gains.grad is not None


def _fast_filter(u: torch.Tensor, gains: torch.Tensor, kind: str) -> torch.Tensor:
    return (
        spectral_filter.dct_filter(u, gains)
        if kind == "dct"
        else spectral_filter.dst_filter(u, gains)
    )


@pytest.mark.parametrize("last_dim", [False, True])
@pytest.mark.parametrize("compiling", [False, True])
@pytest.mark.parametrize("kind", ["dct", "dst"])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 64, 101])
def test_fft_filters_match_the_dense_operator_in_both_arithmetics(
    kind: str, n: int, compiling: bool, last_dim: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rFFT filters in complex (eager) and in real arithmetic (as traced by the compiler),
    with the FFTs along the signal's own sequence axis and along the transposed last axis."""
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: compiling)
    monkeypatch.setattr(spectral_filter, "FFT_ALONG_LAST_DIM", last_dim)
    assert_matches_dense_operator(_fast_filter, kind, n, atol=1e-12, grad_atol=1e-12)


@pytest.mark.parametrize("kind", ["dct", "dst"])
def test_the_transposed_layout_compiles_to_the_same_filter(kind: str) -> None:
    """Through torch.compile (Inductor on the CPU): values and gradients of both layouts."""
    torch.manual_seed(0)
    u = torch.randn(2, 3, 37, 4, requires_grad=True)  # (B, H, N, d)
    gains = torch.rand(3, 37, requires_grad=True)  # (H, N)
    g = torch.randn(2, 3, 37, 4)

    def run(fn):
        out = fn(u, gains)
        return (out, *torch.autograd.grad((out * g).sum(), (u, gains)))

    alternate = kind == "dst"  # the DST filter is the DCT's between signs, gains reversed

    def along_sequence(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        w = w.flip(-1) if alternate else w
        return spectral_filter._dct_filter_along(x, w, -2, alternate)

    reference = run(along_sequence)
    compiled = run(torch.compile(lambda x, w: _fast_filter(x, w, kind), fullgraph=True))
    for a, b in zip(compiled, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["dct", "dst"])
@pytest.mark.parametrize("last_dim", [False, True])
@pytest.mark.parametrize("wanted", ["u", "gains"])
def test_fft_filter_gives_the_gradient_of_either_input_alone(
    wanted: str, last_dim: bool, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only ``u`` or only the gains need a gradient: the other is not computed, this one is
    the dense operator's."""
    monkeypatch.setattr(spectral_filter, "FFT_ALONG_LAST_DIM", last_dim)
    n = 13
    gen = torch.Generator().manual_seed(1)
    a = transform_matrix(kind, n, torch.float64, torch.device("cpu"))  # (N, N)
    u = torch.randn(2, 3, n, 4, dtype=torch.float64, generator=gen)
    gains = torch.randn(3, n, dtype=torch.float64, generator=gen)
    target = u if wanted == "u" else gains
    target.requires_grad_(True)
    g = torch.randn(2, 3, n, 4, dtype=torch.float64, generator=gen)
    ref = torch.einsum("kj,hk,kl,bhld->bhjd", a, gains, a, u)  # (B, H, N, d)
    (want,) = torch.autograd.grad(ref, target, g)
    (got,) = torch.autograd.grad(_fast_filter(u, gains, kind), target, g)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


class _FFTNormalizations(TorchDispatchMode):
    """Records the ``normalization`` argument of every rFFT and inverse rFFT it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten._fft_r2c.default, torch.ops.aten._fft_c2r.default):
            self.seen.append((func.__name__, int(args[2])))  # 0: none, 1: 1/sqrt(n), 2: 1/n
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kind", ["dct", "dst"])
def test_fft_filter_transforms_unscaled_forward_and_backward(kind: str, dtype) -> None:
    """Every scale factor lives in the (H, bins) coefficients: no rFFT or inverse rFFT of the
    filter asks torch.fft for a scaling, which runs as a pass of its own over the signal
    (cuFFT does not scale)."""
    u = torch.randn(2, 3, 40, 8).to(dtype).requires_grad_(True)
    gains = torch.rand(3, 40, requires_grad=True)
    with _FFTNormalizations() as mode:
        out = _fast_filter(u, gains, kind)
        out.float().square().sum().backward()
    names = [name for name, _ in mode.seen]
    # forward r2c + c2r; backward r2c of the gradient + c2r, and (bfloat16) r2c of u again
    assert names.count("_fft_r2c.default") == (2 if dtype == torch.float32 else 3)
    assert names.count("_fft_c2r.default") == 2
    assert {norm for _, norm in mode.seen} == {0}


def _saved_for_backward(fn, u: torch.Tensor, gains: torch.Tensor) -> list[torch.Tensor]:
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(u, gains)
    out.float().square().sum().backward()
    assert u.grad is not None and gains.grad is not None
    return saved


@pytest.mark.parametrize("compiled", [False, True])
def test_fft_filter_keeps_bfloat16_input_instead_of_its_spectrum(compiled: bool) -> None:
    """For bfloat16 input the backward keeps nothing complex and nothing in float32 the size
    of the signal: the input itself (or, compiled, what the compiler chooses), not its
    float32 spectrum."""
    torch._dynamo.reset()
    u = torch.randn(2, 3, 64, 8).bfloat16().requires_grad_(True)
    gains = torch.rand(3, 64, requires_grad=True)
    fn = torch.compile(spectral_filter.dct_filter) if compiled else spectral_filter.dct_filter
    saved = _saved_for_backward(fn, u, gains)
    assert not any(t.is_complex() for t in saved)
    assert not any(t.dtype == torch.float32 and t.numel() >= u.numel() for t in saved)


def test_fft_filter_keeps_the_spectrum_of_float32_input_eagerly() -> None:
    """Eagerly a float32 signal's spectrum is the size of the signal and saves the backward
    an rFFT, so that is what is kept."""
    u = torch.randn(2, 3, 64, 8, requires_grad=True)
    gains = torch.rand(3, 64, requires_grad=True)
    saved = _saved_for_backward(spectral_filter.dct_filter, u, gains)
    assert any(t.is_complex() for t in saved)


@pytest.mark.parametrize("last_dim", [False, True])
@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_the_dst_filter_leaves_its_input_and_output_gradient_as_they_were(
    n: int, last_dim: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its signs are applied in place to the reordered copies only, forward and backward."""
    monkeypatch.setattr(spectral_filter, "FFT_ALONG_LAST_DIM", last_dim)
    u = torch.randn(2, 3, n, 4, requires_grad=True)
    gains = torch.rand(3, n, requires_grad=True)
    g = torch.randn(2, 3, n, 4)
    u_before, g_before = u.detach().clone(), g.clone()
    spectral_filter.dst_filter(u, gains).backward(g)
    assert torch.equal(u.detach(), u_before) and torch.equal(g, g_before)
