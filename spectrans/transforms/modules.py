"""Thin ``nn.Module`` wrappers of the transforms, acting along the sequence axis.

Each module has ``transform(x)`` and ``inverse(y)`` and no parameters. The axis is ``dim``
(default ``-2``: the sequence axis of ``(B, N, D)`` or ``(B, H, N, d)`` tensors).
``forward`` is ``transform``. ``num_frequencies(n)`` is the number of coefficients the
transform returns for ``n`` samples (``n`` for DCT/DST, the padded power of two for Hadamard,
``n // 2 + 1`` complex rFFT bins for FFT).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import spectrans.transforms.cosine as cosine
from spectrans.transforms.hadamard import fwht, next_power_of_two


class _SequenceTransform(nn.Module):
    """Shared plumbing: ``dim`` and ``forward = transform``."""

    def __init__(self, dim: int = -2) -> None:
        super().__init__()
        self.dim = dim

    def transform(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse(self, y: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def num_frequencies(self, n: int) -> int:
        """Coefficients returned for ``n`` samples."""
        return n

    def forward(self, x: Tensor) -> Tensor:
        """Same as :meth:`transform`."""
        return self.transform(x)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class DCT(_SequenceTransform):
    """DCT of ``type`` (2 or 3) along ``dim``; ``inverse`` is the matching ``idct``.

    Args:
        type: DCT type, 2 (default) or 3.
        norm: ``"ortho"`` (orthonormal, default), ``None``/``"backward"`` or ``"forward"``.
        dim: Axis, default -2 (sequence axis of ``(B, N, D)``).
    """

    def __init__(self, type: int = 2, norm: str | None = "ortho", dim: int = -2) -> None:  # noqa: A002
        super().__init__(dim)
        cosine._check("dct", type, norm, cosine._DCT_TYPES)
        self.type, self.norm = type, norm

    def transform(self, x: Tensor) -> Tensor:
        """DCT along ``dim``."""
        return cosine.dct(x, self.type, self.norm, self.dim)

    def inverse(self, y: Tensor) -> Tensor:
        """Inverse DCT along ``dim``."""
        return cosine.idct(y, self.type, self.norm, self.dim)


class DST(_SequenceTransform):
    """DST of ``type`` (1, 2 or 3) along ``dim``; ``inverse`` is the matching ``idst``."""

    def __init__(self, type: int = 2, norm: str | None = "ortho", dim: int = -2) -> None:  # noqa: A002
        super().__init__(dim)
        cosine._check("dst", type, norm, cosine._DST_TYPES)
        self.type, self.norm = type, norm

    def transform(self, x: Tensor) -> Tensor:
        """DST along ``dim``."""
        return cosine.dst(x, self.type, self.norm, self.dim)

    def inverse(self, y: Tensor) -> Tensor:
        """Inverse DST along ``dim``."""
        return cosine.idst(y, self.type, self.norm, self.dim)


class HadamardTransform(_SequenceTransform):
    """Walsh-Hadamard transform along ``dim`` (Sylvester order).

    ``transform`` zero-pads ``n`` samples to ``P = next_power_of_two(n)`` and returns ``P``
    coefficients; ``inverse`` returns ``P`` samples (crop with ``[..., :n, :]`` yourself).

    Args:
        normalized: Orthonormal (divide by ``sqrt(P)``; self-inverse). If False, ``transform``
            is the unnormalised ``H_P`` and ``inverse`` is ``H_P / P``.
        dim: Axis, default -2.
    """

    def __init__(self, normalized: bool = True, dim: int = -2) -> None:
        super().__init__(dim)
        self.normalized = normalized

    def num_frequencies(self, n: int) -> int:
        """The padded length ``P``."""
        return next_power_of_two(n)

    def transform(self, x: Tensor) -> Tensor:
        """Hadamard coefficients (P of them) along ``dim``."""
        return fwht(x, self.dim, normalized=self.normalized)

    def inverse(self, y: Tensor) -> Tensor:
        """Inverse transform (``y`` must have a power-of-two length along ``dim``)."""
        out = fwht(y, self.dim, normalized=self.normalized)
        return out if self.normalized else out / y.shape[self.dim]


class FFTTransform(_SequenceTransform):
    """Real FFT along ``dim``: ``transform`` gives ``n // 2 + 1`` complex bins.

    ``inverse(y, n)`` is ``irfft`` back to ``n`` real samples (``n`` defaults to
    ``2 * (bins - 1)``, i.e. an even length; pass ``n`` for odd lengths).

    Args:
        norm: ``"ortho"`` (default), ``"backward"`` or ``"forward"`` (torch.fft semantics).
        dim: Axis, default -2.
    """

    def __init__(self, norm: str = "ortho", dim: int = -2) -> None:
        super().__init__(dim)
        if norm not in ("ortho", "backward", "forward"):
            raise ValueError(
                f"norm={norm!r} is not supported; use 'ortho', 'backward' or 'forward'"
            )
        self.norm = norm

    def num_frequencies(self, n: int) -> int:
        """``n // 2 + 1`` rFFT bins."""
        return n // 2 + 1

    def transform(self, x: Tensor) -> Tensor:
        """Real FFT along ``dim`` (float32 for half inputs)."""
        xc = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        return torch.fft.rfft(xc, dim=self.dim, norm=self.norm)

    def inverse(self, y: Tensor, n: int | None = None) -> Tensor:  # type: ignore[override]
        """Inverse real FFT along ``dim`` to ``n`` real samples."""
        return torch.fft.irfft(y, n=n, dim=self.dim, norm=self.norm)
