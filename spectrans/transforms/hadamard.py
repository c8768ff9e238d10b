r"""Fast Walsh-Hadamard transform (Sylvester / natural order), vectorised.

The Sylvester matrices are :math:`H_1 = (1)`, :math:`H_{2m} = \begin{pmatrix} H_m & H_m \\
H_m & -H_m \end{pmatrix}`, so :math:`H_P = H_{c_1} \otimes H_{c_2} \otimes \dots` for any split
:math:`P = c_1 c_2 \cdots` into powers of two. :func:`fwht` applies one small dense
:math:`H_c` (``c <= 32``, balanced sizes) per factor as a batched matmul along one axis of a
reshaped view of the whole tensor: ``ceil(log2(P) / 5)`` passes, no Python loop over elements,
``O(P log P)`` work. With ``normalized=True`` (default) it computes :math:`H_P x / \sqrt{P}`,
which is orthonormal and symmetric, hence its own inverse.

Lengths that are not powers of two are zero-padded to :math:`P = 2^{\lceil \log_2 n \rceil}`:
**the output has the padded length P** along ``dim``. Callers that want length ``n`` back (the
LST attention layers) apply the inverse and crop.

Examples:
    >>> import torch
    >>> from spectrans.transforms.hadamard import fwht
    >>> x = torch.randn(2, 8, dtype=torch.float64)
    >>> torch.allclose(fwht(fwht(x)), x)
    True
    >>> fwht(torch.randn(5)).shape
    torch.Size([8])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from spectrans.transforms.constants import eager_cached
from spectrans.transforms.precision import compute_dtype

_MAX_BLOCK_LOG2 = 5  # dense H_c blocks of at most 32 x 32 (balanced; fastest measured on CPU)


def next_power_of_two(n: int) -> int:
    """Smallest power of two ``>= n`` (``n >= 1``)."""
    if n < 1:
        raise ValueError(f"length must be at least 1, got {n}")
    return 1 << (n - 1).bit_length()


def bit_parity(x: Tensor) -> Tensor:
    """Parity of the number of set bits of each entry of the non-negative integer tensor ``x``.

    Folds the bits in place (``x`` is overwritten) and returns 0 or 1 per entry.
    """
    shifts = (32, 16, 8, 4, 2, 1) if x.dtype == torch.int64 else (16, 8, 4, 2, 1)
    for shift in shifts:
        x ^= x >> shift
    return x.bitwise_and_(1)


@eager_cached(maxsize=32)
def sylvester_matrix(c: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Sylvester Hadamard matrix ``H_c`` (entries +-1, ``c`` a power of two), cached.

    Entry ``(k, j)`` is ``(-1)^popcount(k & j)``, built elementwise on ``device``; do not
    modify the returned tensor.
    """
    k = torch.arange(c, device=device)
    parity = bit_parity(k[:, None] & k[None, :])  # (c, c): 0 or 1
    return (1 - 2 * parity).to(dtype)  # (c, c)


def sequency(p: int, device: torch.device | None = None) -> Tensor:
    """Sequency (number of sign changes) of each row of the Sylvester matrix ``H_p``.

    Row ``i`` has sequency ``gray^{-1}(bitreverse(i))``. Returns a long tensor of shape (p,),
    a permutation of ``0..p-1`` (cached per ``(p, device)``: do not modify it in place).
    """
    if p & (p - 1) or p < 1:
        raise ValueError(f"p must be a power of two, got {p}")
    return _sequency(p, torch.device(device) if device is not None else torch.device("cpu"))


@eager_cached(maxsize=32)
def _sequency(p: int, device: torch.device) -> Tensor:
    bits = p.bit_length() - 1
    i = torch.arange(p, device=device)
    rev = torch.zeros_like(i)
    for b in range(bits):  # bit reversal, one step per bit (log2 p steps)
        rev |= ((i >> b) & 1) << (bits - 1 - b)
    out = rev.clone()  # inverse Gray code: prefix xor of the bits
    shift = 1
    while shift < max(bits, 1):
        out ^= out >> shift
        shift <<= 1
    return out


def fwht(x: Tensor, dim: int = -1, normalized: bool = True) -> Tensor:
    """Walsh-Hadamard transform along ``dim`` in Sylvester order.

    Args:
        x: Real tensor; ``dim`` has ``n >= 1`` samples.
        dim: Axis to transform.
        normalized: Divide by ``sqrt(P)`` (orthonormal, self-inverse). Unnormalised,
            ``fwht(fwht(x, normalized=False), normalized=False) == P * x``.

    Returns:
        Tensor like ``x`` but with ``P = next_power_of_two(n)`` samples along ``dim`` (zero
        padding first). Half and bfloat16 inputs are computed in float32 and cast back.
    """
    if not x.is_floating_point():
        raise ValueError(f"fwht expects a floating point tensor, got dtype {x.dtype}")
    dim = dim % x.dim()
    n = x.shape[dim]
    p = next_power_of_two(n)
    out_dtype = x.dtype
    xc = x.to(compute_dtype(x))
    if p != n:
        pad = [0, 0] * (x.dim() - 1 - dim) + [0, p - n]
        xc = F.pad(xc, pad)  # (..., P, ...)
    pre = math.prod(xc.shape[:dim])
    post = math.prod(xc.shape[dim + 1 :])
    y = xc.reshape(pre, p, post)
    bits = p.bit_length() - 1
    passes = -(-bits // _MAX_BLOCK_LOG2)  # ceil: as few passes as blocks of <= 32 allow
    done = 1  # product of the block sizes applied so far (the leading factors)
    for i in range(passes):  # balanced blocks, e.g. 13 bits -> 4, 3, 3, 3
        c = 1 << (bits // passes + (1 if i < bits % passes else 0))
        inner = p // (done * c)
        h = sylvester_matrix(c, y.dtype, y.device)  # (c, c)
        y = torch.matmul(h, y.reshape(pre * done, c, inner * post))  # (pre*done, c, inner*post)
        done *= c
    if normalized:
        y = y * (1.0 / math.sqrt(p))
    shape = list(x.shape)
    shape[dim] = p
    return y.reshape(shape).to(out_dtype)
