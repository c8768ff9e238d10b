"""LST attention vs a slow dense-matrix implementation of the same math (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft as sfft
import scipy.linalg as sla
import torch

from spectrans.config.layers.attention import (
    DCTAttentionConfig,
    HadamardAttentionConfig,
    LSTAttentionConfig,
    MixedTransformAttentionConfig,
)
from spectrans.layers.attention.lst import (
    DCTAttention,
    HadamardAttention,
    LSTAttention,
    MixedSpectralAttention,
)
from spectrans.registry import build_layer


def _interp(profile: np.ndarray, count: int) -> np.ndarray:
    """The profile at normalised frequencies k / (count - 1)."""
    grid = np.linspace(0.0, 1.0, len(profile))
    f = np.arange(count) / (count - 1) if count > 1 else np.zeros(1)
    return np.interp(f, grid, profile)


def _dense_filter(kind: str, profile: np.ndarray, n: int) -> np.ndarray:
    """M = T^T diag(gains) T as an explicit (n, n) matrix."""
    if kind in ("dct", "dct3", "dst"):
        fn, t = (sfft.dst, 2) if kind == "dst" else (sfft.dct, 3 if kind == "dct3" else 2)
        T = fn(np.eye(n), type=t, norm="ortho", axis=0)
        return T.T @ np.diag(_interp(profile, n)) @ T
    if kind == "hadamard":
        p = 1 << (n - 1).bit_length()
        H = sla.hadamard(p) / np.sqrt(p)
        seq = (np.diff(sla.hadamard(p), axis=1) != 0).sum(axis=1)
        gains = _interp(profile, p)[seq]
        return (H.T @ np.diag(gains) @ H)[:n, :n]
    if kind == "fft":
        bins = _interp(profile, n // 2 + 1)
        full = bins[np.minimum(np.arange(n), n - np.arange(n))]
        F = np.fft.fft(np.eye(n), axis=0)
        return np.real(np.linalg.inv(F) @ np.diag(full) @ F)
    if kind == "wavelet":  # PyWavelets' orthonormal periodized db4, 3 levels, on n padded to 8k
        pywt = pytest.importorskip("pywt")  # a dev dependency; GPU images may lack it
        p = -(-n // 8) * 8
        cols = [np.concatenate(pywt.wavedec(e, "db4", "periodization", 3)) for e in np.eye(p)]
        T = np.stack(cols, axis=1)  # (p, p): column j = T e_j
        return (T.T @ np.diag(_interp(profile, p)) @ T)[:n, :n]
    raise AssertionError(kind)


def _dense_causal(kind: str, profile: np.ndarray, n: int) -> np.ndarray:
    """Lower-triangular Toeplitz matrix of the taps h = (M_L e_0)[:n]."""
    length = 2 * n if kind == "fft" else n
    taps = _dense_filter(kind, profile, length)[:n, 0]
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return np.where(i >= j, taps[np.clip(i - j, 0, None)], 0.0)


def _oracle(layer, x: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray:
    """Slow float64 reference of the layer's forward."""
    xb = x.numpy()
    b, n, _ = xb.shape
    heads, d = layer.num_heads, layer.head_dim

    def proj(lin):
        out = xb @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()
        return out.reshape(b, n, heads, d)

    q, k, v = proj(layer.q_proj), proj(layer.k_proj), proj(layer.v_proj)
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    m = np.ones((b, n)) if mask is None else mask.numpy().astype(float)
    u = sig(k) * v * m[:, :, None, None]
    profile = layer.profile.detach().numpy()
    y = np.zeros_like(u)
    for h, kind in enumerate(layer.head_kinds):
        M = (_dense_causal if layer.causal else _dense_filter)(kind, profile[h], n)
        y[:, :, h] = sig(q[:, :, h]) * np.einsum("ij,bjc->bic", M, u[:, :, h])
    out = y.reshape(b, n, heads * d) @ layer.out_proj.weight.detach().numpy().T
    return (out + layer.out_proj.bias.detach().numpy()) * m[:, :, None]


