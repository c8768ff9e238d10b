"""Triton kernels of :mod:`spectrans.kernels.small_head_attention` (imported on first use).

Importing this module defines the kernels; ``TRITON_INTERPRET=1`` set before that runs them on
CPU tensors. The maths and the index of each dropout draw: the parent module's docstring.
"""

# ruff: noqa: ANN001, ANN202, N803

import triton
import triton.language as tl

from spectrans.kernels.triton_rows import load_rows, store_rows


@triton.jit
def _keep(seed, bh, offs_m, start_n, n, p_drop, BM: tl.constexpr, BN: tl.constexpr):
    """Dropout keep mask of the (BM, BN) tile at key column ``start_n`` (a multiple of 8).

    One Philox call per query row and group of 8 key columns: its four 32-bit outputs are
    split into eight 16-bit uniforms ``u``, and an element is kept when ``u >= p 2^16``
    (keep probability within ``2^-16`` of ``1 - p``).
    """
    groups = (n + 7) // 8
    cols = start_n // 8 + tl.arange(0, BN // 8)  # (BN/8,)
    index = (bh * n + offs_m[:, None]).to(tl.int64) * groups + cols[None, :]  # (BM, BN/8)
    r0, r1, r2, r3 = tl.randint4x(seed, index)
    low = tl.join(tl.join(r0 & 0xFFFF, r1 & 0xFFFF), tl.join(r2 & 0xFFFF, r3 & 0xFFFF))
    high = tl.join(tl.join(r0 >> 16, r1 >> 16), tl.join(r2 >> 16, r3 >> 16))
    u = tl.reshape(tl.join(low, high), (BM, BN))  # (BM, BN) in [0, 2^16)
    return u.to(tl.float32) >= p_drop * 65536.0


