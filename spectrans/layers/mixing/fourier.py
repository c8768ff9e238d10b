r"""FNet Fourier mixing (Lee-Thorp et al. 2022).

.. math::  y = \mathrm{Re}\big(\mathrm{FFT}_{seq}(\mathrm{FFT}_{hidden}(\tilde x))\big),
    \qquad \tilde x_j = m_j x_j,

with :math:`m_j \in \{0, 1\}` the mask: padded positions are zeroed before the FFT (so they
cannot reach any output) and the outputs at padded positions are zeroed after it. No
parameters; ``O(N D log(N D))``. Every output depends on every input, so ``causal=True`` is
refused.

Paths (``mixing_path``): ``fft`` (:func:`~spectrans.transforms.fft.fourier_mix_2d`, in
float32), ``fft_traced`` (:func:`~spectrans.transforms.fft.fourier_mix_2d_traced`: the same
cuFFT half spectrum with the completion left to the compiler), ``gemm``
(:func:`~spectrans.transforms.dft_gemm.fnet_gemm`:
the half spectrum by dense GEMMs with the ``(D, D + 2)`` DFT matrix and the first
``N/2 + 1`` rows of the sequence DFT's cosines and sines (the others mirror them), in bfloat16
under autocast, ``O(N D (D + N))``) or ``factored``
(:func:`~spectrans.transforms.factored.fnet_fourstep`: the hidden DFT as one GEMM and the
sequence DFT by the four-step method as small GEMMs, ``O(N D (D + sqrt N))``; a prime ``N``
takes ``fft``). ``auto`` on a CUDA input takes ``gemm`` up to :data:`GEMM_MAX_LENGTH`, else
``factored`` from :data:`FACTORED_MIN_LENGTH`, else ``fft_traced`` when ``torch.compile``
traces a layer at least :data:`~spectrans.transforms.fft.HALF_SPECTRUM_MIN_WIDTH` wide
(:data:`TRACED_WHEN_COMPILED`) and ``fft`` otherwise; on other devices ``fft``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from spectrans.config.layers.mixing import FNetMixingConfig
from spectrans.layers.mixing.base import MixingLayer
from spectrans.registry import register_mixer
from spectrans.transforms.dft_gemm import fnet_gemm
from spectrans.transforms.factored import fnet_fourstep, fourstep_split
from spectrans.transforms.fft import (
    HALF_SPECTRUM_MIN_WIDTH,
    fourier_mix_2d,
    fourier_mix_2d_traced,
)

GEMM_MAX_LENGTH: int | None = None
"""auto: the ``gemm`` path on CUDA up to this length; None: never.

None as measured on an H200 in bf16 (``python -m experiments.probe_paths --tables fnet
--timing graph``, ``results/paths_probe.md``, 2026-12-01 17:19 UTC, forward+backward of one
layer): cuFFT beats the two dense GEMMs at every length probed, 1024 to 8192, at both widths
(2.07 against 4.45 ms at the ListOps shape (32, 2001, 512), 0.74 against 1.72 ms at N = 1024).
Those GEMMs were unfolded; the folded sequence product (half the multiply-adds) is not yet
timed on a GPU. The path stays for explicit use; its ``(2, N/2 + 1, N)`` matrix holds about
``N^2`` entries (8 MB in bfloat16 at N = 2001, 256 MB at N = 16384)."""

TRACED_WHEN_COMPILED: bool = True
"""auto on CUDA under ``torch.compile``: ``fft_traced`` (True) or ``fft`` (False).

