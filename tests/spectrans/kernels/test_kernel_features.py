import math

import pytest
import torch

from spectrans.kernels import (
    GaussianRFF,
    LearnableSpectralKernel,
    PolynomialKernel,
    PositiveRandomFeatures,
    ReLUFeatures,
    TrigSoftmaxRFF,
    gaussian_kernel,
    gaussian_projection,
    polynomial_kernel,
    positive_softmax_features,
    softmax_kernel,
    trig_features,
)


def _rel_err(approx: torch.Tensor, exact: torch.Tensor) -> float:
    return ((approx - exact).norm() / exact.norm()).item()


def test_exact_kernels_match_elementwise_definitions() -> None:
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    for i in range(5):
        for j in range(4):
            diff, dot = x[i] - y[j], x[i] @ y[j]
            assert gaussian_kernel(x, y, 2.0)[i, j] == pytest.approx(
                math.exp(-(diff @ diff).item() / 8)
            )
            assert polynomial_kernel(x, y, 3, 0.5, 2.0)[i, j] == pytest.approx(
                (dot.item() / 2 + 0.5) ** 3
            )
            assert softmax_kernel(x, y)[i, j] == pytest.approx(math.exp(dot.item() / math.sqrt(3)))


@pytest.mark.parametrize("use_offset", [False, True])
def test_gaussian_rff_estimates_gaussian_kernel(use_offset: bool) -> None:
    x, y = 0.3 * torch.randn(20, 8), 0.3 * torch.randn(30, 8)
    fmap = GaussianRFF(8, 8192, bandwidth=1.5, use_offset=use_offset)
    approx = fmap(x) @ fmap(y, is_query=False).T
    exact = gaussian_kernel(x, y, 1.5)
    torch.testing.assert_close(fmap.exact(x, y), exact, atol=1e-5, rtol=1e-5)
    assert _rel_err(approx, exact) < (0.05 if use_offset else 0.03)