@triton.jit
def _forward(
    q_ptr, k_ptr, v_ptr, o_ptr, lse_ptr, seed_ptr, scale, p_drop, n,
    D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, DROPOUT: tl.constexpr,
    PREC: tl.constexpr,
):  # fmt: skip
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    rows = bh.to(tl.int64) * n
    offs_m = pid_m * BM + tl.arange(0, BM)
    row_ok = offs_m < n
    q = load_rows(q_ptr, rows, offs_m, row_ok, D)  # (BM, D)
    m_i = tl.full([BM], float("-inf"), tl.float32)
    l_i = tl.zeros([BM], tl.float32)
    acc = tl.zeros([BM, D], tl.float32)
    seed = 0
    if DROPOUT:
        seed = tl.load(seed_ptr)
    for start in range(0, n, BN):
        offs_n = start + tl.arange(0, BN)
        col_ok = offs_n < n
        k = load_rows(k_ptr, rows, offs_n, col_ok, D)  # (BN, D)
        s = tl.dot(q, tl.trans(k), input_precision=PREC) * scale  # (BM, BN) float32
        s = tl.where(col_ok[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.exp(m_i - m_new)
        p = tl.exp(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        if DROPOUT:
            keep = _keep(seed, bh, offs_m, start, n, p_drop, BM, BN)
            p = tl.where(keep, p / (1.0 - p_drop), 0.0)
        v = load_rows(v_ptr, rows, offs_n, col_ok, D)  # (BN, D)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PREC)
        m_i = m_new
    store_rows(o_ptr, rows, offs_m, row_ok, D, acc / l_i[:, None])
    tl.store(lse_ptr + rows + offs_m, m_i + tl.log(l_i), mask=row_ok)


@triton.jit
def _recompute_tile(
    q, k, v, do, lse, delta, row_ok, col_ok, seed, bh, offs_m, start_n, n, scale, p_drop,
    BM: tl.constexpr, BN: tl.constexpr, DROPOUT: tl.constexpr, PREC: tl.constexpr,
):  # fmt: skip
    """One backward tile, recomputed: ``Z = M o P / (1 - p)`` and ``dS = P o (dP - D)``."""
    s = tl.dot(q, tl.trans(k), input_precision=PREC) * scale  # (BM, BN)
    p = tl.exp(s - lse[:, None])
    p = tl.where(row_ok[:, None] & col_ok[None, :], p, 0.0)
    dz = tl.dot(do, tl.trans(v), input_precision=PREC)  # (BM, BN) float32
    if DROPOUT:
        keep = _keep(seed, bh, offs_m, start_n, n, p_drop, BM, BN)
        z = tl.where(keep, p / (1.0 - p_drop), 0.0)
        dp = tl.where(keep, dz / (1.0 - p_drop), 0.0)
    else:
        z = p
        dp = dz
    return z, p * (dp - delta[:, None])


@triton.jit
def _backward_kv(
    q_ptr, k_ptr, v_ptr, do_ptr, lse_ptr, delta_ptr, dk_ptr, dv_ptr, seed_ptr, scale,
    p_drop, n, D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, DROPOUT: tl.constexpr,
    PREC: tl.constexpr,
):  # fmt: skip
    pid_n = tl.program_id(0)
    bh = tl.program_id(1)
    rows = bh.to(tl.int64) * n
    offs_n = pid_n * BN + tl.arange(0, BN)
    col_ok = offs_n < n
    k = load_rows(k_ptr, rows, offs_n, col_ok, D)  # (BN, D)
    v = load_rows(v_ptr, rows, offs_n, col_ok, D)  # (BN, D)
    dk = tl.zeros([BN, D], tl.float32)
    dv = tl.zeros([BN, D], tl.float32)
    seed = 0
    if DROPOUT:
        seed = tl.load(seed_ptr)
    for start in range(0, n, BM):
        offs_m = start + tl.arange(0, BM)
        row_ok = offs_m < n
        q = load_rows(q_ptr, rows, offs_m, row_ok, D)  # (BM, D)
        do = load_rows(do_ptr, rows, offs_m, row_ok, D)  # (BM, D)
        lse = tl.load(lse_ptr + rows + offs_m, mask=row_ok, other=0.0)
        delta = tl.load(delta_ptr + rows + offs_m, mask=row_ok, other=0.0)
        z, ds = _recompute_tile(
            q, k, v, do, lse, delta, row_ok, col_ok, seed, bh, offs_m, pid_n * BN, n, scale,
            p_drop, BM, BN, DROPOUT, PREC,
        )  # fmt: skip
        dv += tl.dot(tl.trans(z.to(do.dtype)), do, input_precision=PREC)
        dk += tl.dot(tl.trans(ds.to(q.dtype)), q, input_precision=PREC)
    store_rows(dk_ptr, rows, offs_n, col_ok, D, dk * scale)
    store_rows(dv_ptr, rows, offs_n, col_ok, D, dv)


@triton.jit
def _backward_q(
    q_ptr, k_ptr, v_ptr, do_ptr, lse_ptr, delta_ptr, dq_ptr, seed_ptr, scale, p_drop, n,
    D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, DROPOUT: tl.constexpr,
    PREC: tl.constexpr,
):  # fmt: skip
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    rows = bh.to(tl.int64) * n
    offs_m = pid_m * BM + tl.arange(0, BM)
    row_ok = offs_m < n
    q = load_rows(q_ptr, rows, offs_m, row_ok, D)  # (BM, D)
    do = load_rows(do_ptr, rows, offs_m, row_ok, D)  # (BM, D)
    lse = tl.load(lse_ptr + rows + offs_m, mask=row_ok, other=0.0)
    delta = tl.load(delta_ptr + rows + offs_m, mask=row_ok, other=0.0)
    dq = tl.zeros([BM, D], tl.float32)
    seed = 0
    if DROPOUT:
        seed = tl.load(seed_ptr)
    for start in range(0, n, BN):
        offs_n = start + tl.arange(0, BN)
        col_ok = offs_n < n
        k = load_rows(k_ptr, rows, offs_n, col_ok, D)  # (BN, D)
        v = load_rows(v_ptr, rows, offs_n, col_ok, D)  # (BN, D)
        _, ds = _recompute_tile(
            q, k, v, do, lse, delta, row_ok, col_ok, seed, bh, offs_m, start, n, scale, p_drop,
            BM, BN, DROPOUT, PREC,
        )  # fmt: skip
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PREC)
    store_rows(dq_ptr, rows, offs_m, row_ok, D, dq * scale)


@triton.jit
def _keep_matrix(seed_ptr, out_ptr, bh, n, p_drop, BM: tl.constexpr, BN: tl.constexpr):
    """The keep mask of one (batch, head) as a uint8 (N, N) matrix (for tests)."""
    offs_m = tl.program_id(0) * BM + tl.arange(0, BM)
    offs_n = tl.program_id(1) * BN + tl.arange(0, BN)
    keep = _keep(tl.load(seed_ptr), bh, offs_m, tl.program_id(1) * BN, n, p_drop, BM, BN)
    ok = (offs_m[:, None] < n) & (offs_n[None, :] < n)
    tl.store(out_ptr + offs_m[:, None] * n + offs_n[None, :], keep.to(tl.uint8), mask=ok)
