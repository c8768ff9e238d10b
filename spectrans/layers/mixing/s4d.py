r"""S4D: a diagonal state-space token mixer (Gu, Gupta, Goel, Ré 2022).

Per channel :math:`h` (``D`` channels, independent), a continuous diagonal system with
:math:`M = N/2` complex modes (``N = state_dim``; the conjugate modes make the output real)

.. math::  x'(t) = A x(t) + B u(t), \qquad y(t) = 2\,\mathrm{Re}(C x(t)) + D_h u(t),

:math:`A = \mathrm{diag}(-e^{\alpha} + i\,\omega)`, :math:`B = 1`, :math:`C \in \mathbb{C}^M`
learned, is discretised by zero-order hold with a learned step :math:`\Delta = e^{\log\Delta}`:

.. math::  \bar A = e^{\Delta A}, \qquad \bar B = (\bar A - 1) A^{-1} B, \qquad
    x_{k+1} = \bar A x_k + \bar B u_k, \quad y_k = 2\,\mathrm{Re}(C x_{k+1}) + D_h u_k,

from :math:`x_0 = 0`. Unrolled, :math:`y = K * u + D_h u` with the kernel

.. math::  K_l = 2\,\mathrm{Re}\Big(\sum_m C_m \bar B_m \bar A_m^{\,l}\Big), \qquad l = 0..L-1,

a Vandermonde product :math:`(C \bar B)\,V` with :math:`V_{ml} = e^{l \Delta A_m}` (computed in
real arithmetic). ``bidirectional=True`` adds a second output matrix :math:`C'` run backwards
in time, :math:`y = K * u + \mathrm{flip}(K' * \mathrm{flip}(u)) + D_h u` (not causal);
unidirectional S4D is causal exactly. The backward term is the correlation
:math:`\sum_{j \ge i} K'_{j-i} u_j`, so the kernel, the backward kernel and the skip term
form ONE two-sided filter with lags :math:`-(N-1)..N-1`, applied by one zero-padded real FFT
of the signal, one product with the filter's spectrum and one inverse real FFT
(:func:`~spectrans.transforms.fft_filter.filter_conv`): ``O(D M L)`` for the kernel and
``O(D L log L)`` for the convolution, whatever the number of directions.

Init (``init``): :math:`\alpha = \log \tfrac12` (real part :math:`-\tfrac12`);
S4D-Lin :math:`\omega_m = \pi m`; S4D-Inv :math:`\omega_m = \tfrac{N}{\pi}
\big(\tfrac{N}{2m+1} - 1\big)`; :math:`C` complex normal (variance 1), :math:`D_h \sim N(0,1)`,
:math:`\log\Delta \sim U[\log\Delta_{min}, \log\Delta_{max}]`. The layer output is
``Linear(GELU(y))`` (the S4 block's activation and output projection).

Masking: padded positions are zero inputs (:math:`u_j = m_j x_j`); a zero input adds nothing
to the state, so padding, wherever it is (also after the real tokens under
``bidirectional``), cannot reach a real output. Outputs at padded positions are zeroed.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spectrans.config.layers.mixing import S4DMixingConfig
from spectrans.layers.attention.base import check_input, init_linear, zero_masked
from spectrans.layers.attention.chunked_recompute import (
    batch_chunks,
    recompute_in_chunks,
    wants_recompute,
)
from spectrans.layers.mixing.base import MixingLayer
from spectrans.registry import register_mixer
from spectrans.transforms.fft import fft_length
from spectrans.transforms.fft_filter import filter_conv
from spectrans.transforms.precision import compute_dtype

RECOMPUTE_MIN_CHUNKS = 8
"""Chunks of batch rows (at most one per row) the recomputing backward takes at least: the
float32 convolution of a chunk (zero-padded signal, its spectrum and the product) is several
times its bfloat16 input."""


def s4d_imaginary(state_dim: int, init: str) -> Tensor:
    r"""Imaginary parts :math:`\omega_m` of the ``state_dim // 2`` modes (S4D-Lin / S4D-Inv)."""
    m = torch.arange(state_dim // 2, dtype=torch.float64)
    if init == "lin":
        return math.pi * m
    if init == "inv":
        return state_dim / math.pi * (state_dim / (2 * m + 1) - 1)
    raise ValueError(f"init must be 'lin' or 'inv', got {init!r}")


@register_mixer(
    "s4d",
    S4DMixingConfig,
    family="mixing",
    complexity="O(n log n)",
    description="diagonal state-space model (S4D), FFT convolution",
    paper="Gu et al. 2022, On the parameterization and initialization of diagonal SSMs",
)
class S4DMixing(MixingLayer):
    """S4D: per-channel diagonal SSM kernel by a Vandermonde product, applied by FFT.

    Args:
        hidden_dim: Model width D (number of independent SSM channels).
        dropout: Dropout after the activation.
        causal: Causal mixing (requires ``bidirectional=False``; unidirectional is causal).
        init_weights: Init mode of the output projection.
        state_dim: State size N (``N // 2`` complex modes).
        init: ``lin`` or ``inv``.
        bidirectional: Add a backward-in-time kernel.
        dt_min: Smallest initial step.
        dt_max: Largest initial step.

    Attributes:
        log_dt: ``(D,)``; log_a_real: ``(D, M)``; a_imag: ``(D, M)``;
        c: ``(directions, D, M, 2)``; d: ``(D,)``; out_proj: ``Linear(D, D)``.
    """

    supports_causal = True

    def __init__(
        self,
        hidden_dim: int = 512,
        dropout: float = 0.0,
        causal: bool = False,
        init_weights: str = "truncnormal002",
        state_dim: int = 64,
        init: str = "lin",
        bidirectional: bool = False,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
    ) -> None:
        super().__init__(hidden_dim, dropout, causal, init_weights)
        if causal and bidirectional:
            self._refuse("causal", causal, "bidirectional=True looks at future tokens")
        if state_dim < 2:
            raise ValueError(f"state_dim must be >= 2, got {state_dim}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got {dt_min} and {dt_max}")
        self.state_dim, self.bidirectional = state_dim, bidirectional
        modes, directions = state_dim // 2, 2 if bidirectional else 1
        log_dt = torch.rand(hidden_dim) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)  # (D,)
        self.log_a_real = nn.Parameter(torch.full((hidden_dim, modes), math.log(0.5)))
        imag = s4d_imaginary(state_dim, init).float()
        self.a_imag = nn.Parameter(imag.expand(hidden_dim, modes).clone())  # (D, M)
        self.c = nn.Parameter(torch.randn(directions, hidden_dim, modes, 2) * math.sqrt(0.5))
        self.d = nn.Parameter(torch.randn(hidden_dim))  # (D,)
        self.out_proj = nn.Linear(hidden_dim, hidden_dim)
        init_linear(self.out_proj, init_weights)

    def discretize(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        """ZOH: ``(dtA, Abar, Bbar)``, each ``(D, M)`` complex of precision ``dtype``."""
        cdt = torch.complex128 if dtype == torch.float64 else torch.complex64
        a = torch.complex(-torch.exp(self.log_a_real.to(dtype)), self.a_imag.to(dtype))  # (D, M)
        dt_a = a * torch.exp(self.log_dt.to(dtype))[:, None]  # (D, M)
        a_bar = torch.exp(dt_a)
        b_bar = (a_bar - 1) / a  # B = 1
        return dt_a.to(cdt), a_bar.to(cdt), b_bar.to(cdt)

    def kernel(self, length: int, dtype: torch.dtype = torch.float32) -> Tensor:
        r"""SSM kernels ``K`` ``(directions, D, length)`` by the Vandermonde product.

        With ``l = a S + b`` (``S = ceil(sqrt(length))``), :math:`\bar A^l = \bar A^{aS}
        \bar A^{b}`, so :math:`K_{aS+b} = 2\mathrm{Re}\sum_m (C \bar B \bar A^{aS})_m
        (\bar A^{b})_m`: one batched ``(A x 2M) @ (2M x S)`` real product per channel (real
        and imaginary parts stacked, :math:`\mathrm{Re}(wv) = w_r v_r - w_i v_i`), and only
        ``M (A + S)`` complex exponentials instead of ``M L``. Real arithmetic throughout
        (:math:`e^{z} = e^{z_r}(\cos z_i + i \sin z_i)`, :math:`\bar A - 1 =
        \mathrm{expm1}(z_r)\cos z_i - 2\sin^2(z_i/2) + i\,e^{z_r}\sin z_i`), in ``dtype``
        with autocast off.
        """
        device = self.log_dt.device
        with torch.autocast(device.type, enabled=False):
            a_re = -torch.exp(self.log_a_real.to(dtype))  # (D, M)
            a_im = self.a_imag.to(dtype)  # (D, M)
            dt = torch.exp(self.log_dt.to(dtype))[:, None]  # (D, 1)
            z_re, z_im = a_re * dt, a_im * dt  # (D, M): dt A
            cos, sin = torch.cos(z_im), torch.sin(z_im)
            p = torch.expm1(z_re) * cos - 2 * torch.sin(z_im / 2) ** 2  # Re(Abar - 1)
            q = torch.exp(z_re) * sin  # Im(Abar - 1)
            norm = a_re**2 + a_im**2  # |A|^2
            b_re, b_im = (p * a_re + q * a_im) / norm, (q * a_re - p * a_im) / norm  # Bbar
            c = self.c.to(dtype)  # (dirs, D, M, 2)
            cb_re = c[..., 0] * b_re - c[..., 1] * b_im  # (dirs, D, M)
            cb_im = c[..., 0] * b_im + c[..., 1] * b_re
            step = max(1, math.isqrt(length - 1) + 1) if length > 1 else 1  # S
            count = -(-length // step)  # A
            inner = torch.arange(step, dtype=dtype, device=device)  # (S,)
            outer = torch.arange(count, dtype=dtype, device=device) * step  # (A,)
            mag_in = torch.exp(z_re[:, :, None] * inner)  # (D, M, S)
            ang_in = z_im[:, :, None] * inner
            v = torch.cat([mag_in * torch.cos(ang_in), mag_in * torch.sin(ang_in)], 1)  # (D,2M,S)
            mag_out = torch.exp(z_re[:, :, None] * outer)  # (D, M, A)
            ang_out = z_im[:, :, None] * outer
            o_re, o_im = mag_out * torch.cos(ang_out), mag_out * torch.sin(ang_out)
            w_re = cb_re[..., None] * o_re - cb_im[..., None] * o_im  # (dirs, D, M, A)
            w_im = cb_re[..., None] * o_im + cb_im[..., None] * o_re
            w = 2 * torch.cat([w_re, -w_im], 2)  # (dirs, D, 2M, A)
            k = torch.einsum("rdka,dks->rdas", w, v)  # (dirs, D, A, S)
        return k.reshape(*k.shape[:2], count * step)[..., :length]  # (dirs, D, length)

    def filter(self, length: int, dtype: torch.dtype = torch.float32) -> Tensor:
        r"""The whole SSM as one two-sided filter ``h`` ``(D, L)`` for sequences of ``length``.

        ``L = fft_length(length) >= 2 length``; index :math:`t < N` holds lag :math:`t`,
        index :math:`L - t` lag :math:`-t` (see :func:`~spectrans.transforms.fft_filter.
        filter_conv`): :math:`h_0 = K_0 + K'_0 + D_h`, :math:`h_t = K_t`,
        :math:`h_{L-t} = K'_t` (``t = 1..N-1``; :math:`K' = 0` unless bidirectional), zero
        between. The backward kernel runs backwards in time,
        :math:`\mathrm{flip}(K' * \mathrm{flip}(u))_i = \sum_{j \ge i} K'_{j-i} u_j`,
        which is the lag :math:`i - j \le 0` part of this filter.
        """
        k = self.kernel(length, dtype)  # (dirs, D, N)
        d = self.d.to(dtype)[:, None]  # (D, 1)
        head = k[:, :, :1].sum(0) + d  # (D, 1): lag 0 of every part
        gap = fft_length(length) - 2 * length + 1 if self.bidirectional else 0
        parts = [head, k[0, :, 1:]]
        if self.bidirectional:
            parts.append(k.new_zeros(k.shape[1], gap))  # (D, L - 2N + 1)
            parts.append(k[1, :, 1:].flip(-1))  # (D, N - 1): lags -(N-1)..-1
        else:
            parts.append(k.new_zeros(k.shape[1], fft_length(length) - length))
        return torch.cat(parts, -1)  # (D, L)

    def ssm(self, u: Tensor, h: Tensor | None = None) -> Tensor:
        """The SSM output ``K * u (+ backward) + D u`` for ``u`` (B, N, D), before GELU.

        One rfft and one irfft of the signal along N (on the ``(B, D, N)`` view, so the FFTs
        run over the contiguous last dim once the zero padding is written). ``h``: the
        filter of :meth:`filter` at ``u``'s length, when already formed.
        """
        if h is None:
            h = self.filter(u.shape[1], compute_dtype(u))  # (D, L)
        y = filter_conv(u.transpose(1, 2), h)  # (B, D, N)
        return y.transpose(1, 2)  # (B, N, D)

    recompute_mixing: bool | None = None
    """Whether the backward rebuilds ``gelu(K * u + D u)`` from ``u`` in chunks of batch rows
    (:func:`~spectrans.layers.attention.chunked_recompute.recompute_in_chunks`; the filter is
    formed once per step) instead of keeping the float32 convolution's intermediates: True,
    False, or None for the default (keep:
    :data:`~spectrans.layers.attention.chunked_recompute.RECOMPUTE_DEFAULT`). One more
    convolution per step. Never inside compiled code."""

    def recomputes(self, u: Tensor) -> bool:
        """Whether this forward rebuilds the mixing in the backward (:attr:`recompute_mixing`).

        Besides, autograd must be recording and the code must not be being compiled.
        """
        # tracked=True: under grad mode S4D recomputes whatever u is (its own parameters train)
        return wants_recompute(self.recompute_mixing, True)

    def _gelu_ssm(self, h: Tensor, u: Tensor) -> Tensor:
        """``gelu(ssm(u))`` with the filter ``h``, ``(B, N, D)``."""
        return F.gelu(self.ssm(u, h))

    def forward(
        self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, None]:
        """Mix ``x`` (B, N, D); returns (B, N, D), or ``(out, None)``.

        As :class:`MixingLayer`, with ``out_proj`` after the dropout.
        """
        mask = check_input(x, mask, self.hidden_dim)
        u = zero_masked(x, mask).to(compute_dtype(x))  # (B, N, D)
        if self.recomputes(u):
            h = self.filter(u.shape[1], u.dtype)  # (D, L), formed once, rows share it
            chunks = batch_chunks(u, RECOMPUTE_MIN_CHUNKS)
            mixed = recompute_in_chunks(functools.partial(self._gelu_ssm, h), (u,), [h], chunks)
        else:
            mixed = F.gelu(self.ssm(u))  # (B, N, D)
        y = self.dropout(mixed)  # (B, N, D)
        out = self.out_proj(y.to(x.dtype))  # (B, N, D)
        out = zero_masked(out, mask)
        return (out, None) if return_attention else out
