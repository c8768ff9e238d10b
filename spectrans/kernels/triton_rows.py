"""Row-tile loads and stores shared by the Triton kernel modules (imports Triton).

Imported only by the kernel modules, which are themselves imported on first use. A tensor is
row-major ``(rows, W)``; ``base`` is a row index (e.g. ``(batch * heads + bh) * N``) and
``offs`` the tile's row offsets from it.
"""

# ruff: noqa: ANN001, ANN202, N803

import triton
import triton.language as tl


@triton.jit
def load_rows(ptr, base, offs, ok, W: tl.constexpr):
    """Rows ``base + offs`` (zero where not ``ok``) of a row-major ``(rows, W)`` tensor."""
    cols = tl.arange(0, W)
    return tl.load(ptr + (base + offs[:, None]) * W + cols[None, :], mask=ok[:, None], other=0.0)


@triton.jit
def store_rows(ptr, base, offs, ok, W: tl.constexpr, value):
    """Write ``value`` to rows ``base + offs`` (where ``ok``) in the dtype of ``ptr``."""
    cols = tl.arange(0, W)
    address = ptr + (base + offs[:, None]) * W + cols[None, :]
    tl.store(address, value.to(ptr.dtype.element_ty), mask=ok[:, None])