def test_trig_features_inner_product_is_mean_cosine() -> None:
    x, y, w = torch.randn(6, 4), torch.randn(7, 4), torch.randn(10, 4)
    exact = torch.cos((x[:, None] - y[None]) @ w.T).mean(-1)
    torch.testing.assert_close(
        trig_features(x, w) @ trig_features(y, w).T, exact, atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("fmap_class", [PositiveRandomFeatures, TrigSoftmaxRFF])
def test_softmax_features_estimate_softmax_kernel(fmap_class: type) -> None:
    q, k = 0.5 * torch.randn(16, 16), 0.5 * torch.randn(24, 16)
    exact = softmax_kernel(q, k)
    errors = []
    for m in (128, 8192):
        fmap = fmap_class(16, m)
        approx = fmap(q, stabilise=False) @ fmap(k, is_query=False, stabilise=False).T
        errors.append(_rel_err(approx, exact))
    torch.testing.assert_close(fmap.exact(q, k), exact)
    # Monte Carlo error ~ 1/sqrt(m): 64x more features, ~8x less error.
    assert errors[1] < 0.06 and errors[1] < errors[0] / 3


def test_positive_features_are_positive_and_stabilisers_cancel() -> None:
    q, k = 2.0 * torch.randn(2, 10, 8), 2.0 * torch.randn(2, 12, 8)
    w = gaussian_projection(32, 8)
    raw_q = positive_softmax_features(q.double(), w.double(), is_query=True, stabilise=False)
    raw_k = positive_softmax_features(k.double(), w.double(), is_query=False, stabilise=False)
    st_q = positive_softmax_features(q.double(), w.double(), is_query=True)
    st_k = positive_softmax_features(k.double(), w.double(), is_query=False)
    assert (st_q > 0).all() and (st_k > 0).all() and st_q.max() <= 1 and st_k.max() <= 1
    raw_att = raw_q @ raw_k.transpose(-1, -2)
    st_att = st_q @ st_k.transpose(-1, -2)
    # Same normalised attention: the stabilisers are per query row and per (batch) key set.
    torch.testing.assert_close(
        raw_att / raw_att.sum(-1, keepdim=True), st_att / st_att.sum(-1, keepdim=True)
    )


def test_masked_keys_do_not_set_the_stabiliser() -> None:
    k = torch.randn(1, 6, 8)
    mask = torch.tensor([[True, True, False, True, False, True]])
    w = gaussian_projection(16, 8)
    base = positive_softmax_features(k, w, is_query=False, mask=mask)
    k2 = k.clone()
    k2[:, ~mask[0]] = 100.0  # huge masked keys would dominate an unmasked max
    moved = positive_softmax_features(k2, w, is_query=False, mask=mask)
    assert torch.isfinite(moved).all()
    torch.testing.assert_close(moved[:, mask[0]], base[:, mask[0]], atol=0, rtol=0)


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_polynomial_features_estimate_polynomial_kernel(degree: int) -> None:
    x, y = 0.5 * torch.randn(12, 6), 0.5 * torch.randn(9, 6)
    fmap = PolynomialKernel(6, 20000, degree=degree, coef0=1.0)
    approx = fmap(x) @ fmap(y, is_query=False).T
    exact = polynomial_kernel(x, y, degree, 1.0, math.sqrt(6))
    torch.testing.assert_close(fmap.exact(x, y), exact)
    assert _rel_err(approx, exact) < 0.1
    assert fmap.projection.shape == (degree * 20000, 7)


def test_learnable_spectral_kernel_features_are_exact_and_trainable() -> None:
    fmap = LearnableSpectralKernel(8, 16)
    x, y = torch.randn(5, 8), torch.randn(7, 8)
    torch.testing.assert_close(fmap(x) @ fmap(y).T, fmap.exact(x, y), atol=1e-5, rtol=0)
    (fmap(x) @ fmap(y).T).sum().backward()
    assert fmap.frequencies.grad is not None and fmap.frequencies.grad.abs().sum() > 0
    assert "frequencies" in dict(fmap.named_parameters())


def test_relu_features_are_deterministic_generalized_kernel() -> None:
    fmap = ReLUFeatures(4, eps=1e-3)
    x = torch.tensor([[-1.0, 0.0, 2.0, 3.0]])
    torch.testing.assert_close(fmap(x), torch.tensor([[1e-3, 1e-3, 2.001, 3.001]]))
    assert not fmap.signed and not fmap.maybe_redraw()


def test_projection_is_a_saved_buffer() -> None:
    fmap = PositiveRandomFeatures(8, 16)
    state = fmap.state_dict()
    assert set(state) == {"projection", "calls_since_redraw"}
    other = PositiveRandomFeatures(8, 16)
    assert not torch.equal(other.projection, fmap.projection)
    other.load_state_dict(state)
    torch.testing.assert_close(other.projection, fmap.projection, atol=0, rtol=0)
    assert list(fmap.parameters()) == []


def test_redraw_only_in_training_and_on_the_interval() -> None:
    fmap = PositiveRandomFeatures(8, 16, feature_redraw=True, redraw_interval=3)
    seen = [fmap.projection.clone()]

    def step() -> bool:
        redrawn = fmap.maybe_redraw()
        changed = not torch.equal(fmap.projection, seen[-1])
        assert redrawn == changed
        seen.append(fmap.projection.clone())
        return changed

    fmap.train()
    assert [step() for _ in range(7)] == [False, False, False, True, False, False, True]
    fmap.eval()
    assert [step() for _ in range(10)] == [False] * 10
    assert fmap.calls_since_redraw.item() == 1  # eval calls are not counted


@pytest.mark.parametrize("use_offset", [False, True])
def test_redraw_writes_in_place_and_forwards_read_a_copy(use_offset: bool) -> None:
    """The buffers keep their storage (a CUDA graph reads them there); forwards get copies."""
    fmap = GaussianRFF(8, 16, feature_redraw=True, redraw_interval=1, use_offset=use_offset)
    buffers = [b for b in (fmap.projection, fmap.offset) if b is not None]
    addresses, values = [b.data_ptr() for b in buffers], [b.clone() for b in buffers]
    x = torch.randn(3, 8, requires_grad=True)
    fmap.train()
    first = fmap(x)  # reads the projection before the redraw
    fmap.maybe_redraw(), fmap.maybe_redraw()  # the second call redraws
    assert [b.data_ptr() for b in buffers] == addresses
    assert all(not torch.equal(b, v) for b, v in zip(buffers, values))
    first.sum().backward()  # its graph holds the projection it used
    assert torch.isfinite(x.grad).all()
    assert fmap.snapshot(fmap.projection).data_ptr() != fmap.projection.data_ptr()


def test_no_redraw_without_feature_redraw() -> None:
    fmap = GaussianRFF(8, 16, feature_redraw=False, redraw_interval=1)
    before = fmap.projection.clone()
    fmap.train()
    for _ in range(5):
        assert not fmap.maybe_redraw()
    assert torch.equal(before, fmap.projection)
