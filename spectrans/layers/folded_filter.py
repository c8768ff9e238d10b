r"""The DCT-II / DST-II filter :math:`M u = A^T (\Lambda \odot A u)` as four half-size GEMMs.

Both analysis matrices have a mirror symmetry in the sample index: with
:math:`A_{kj} = s_k \cos(\pi k (2j+1) / 2N)` (DCT-II) or
:math:`s_k \sin(\pi (k+1)(2j+1) / 2N)` (DST-II),

.. math::  A_{k,\,N-1-j} = (-1)^k A_{kj},

because :math:`2(N-1-j)+1 = 2N - (2j+1)` shifts the angle by :math:`\pi k` (DCT) or
:math:`\pi (k+1)` (DST) and flips the sign of the sine. So with :math:`h_o = \lfloor N/2
\rfloor`, :math:`h_e = \lceil N/2 \rceil`, the folded signal

.. math::  s_j = u_j + u_{N-1-j},\quad d_j = u_j - u_{N-1-j} \quad (j < h_o),
    \qquad s_{h_o} = u_{h_o} \ (N \text{ odd}),

gives the even coefficients from :math:`s` and the odd ones from :math:`d`:
:math:`c_{2m} = \sum_{j < h_e} A_{2m,j}\, s_j`, :math:`c_{2m+1} = \sum_{j < h_o} A_{2m+1,j}\,
d_j` (for odd N the middle sample has :math:`A_{k,h_o} = 0` at odd k: the angle is an odd
multiple of :math:`\pi/2` for the cosine, a multiple of :math:`\pi` for the sine). The
synthesis :math:`y = A^T c'` (:math:`c' = \Lambda \odot c`) unfolds the same way:
:math:`E = A_e^T c'_e`, :math:`O = A_o^T c'_o`, and :math:`y_j = E_j + O_j`,
:math:`y_{N-1-j} = E_j - O_j` (:math:`j < h_o`), :math:`y_{h_o} = E_{h_o}` for odd N.

:math:`A_e` is ``(h_e, h_e)`` and :math:`A_o` ``(h_o, h_o)``: the four GEMMs do half the
multiply-adds of the two full ones (:func:`~spectrans.layers.spectral_filter.matrix_filter`),
for two more elementwise passes (fold and unfold) that a compiler can merge into the layout
copies around them. The operator is exactly the same.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spectrans.layers.spectral_filter import transform_matrix
from spectrans.transforms.constants import eager_cached

FOLD_KINDS = ("dct", "dst")


def folded_matrices(
    kind: str, n: int, dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor]:
    """``A_e`` (even rows, first ``h_e`` columns) and ``A_o`` (odd rows, first ``h_o``).

    Cached per (kind, n, dtype, device) in eager code; built in the graph when compiling
    (:func:`~spectrans.transforms.constants.eager_cached`).
    """
    if kind not in FOLD_KINDS:
        raise ValueError(f"no mirror-symmetric matrix for kind {kind!r}; use one of {FOLD_KINDS}")
    return _folded(kind, n, dtype, device)


@eager_cached(maxsize=8)
def _folded(kind: str, n: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    a = transform_matrix(kind, n, dtype, device)  # (N, N)
    h_o, h_e = n // 2, (n + 1) // 2
    return a[0::2, :h_e].contiguous(), a[1::2, :h_o].contiguous()  # (h_e, h_e), (h_o, h_o)


def folded_filter(u: Tensor, gains: Tensor, kind: str) -> Tensor:
    r"""The filter :math:`M u` of a DCT-II or DST-II kind along dim -2 by the folded GEMMs.

    Args:
        u: ``(B, H, N, d)`` real signal.
        gains: ``(H, N)`` coefficient gains (:func:`~spectrans.layers.spectral_filter.
            coefficient_gains`), in natural coefficient order.
        kind: ``dct`` or ``dst``.

    Returns:
        ``(B, H, N, d)``, the same operator as :func:`~spectrans.layers.spectral_filter.
        matrix_filter`.
    """
    b, h, n, d = u.shape
    h_o, h_e = n // 2, (n + 1) // 2
    a_e, a_o = folded_matrices(kind, n, u.dtype, u.device)  # (h_e, h_e), (h_o, h_o)
    cols = u.permute(2, 0, 1, 3).reshape(n, b * h * d)  # (N, B*H*d)
    head, tail = cols[:h_o], cols[n - h_o :].flip(0)  # (h_o, M) each: u_j, u_{N-1-j}
    s = torch.cat([head + tail, cols[h_o:h_e]])  # (h_e, M), the middle sample when N is odd
    g = gains.t().to(u.dtype)  # (N, H)
    c_e = (a_e @ s).view(h_e, b, h, d) * g[0::2, None, :, None]  # (h_e, B, H, d)
    c_o = (a_o @ (head - tail)).view(h_o, b, h, d) * g[1::2, None, :, None]  # (h_o, B, H, d)
    even = a_e.t() @ c_e.reshape(h_e, b * h * d)  # (h_e, M): E
    odd = a_o.t() @ c_o.reshape(h_o, b * h * d)  # (h_o, M): O
    top = even[:h_o] + odd  # (h_o, M): y_j
    bottom = (even[:h_o] - odd).flip(0)  # (h_o, M): y_{N-1-j} in natural order
    out = torch.cat([top, even[h_o:h_e], bottom])  # (N, M)
    return out.view(n, b, h, d).permute(1, 2, 0, 3)  # (B, H, N, d)