def _layer(transform: str, causal: bool = False, heads: int = 3):
    if transform in ("dct", "dst", "hadamard", "wavelet", "mixed"):
        layer = LSTAttention(
            12, heads, transform, causal=causal, max_sequence_length=16, init_weights="truncnormal"
        )
    elif transform == "dct3":
        layer = DCTAttention(
            12, heads, dct_type=3, causal=causal, max_sequence_length=16, init_weights="truncnormal"
        )
    else:  # mixed fft/dct/hadamard
        layer = MixedSpectralAttention(
            12, heads, causal=causal, max_sequence_length=16, init_weights="truncnormal"
        )
    with torch.no_grad():  # a random, non-smooth profile makes the check sharper
        layer.scale.copy_(torch.rand_like(layer.scale) * 2 - 0.5)
        for lin in (layer.q_proj, layer.k_proj, layer.v_proj, layer.out_proj):
            lin.bias.normal_()
    return layer.double()


TRANSFORMS = ["dct", "dst", "hadamard", "wavelet", "mixed", "dct3", "mixedfft"]


PATHS = ["fast", "dense", "gemm", "folded", "factored"]


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n", [1, 2, 7, 100, 128])
@pytest.mark.parametrize("path", PATHS)
def test_matches_dense_oracle(transform: str, causal: bool, n: int, path: str) -> None:
    layer = _layer(transform, causal)
    layer.mixing_path = path
    x = torch.randn(2, n, 12, dtype=torch.float64)
    mask = torch.rand(2, n) > 0.3
    mask[:, 0] = True
    for m in (None, mask):
        got = layer(x, m).detach().numpy()
        np.testing.assert_allclose(got, _oracle(layer, x, m), atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("path", PATHS)
def test_mask_exact_float32(transform: str, causal: bool, path: str) -> None:
    layer = _layer(transform, causal).float()
    layer.mixing_path = path
    x = torch.randn(2, 37, 12)
    mask = torch.ones(2, 37, dtype=torch.bool)
    mask[0, 30:] = False
    mask[1, ::3] = False
    x2 = x.clone()
    x2[~mask] = torch.randn(int((~mask).sum()), 12) * 100
    y1, y2 = layer(x, mask), layer(x2, mask)
    assert (y1[mask] - y2[mask]).abs().max() <= 1e-6
    assert y1[~mask].abs().max() == 0


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("path", PATHS)
def test_causal_exact_float32(transform: str, path: str) -> None:
    layer = _layer(transform, causal=True).float()
    layer.mixing_path = path
    x = torch.randn(2, 40, 12)
    t = 17
    x2 = x.clone()
    x2[:, t + 1 :] = torch.randn(2, 40 - t - 1, 12) * 100
    y1, y2 = layer(x), layer(x2)
    assert (y1[:, : t + 1] - y2[:, : t + 1]).abs().max() <= 1e-6
    assert (y1[:, t + 1 :] - y2[:, t + 1 :]).abs().max() > 1e-3  # the future does matter later


@pytest.mark.parametrize("transform", ["dct", "dst", "hadamard", "wavelet", "mixed"])
@pytest.mark.parametrize("causal", [False, True])
def test_scale_varies_by_frequency_and_gets_gradients(transform: str, causal: bool) -> None:
    layer = LSTAttention(16, 4, transform, causal=causal, max_sequence_length=32)
    assert layer.scale.shape == (4, 32)
    assert (layer.scale[:, 0] - layer.scale[:, -1]).abs().min() > 1e-3  # low-pass at init
    x = torch.randn(2, 32, 16)
    layer(x).pow(2).sum().backward()
    grad = layer.scale.grad
    assert grad is not None and grad.abs().sum() > 0
    assert grad.std(dim=1).min() > 0  # different frequencies get different gradients


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n", [7, 64])
def test_dense_and_fast_paths_have_equal_gradients(transform: str, causal: bool, n: int) -> None:
    layer = _layer(transform, causal)
    x = torch.randn(2, n, 12, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(2, n) > 0.3
    mask[:, 0] = True
    grads = []
    for path in PATHS:
        layer.mixing_path = path
        layer.zero_grad()
        out = layer(x, mask)
        (gx,) = torch.autograd.grad(out.pow(2).sum(), x, retain_graph=True)
        out.pow(2).sum().backward()
        grads.append((gx, layer.scale.grad.clone()))
    for other in grads[1:]:
        assert torch.allclose(grads[0][0], other[0], atol=1e-10)
        assert torch.allclose(grads[0][1], other[1], atol=1e-10)
    assert grads[0][1].abs().sum() > 0


def test_auto_path_is_fast_on_cpu_and_a_matrix_form_on_cuda_up_to_the_crossover() -> None:
    from spectrans.layers.attention.lst import DENSE_MAX_LENGTH, GEMM_MAX_LENGTH

    cuda = torch.device("cuda")
    layer = LSTAttention(16, 4, "dct")
    assert layer.chosen_path(128, torch.device("cpu")) == "fast"
    assert layer.chosen_path(GEMM_MAX_LENGTH, cuda) == "gemm"
    assert layer.chosen_path(GEMM_MAX_LENGTH + 1, cuda) == "fast"
    causal = LSTAttention(16, 4, "dct", causal=True)
    assert causal.chosen_path(DENSE_MAX_LENGTH, cuda) == "dense"
    assert causal.chosen_path(DENSE_MAX_LENGTH + 1, cuda) == "fast"
    wavelet = LSTAttention(16, 4, "wavelet")  # no closed-form matrix
    assert wavelet.chosen_path(DENSE_MAX_LENGTH, cuda) == "dense"


def test_auto_folds_odd_lengths_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from spectrans.layers.attention import lst

    cuda = torch.device("cuda")
    layer = LSTAttention(16, 4, "dct")
    assert layer.chosen_path(2001, cuda) == "folded"
    assert layer.chosen_path(2000, cuda) == "gemm"
    assert LSTAttention(16, 4, "hadamard").chosen_path(2001, cuda) == "gemm"  # nothing to fold
    monkeypatch.setattr(lst, "FOLD_ODD_LENGTHS", False)
    assert layer.chosen_path(2001, cuda) == "gemm"
    assert layer.chosen_path(lst.GEMM_MAX_LENGTH + 1, cuda) == "fast"
    assert layer.chosen_path(2001, torch.device("cpu")) == "fast"


def test_mixes_tokens_at_init() -> None:
    layer = LSTAttention(16, 4, "dct", max_sequence_length=64)
    x = torch.randn(1, 50, 16)
    x2 = x.clone()
    x2[:, 10] += 1.0
    assert (layer(x) - layer(x2))[:, [5, 15, 30]].abs().max() > 1e-6


@pytest.mark.parametrize("n", [1, 5, 64, 100])
def test_other_lengths_than_max(n: int) -> None:
    for layer in (
        LSTAttention(16, 4, "hadamard", max_sequence_length=64),
        MixedSpectralAttention(16, 4, max_sequence_length=64),
    ):
        assert layer(torch.randn(2, n, 16)).shape == (2, n, 16)


@pytest.mark.parametrize(
    "cls,config",
    [
        (LSTAttention, LSTAttentionConfig),
        (DCTAttention, DCTAttentionConfig),
        (HadamardAttention, HadamardAttentionConfig),
        (MixedSpectralAttention, MixedTransformAttentionConfig),
    ],
)
def test_defaults_from_config_and_registry(cls, config) -> None:
    default = cls(512)
    out, weights = default(torch.randn(1, 9, 512), return_attention=True)
    assert out.shape == (1, 9, 512) and weights is None
    built = build_layer(
        {
            "name": config().name,
            "hidden_dim": 32,
            "num_heads": 4,
            "causal": True,
            "max_sequence_length": 16,
        }
    )
    assert type(built) is cls and built.causal and built.scale.shape == (4, 16)
    assert type(cls.from_config(config(hidden_dim=64))) is cls


def test_mixed_head_split_and_attributes() -> None:
    layer = MixedSpectralAttention(512)
    assert layer.head_kinds == ["fft"] * 3 + ["dct"] * 3 + ["hadamard"] * 2
    assert len(layer.transforms) == 8 and layer.head_dim == 64
    lst = LSTAttention(64, 4, "mixed")
    assert lst.head_kinds == ["dct", "dct", "dst", "hadamard"] and len(lst.transforms) == 4
    fixed = LSTAttention(64, 4, learnable_scale=False)
    assert fixed.scale is None and fixed(torch.randn(1, 5, 64)).shape == (1, 5, 64)


def test_bf16_input() -> None:
    layer = LSTAttention(32, 4, "dct").bfloat16()
    out = layer(torch.randn(2, 20, 32).bfloat16())
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_bad_options_raise_one_sentence() -> None:
    with pytest.raises(ValueError, match="transform_type='fft'"):
        LSTAttention(64, 4, "fft")
    with pytest.raises(ValueError, match="divisible"):
        LSTAttention(65, 4)
    with pytest.raises(ValueError, match="dct_type=4"):
        DCTAttention(64, 4, dct_type=4)
    with pytest.raises(ValueError, match="at least one"):
        MixedSpectralAttention(64, 4, use_fft=False, use_dct=False, use_hadamard=False)


def test_normalisation_flags_change_rounding_only() -> None:
    x = torch.randn(2, 13, 16, dtype=torch.float64)
    for kind in ("dct", "dst", "hadamard"):
        a = LSTAttention(16, 2, kind, normalize=True).double()
        b = LSTAttention(16, 2, kind, normalize=False).double()
        b.load_state_dict(a.state_dict())
        torch.testing.assert_close(a(x), b(x), atol=1e-12, rtol=0)
    h1 = HadamardAttention(16, 2, scale_by_sqrt=True).double()
    h2 = HadamardAttention(16, 2, scale_by_sqrt=False).double()
    h2.load_state_dict(h1.state_dict())
    torch.testing.assert_close(h1(x), h2(x), atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", ["dct", "dst", "hadamard"])
@pytest.mark.parametrize("n", [1, 2, 7, 100, 128])
def test_transform_matrix_is_the_orthonormal_transform_of_the_identity(kind: str, n: int) -> None:
    from spectrans.layers.spectral_filter import transform_matrix

    a = transform_matrix(kind, n, torch.float64, torch.device("cpu")).numpy()
    if kind == "hadamard":
        p = 1 << (n - 1).bit_length()
        expected = (sla.hadamard(p) / np.sqrt(p))[:, :n]
    else:
        fn = sfft.dst if kind == "dst" else sfft.dct
        expected = fn(np.eye(n), type=2, norm="ortho", axis=0)
    np.testing.assert_allclose(a, expected, atol=1e-14)
    a32 = transform_matrix(kind, n, torch.float32, torch.device("cpu")).double().numpy()
    np.testing.assert_allclose(a32, expected, atol=2e-7)  # phases reduced exactly in integers


@pytest.mark.parametrize("transform", ["dct", "dst", "hadamard", "mixed"])
@pytest.mark.parametrize("path", ["gemm", "factored", "fast"])
def test_matrix_paths_under_bf16_autocast_follow_float32(transform: str, path: str) -> None:
    torch.manual_seed(0)
    layer = LSTAttention(32, 4, transform, max_sequence_length=64)
    layer.mixing_path = path
    x = torch.randn(2, 50, 32, requires_grad=True)
    reference = layer(x)
    with torch.autocast("cpu", torch.bfloat16):
        low = layer(x)
    assert low.dtype == torch.bfloat16
    error = (low.float() - reference).norm() / reference.norm()
    assert error < 3e-2
    low.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and layer.scale.grad is not None


@pytest.mark.parametrize("transform", ["dct", "dst", "hadamard", "mixed"])
@pytest.mark.parametrize("n", [12, 2000])
def test_factored_path_matches_dense_oracle_at_composite_lengths(transform: str, n: int) -> None:
    layer = _layer(transform, heads=3 if n < 100 else 2)
    layer.mixing_path = "factored"
    x = torch.randn(1 if n > 100 else 2, n, 12, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(x.shape[0], n) > 0.3
    mask[:, 0] = True
    got = layer(x, mask)
    np.testing.assert_allclose(
        got.detach().numpy(), _oracle(layer, x.detach(), mask), atol=1e-10, rtol=1e-8
    )
    (gx,) = torch.autograd.grad(got.pow(2).sum(), x)
    layer.mixing_path = "fast"
    (ref,) = torch.autograd.grad(layer(x, mask).pow(2).sum(), x)
    torch.testing.assert_close(gx, ref, atol=1e-9, rtol=1e-7)
    assert (gx[~mask] == 0).all()  # masked tokens reach no output


def test_factored_path_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import spectrans.layers.attention.lst as lst

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    layer = LSTAttention(16, 4, "dct")
    assert "dct" not in lst.FACTORED_MIN_LENGTH  # measured: never the fastest for dct
    assert layer.chosen_path(lst.GEMM_MAX_LENGTH, cuda) == "gemm"
    assert layer.chosen_path(65536, cuda) == "fast"
    hadamard = LSTAttention(lst.FACTORED_MIN_WIDTH, 4, "hadamard")
    start = lst.FACTORED_MIN_LENGTH["hadamard"]
    assert hadamard.chosen_path(start - 1, cuda) == "gemm"
    assert hadamard.chosen_path(start, cuda) == "factored"
    assert hadamard.chosen_path(65536, cuda) == "factored"
    narrow = LSTAttention(lst.FACTORED_MIN_WIDTH // 2, 4, "hadamard")  # measured: gemm wins
    assert narrow.chosen_path(start, cuda) == "gemm"
    assert narrow.chosen_path(65536, cuda) == "fast"
    monkeypatch.setattr(lst, "FACTORED_MIN_WIDTH", 16)
    assert LSTAttention(16, 4, "mixed").chosen_path(65536, cuda) == "fast"  # dct heads too
    monkeypatch.setattr(lst, "FACTORED_MIN_LENGTH", {"dct": 2048})
    assert layer.chosen_path(2046, cuda) == "gemm"
    assert layer.chosen_path(2048, cuda) == "factored"
    assert layer.chosen_path(65536, cuda) == "factored"
    assert layer.chosen_path(2048, cpu) == "fast"
    assert LSTAttention(16, 4, "dct", causal=True).chosen_path(2048, cuda) == "fast"
    assert LSTAttention(16, 4, "wavelet").chosen_path(2048, cuda) == "fast"
    causal = LSTAttention(16, 4, "hadamard", causal=True)
    causal.mixing_path = "factored"  # not causal: the causal convolution is taken
    assert causal.chosen_path(64, cpu) == "fast"
    layer.mixing_path = "factored"
    assert layer.chosen_path(64, cpu) == "factored"


@pytest.mark.parametrize("transform", ["dct", "dst", "hadamard"])
def test_factored_path_in_bfloat16_at_a_long_length_follows_float64(transform: str) -> None:
    torch.manual_seed(0)
    layer = LSTAttention(32, 4, transform, max_sequence_length=2000).double()
    layer.mixing_path = "factored"
    x = torch.randn(2, 2000, 32, dtype=torch.float64)
    reference = layer(x)
    low = layer.bfloat16()(x.bfloat16())  # every step in bf16, 40 x 50 four-step split
    assert low.dtype == torch.bfloat16
    error = (low.double() - reference).norm() / reference.norm()
    assert error < 2e-2  # measured 0.9% (dct, dst), 0.6% (hadamard); the gemm path 0.7%


@pytest.mark.parametrize("transform", ["dct", "dst", "hadamard", "mixed"])
def test_fast_path_under_bf16_autocast_saves_one_float32_copy_at_most(transform: str) -> None:
    """Gates in bfloat16, transforms in float32.

    Of the tensors saved for the backward, those in 4- or 8-byte elements add up to one float32
    copy of the signal at most: the transform coefficients that the gains' gradient needs.
    """
    torch.manual_seed(0)
    layer = LSTAttention(32, 4, transform, dropout=0.1)
    layer.mixing_path = "fast"
    batch, n, width = 2, 64, 32
    x = torch.randn(batch, n, width, requires_grad=True)  # (B, N, D)
    saved: list[torch.Tensor] = []

    def keep(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        with torch.autocast("cpu", torch.bfloat16):
            out = layer(x)  # (B, N, D)
    one_head = batch * (n // 2) * (width // 4)  # half a head's signal: every activation is larger
    weights = {p.untyped_storage().data_ptr() for p in layer.parameters()}  # kept, not copied
    activations = {
        t.untyped_storage().data_ptr(): t
        for t in saved
        if t.numel() >= one_head and t.untyped_storage().data_ptr() not in weights
    }
    assert len(activations) >= 5, "the hook saw the layer's saved tensors"
    wide = sum(t.numel() * t.element_size() for t in activations.values() if t.element_size() >= 4)
    assert wide <= 1.1 * x.numel() * 4
    out.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