True as measured on an H200 in bf16 (``python -m experiments.bench_step --tasks listops
--mixers fnet,lst-dct --compile all --compile-tasks listops --mixing-path auto,gemm,fft_traced``,
``results/train_step.md``, 2026-12-01 19:55 UTC): the ListOps FNet training step compiled with
CUDA graphs takes 12.82 ms with ``fft_traced`` against 16.12 with ``fft`` (the compiler fuses
the spectrum's completion and the casts around it; the custom op of ``fft`` keeps them apart)
and 13.42 with ``gemm``. Eager steps keep ``fft``: without a compiler the traced completion is
the same work as the op's, run as separate kernels, and it has not been timed. Layers narrower
than :data:`~spectrans.transforms.fft.HALF_SPECTRUM_MIN_WIDTH` keep ``fft`` too: there it is
``torch.fft.fft2`` with nothing opaque to the compiler, and the half spectrum was measured
slower at the Pathfinder-32 width of 32."""

FACTORED_MIN_LENGTH: int | None = None
"""auto: the factored path on CUDA from this length on; None: never (``fft`` always).

None as measured on an H200 in bf16 (``results/paths_probe.md``, forward+backward of one
layer): cuFFT beats the four-step GEMMs at every length probed, 1024 to 65536, by 3-4x
(1.91 ms against 6.27 ms at the ListOps shape (32, 2000, 512))."""


@register_mixer(
    "fnet",
    FNetMixingConfig,
    family="mixing",
    complexity="O(n log n)",
    description="FNet 2-D Fourier mixing",
    paper="Lee-Thorp et al. 2022, FNet",
)
class FourierMixing(MixingLayer):
    r"""FNet token mixing: real part of the 2-D FFT over (sequence, hidden).

    Scale (``fft_norm``): the FNet paper's DFTs are unscaled (``backward``), so for an input
    of unit-variance tokens the output's entries have variance about :math:`N D / 2`
    (:math:`|\mathrm{Re}\,z|^2` of a sum of :math:`N D` unit terms). FNet used them in post-norm
    blocks, where a LayerNorm follows each sum. In a pre-norm block,
    ``x + mix(LN(x))``, nothing rescales the sum: at the Pathfinder-32 preset's shape
    (N = 1024, D = 32, black pixels masked) each block adds a term of RMS 39-68 (125-181
    unmasked) to a residual stream that starts at RMS 1 (202 after four blocks; 0.2-0.3 per
    block and 1.5 after four with ``ortho``), so what the feed-forward sublayers add is small
    against it by that factor (measured at init, ``results/ablations/pathfinder-fnet-scale.md``).
    With ``ortho`` both DFTs are unitary (:math:`F_N / \sqrt N`, :math:`F_D / \sqrt D`), so
    :math:`\|\mathrm{Re}(F_N x F_D^T)\| / \sqrt{N D} \le \|x\|`: the mixing keeps the input's
    scale. The two differ by the constant :math:`\sqrt{N D}` only (``N`` the padded length
    the layer sees).

    Args:
        hidden_dim: Model width D (kept for the contract; FNet has no weights).
        dropout: Dropout on the output.
        causal: Must be False (FNet mixes the whole sequence).
        init_weights: Accepted for the contract; there are no weights.
        fft_norm: ``backward`` (unscaled, the FNet paper's) or ``ortho`` (unitary DFTs).
    """

    def __init__(
        self,
        hidden_dim: int = 512,
        dropout: float = 0.0,
        causal: bool = False,
        init_weights: str = "truncnormal002",
        fft_norm: Literal["backward", "ortho"] = "backward",
    ) -> None:
        super().__init__(hidden_dim, dropout, causal, init_weights)
        if fft_norm not in ("backward", "ortho"):
            raise ValueError(f"fft_norm={fft_norm!r}: use 'backward' or 'ortho'.")
        self.fft_norm = fft_norm

    mixing_path: Literal["auto", "fft", "fft_traced", "gemm", "factored"] = "auto"

    def chosen_path(self, n: int, device: torch.device, compiled: bool | None = None) -> str:
        """``fft``, ``fft_traced``, ``gemm`` or ``factored`` for ``n`` on ``device``.

        Args:
            n: Sequence length the layer sees.
            device: Device of the input.
            compiled: Whether ``torch.compile`` traces the call; None asks
                ``torch.compiler.is_compiling()`` (what :meth:`mix` does).
        """
        path = self.mixing_path
        if path == "auto":
            short = GEMM_MAX_LENGTH is not None and n <= GEMM_MAX_LENGTH
            long = FACTORED_MIN_LENGTH is not None and n >= FACTORED_MIN_LENGTH
            traced = torch.compiler.is_compiling() if compiled is None else compiled
            if device.type != "cuda":
                path = "fft"
            elif short or long:
                path = "gemm" if short else "factored"
            else:
                wide = self.hidden_dim >= HALF_SPECTRUM_MIN_WIDTH
                path = "fft_traced" if TRACED_WHEN_COMPILED and traced and wide else "fft"
        if path == "factored" and fourstep_split(n)[0] == 1:
            return "fft"  # a prime length has no four-step split
        return path

    def mix(self, x: Tensor) -> Tensor:
        """``Re FFT2(x)`` over (sequence, hidden), scaled as ``fft_norm`` says: (B, N, D)."""
        path = self.chosen_path(x.shape[1], x.device)
        if path == "gemm":
            y = fnet_gemm(x)
        elif path == "fft_traced":
            y = fourier_mix_2d_traced(x)
        elif path == "factored":
            y = fnet_fourstep(x)
        else:
            y = fourier_mix_2d(x)
        if self.fft_norm == "ortho":
            y = y * (x.shape[1] * x.shape[2]) ** -0.5  # unitary DFTs: 1/sqrt(N D)
        return y
