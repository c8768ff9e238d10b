"""Configuration models for mixing layers (FNet, global filter, AFNO, wavelet, FNO, S4D).

Mixing layers have no queries, keys or heads; they share :class:`TokenMixerConfig`'s fields.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from spectrans.config.core import TokenMixerConfig, check_divides


class FNetMixingConfig(TokenMixerConfig):
    """FNet Fourier mixing: ``Re(FFT_seq(FFT_hidden(x)))``; no parameters.

    FNet cannot be causal (every output sees every input); ``causal=True`` is refused by the
    layer.

    Attributes:
        fft_norm: ``backward``: the unscaled DFTs of the FNet paper; ``ortho``: both scaled,
            by ``N^{-1/2}`` and ``D^{-1/2}``, so the mixing is the real part of a unitary map
            and ``||y|| <= ||x||`` (see :class:`~spectrans.layers.mixing.fourier.FourierMixing`).
    """

    name: Literal["fnet"] = "fnet"
    fft_norm: Literal["backward", "ortho"] = "backward"


class GlobalFilterMixingConfig(TokenMixerConfig):
    """GFNet-style learned global filter over the sequence.

    Attributes:
        max_sequence_length: Length the learned frequency filter is built for.
    """

    name: Literal["global_filter"] = "global_filter"
    max_sequence_length: int = Field(1024, gt=0)


WaveletName = Literal["haar", "db1", "db2", "db3", "db4", "db5", "db6", "db7", "db8"]
WaveletBoundary = Literal["symmetric", "periodic"]


class AFNOMixingConfig(TokenMixerConfig):
    """Adaptive Fourier neural operator mixing (Guibas et al. 2022).

    Attributes:
        num_blocks: Blocks of the block-diagonal complex MLP; must divide ``hidden_dim``.
        hidden_size_factor: Inner width of each block's MLP over its block width.
        sparsity_threshold: Soft-shrinkage threshold on the real and imaginary parts.
        modes: Retained rFFT modes (lowest first); None keeps every mode.
    """

    name: Literal["afno"] = "afno"
    num_blocks: int = Field(8, gt=0)
    hidden_size_factor: int = Field(1, gt=0)
    sparsity_threshold: float = Field(0.01, ge=0.0)
    modes: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _blocks_divide_width(self) -> AFNOMixingConfig:
        check_divides(self.hidden_dim, self.num_blocks, "num_blocks")
        return self


class WaveletMixingConfig(TokenMixerConfig):
    """DWT, learned per-subband gains, inverse DWT (over the sequence, per channel).

    Attributes:
        wavelet: ``haar`` or Daubechies ``db1``..``db8``.
        levels: Decomposition levels (fewer for sequences too short for them).
        mode: Boundary handling: ``symmetric`` extension or ``periodic`` (orthonormal).
        mixing_mode: ``pointwise`` (one gain per subband and channel) or ``channel`` (a
            ``D x D`` matrix per subband).
    """

    name: Literal["wavelet"] = "wavelet"
    wavelet: WaveletName = "db4"
    levels: int = Field(3, gt=0)
    mode: WaveletBoundary = "symmetric"
    mixing_mode: Literal["pointwise", "channel"] = "pointwise"


class FNOMixingConfig(TokenMixerConfig):
    """Fourier neural operator spectral convolution over the sequence (Li et al. 2021).

    Attributes:
        modes: Retained rFFT modes (lowest first), each with a complex ``D x D`` weight.
    """

    name: Literal["fno"] = "fno"
    modes: int = Field(16, gt=0)


class S4DMixingConfig(TokenMixerConfig):
    """Diagonal state-space mixer S4D (Gu et al. 2022).

    Attributes:
        state_dim: State size N per channel (``N // 2`` complex-conjugate mode pairs).
        init: ``lin`` (S4D-Lin) or ``inv`` (S4D-Inv) initialisation of the imaginary parts.
        bidirectional: Add a second kernel run backwards in time (not causal).
        dt_min: Smallest initial step size.
        dt_max: Largest initial step size.
    """

    name: Literal["s4d"] = "s4d"
    state_dim: int = Field(64, ge=2)
    init: Literal["lin", "inv"] = "lin"
    bidirectional: bool = False
    dt_min: float = Field(0.001, gt=0.0)
    dt_max: float = Field(0.1, gt=0.0)

    @model_validator(mode="after")
    def _check(self) -> S4DMixingConfig:
        if self.dt_min > self.dt_max:
            raise ValueError(f"dt_min ({self.dt_min}) must not exceed dt_max ({self.dt_max})")
        if self.causal and self.bidirectional:
            raise ValueError("causal=True is invalid with bidirectional=True; set one of them")
        return self
