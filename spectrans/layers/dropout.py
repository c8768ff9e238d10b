r"""Dropout whose compiled masks come from an integer hash instead of a Philox stream.

:class:`Dropout` is :class:`torch.nn.Dropout` (same ``p``, same inverted scaling
:math:`y = x \odot m / (1 - p)` with :math:`m_i \sim \mathrm{Bernoulli}(1 - p)`), except while
``torch.compile`` traces it with :data:`HASHED_MASKS_WHEN_COMPILED` set. Inductor draws each
element of a dropout mask from Philox-4x32 with ten rounds (about a hundred integer
instructions per element, three of its four outputs unused in its two-dimensional kernels).
The presets' dropout costs the compiled ListOps step 2.2 ms (FNet) and 3.1 ms (lst-dct) on an
H200 (``results/train_step.md``, commit ``6a61f3c``), spent in the fused layer-norm and dropout
kernels; whether the Philox arithmetic is what bounds them is what this switch measures. The
hashed mask of a call is

.. math::

    h_i = g(g(i \oplus s_0) + s_1), \qquad m_i = [\,h_i \bmod 2^{24} \ge \lfloor p\, 2^{24}
    \rceil\,],

with :math:`i` the element's flat index, :math:`(s_0, s_1)` two 32-bit seeds drawn per call
from the global generator (one small Philox draw), and :math:`g` Wellons' ``lowbias32``
integer hash (two multiplies and three xor-shifts, 32-bit wrapping arithmetic). Two
independent seeds per call keep masks of different calls from being shifted copies of one
sequence (which one additive seed would give); two calls whose seeds agree in one of the two
(probability :math:`2^{-32}` per pair of calls) draw masks that are permutations of each other.
The keep rate is :math:`1 - \lfloor p\, 2^{24} \rceil / 2^{24}` (:math:`p` rounded to
:math:`2^{-24}`). The mask is a function of the seeds and the index, so the compiled backward
may rebuild it instead of storing it.

Eagerly (and for tensors of :math:`2^{31}` elements or more, whose flat index does not fit 32
bits) the layer is :func:`torch.nn.functional.dropout`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

HASHED_MASKS_WHEN_COMPILED = False
"""Draw dropout masks by :func:`hashed_keep` while ``torch.compile`` traces. Off: one pair of
runs on an H200 had it faster by less than a row moves between runs; ``python -m
experiments.bench_step --compile all --ab hashed-dropout`` times both sides in one process."""

MASK_BITS = 24
"""Low bits of the hash compared with the threshold (a float32-exact rate)."""

_MULTIPLIER_1 = 0x7FEB352D
_MULTIPLIER_2 = 0x846CA68B - (1 << 32)  # the same 32 bits as a signed int32


def _lowbias32(h: Tensor) -> Tensor:
    """Wellons' ``lowbias32`` on int32 (wrapping products; masked shifts are logical)."""
    h = h ^ ((h >> 16) & 0xFFFF)
    h = h * _MULTIPLIER_1
    h = h ^ ((h >> 15) & 0x1FFFF)
    h = h * _MULTIPLIER_2
    return h ^ ((h >> 16) & 0xFFFF)


def hashed_keep(shape: torch.Size | tuple[int, ...], p: float, seeds: Tensor) -> Tensor:
    """The keep mask ``m`` (bool, ``shape``) of the hashed dropout for ``seeds`` (2,) int32.

    Args:
        shape: Mask shape (fewer than ``2**31`` elements).
        p: Drop probability.
        seeds: Two int32 seeds on the mask's device.
    """
    numel = math.prod(shape)
    index = torch.arange(numel, dtype=torch.int32, device=seeds.device).view(shape)  # flat i
    h = _lowbias32(_lowbias32(index ^ seeds[0]) + seeds[1])  # shape, int32
    threshold = round(p * (1 << MASK_BITS))
    return (h & ((1 << MASK_BITS) - 1)) >= threshold


def draw_seeds(device: torch.device) -> Tensor:
    """Two int32 seeds from the global generator of ``device``."""
    return torch.randint(-(1 << 31), (1 << 31) - 1, (2,), dtype=torch.int32, device=device)


def hashed_dropout(x: Tensor, p: float, seeds: Tensor | None = None) -> Tensor:
    """``x * m / (1 - p)`` with the hashed mask ``m`` (new seeds when ``seeds`` is None)."""
    if seeds is None:
        seeds = draw_seeds(x.device)
    keep = hashed_keep(x.shape, p, seeds)  # x.shape, bool
    return x * keep.to(x.dtype) * (1.0 / (1.0 - p))


def hashes(p: float, numel: int) -> bool:
    """Whether a dropout of rate ``p`` on ``numel`` elements draws a hashed mask in this trace.

    While ``torch.compile`` traces with :data:`HASHED_MASKS_WHEN_COMPILED` set, for ``p < 1``
    and flat indices that fit 32 bits.
    """
    traced = HASHED_MASKS_WHEN_COMPILED and torch.compiler.is_compiling()
    return traced and p < 1.0 and numel < (1 << 31)


def keep_mask(dropout: nn.Dropout, shape: tuple[int, ...], device: torch.device) -> Tensor | None:
    """The keep mask (bool, ``shape``) ``dropout`` draws, or None when it drops nothing.

    From the integer hash where :func:`hashes` says so, otherwise one Bernoulli draw per
    element.
    """
    p = dropout.p
    if not dropout.training or p == 0.0:
        return None
    if hashes(p, math.prod(shape)):
        return hashed_keep(shape, p, draw_seeds(device))
    return torch.empty(shape, dtype=torch.bool, device=device).bernoulli_(1.0 - p)


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout`, with hashed masks in compiled graphs (module docstring)."""

    def forward(self, x: Tensor) -> Tensor:
        """x: any shape -> same shape."""
        if not self.training or self.p == 0.0:
            return x
        if hashes(self.p, x.numel()) and not self.inplace:
            return hashed_dropout(x, self.p)
        return F.dropout(x, self.p, self.training, self.inplace)
