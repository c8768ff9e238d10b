"""Triton kernels of :mod:`spectrans.kernels.favor_fused` (imported on first use).

Importing this module defines the kernels; ``TRITON_INTERPRET=1`` set before that runs them on
CPU tensors. The maths: the parent module's docstring. Per program, ``D`` (head width), ``E1``
(value width + 1) and ``M`` (features) are padded widths: padded head and value columns are
zero, padded features get ``-inf`` logits.
"""

# ruff: noqa: ANN001, ANN202, N803

import triton
import triton.language as tl

from spectrans.kernels.triton_rows import load_rows, store_rows

LN2 = tl.constexpr(0.6931471805599453)


@triton.jit
def _matrix_ptrs(ptr, bh, M: tl.constexpr, E1: tl.constexpr):
    """Addresses of the ``(M, E1)`` float32 matrix (``KV`` or ``dKV``) of one batch and head."""
    return ptr + (bh.to(tl.int64) * M + tl.arange(0, M)[:, None]) * E1 + tl.arange(0, E1)[None, :]


@triton.jit
def _features(x, w, m, M: tl.constexpr, PREC: tl.constexpr):
    """``softmax(x W^T)`` over the ``m`` real features, its ``lse`` and the logits' rows."""
    offs_f = tl.arange(0, M)
    logits = tl.dot(x, tl.trans(w), input_precision=PREC)  # (B, M) float32
    logits = tl.where(offs_f[None, :] < m, logits, float("-inf"))
    peak = tl.max(logits, 1)
    ex = tl.exp(logits - peak[:, None])
    total = tl.sum(ex, 1)
    return ex / total[:, None], peak + tl.log(total)


@triton.jit
def _load_w(w_ptr, m, D: tl.constexpr, M: tl.constexpr):
    offs_f = tl.arange(0, M)
    offs_d = tl.arange(0, D)
    return tl.load(
        w_ptr + offs_f[:, None] * D + offs_d[None, :], mask=offs_f[:, None] < m, other=0.0
    )


@triton.jit
def _key_scale(k, lse, e_max):
    """``s_j = exp(lse_j - |k_j|^2 / 2 - e_j ln 2) 2^{min(e_j - E, 0)}`` and ``e_j``."""
    kf = k.to(tl.float32)
    log_scale = lse - 0.5 * tl.sum(kf * kf, 1)
    e = tl.floor(log_scale / LN2)
    return tl.exp(log_scale - e * LN2) * tl.exp2(tl.minimum(e - e_max, 0.0)), e


@triton.jit
def _favor_keys(
    k_ptr, v_ptr, w_ptr, mask_ptr, kv_ptr, emax_ptr, n, m, heads,
    D: tl.constexpr, E1: tl.constexpr, M: tl.constexpr, BN: tl.constexpr,
    HAS_MASK: tl.constexpr, PREC: tl.constexpr,
):  # fmt: skip
    """``KV = phi_k^T (s V)`` (M, E1) and ``E`` of one (batch, head), keys in blocks of BN."""
    bh = tl.program_id(0)
    base = bh.to(tl.int64) * n
    w = _load_w(w_ptr, m, D, M)
    kv = tl.zeros([M, E1], tl.float32)
    e_max = tl.full([], float("-inf"), tl.float32)
    for start in range(0, n, BN):
        offs_n = start + tl.arange(0, BN)
        ok = offs_n < n
        k = load_rows(k_ptr, base, offs_n, ok, D)  # (BN, D)
        v = load_rows(v_ptr, base, offs_n, ok, E1)  # (BN, E1)
        phi, lse = _features(k, w, m, M, PREC)  # (BN, M), (BN,)
        real = ok
        if HAS_MASK:
            b = bh // heads
            real = real & (tl.load(mask_ptr + b.to(tl.int64) * n + offs_n, mask=ok, other=0) != 0)
        kf = k.to(tl.float32)
        e = tl.floor((lse - 0.5 * tl.sum(kf * kf, 1)) / LN2)
        e_new = tl.maximum(e_max, tl.max(tl.where(real, e, float("-inf")), 0))
        kv = kv * tl.where(e_new == e_max, 1.0, tl.exp2(e_max - e_new))
        s, _ = _key_scale(k, lse, e_new)
        s = tl.where(ok, s, 0.0)
        sv = (v.to(tl.float32) * s[:, None]).to(v.dtype)  # (BN, E1)
        kv += tl.dot(tl.trans(phi.to(v.dtype)), sv, input_precision=PREC)
        e_max = e_new
    tl.store(_matrix_ptrs(kv_ptr, bh, M, E1), kv)
    tl.store(emax_ptr + bh, e_max)


@triton.jit
def _favor_queries(
    q_ptr, w_ptr, kv_ptr, out_ptr, n, m,
    D: tl.constexpr, E1: tl.constexpr, M: tl.constexpr, BM: tl.constexpr, PREC: tl.constexpr,
):  # fmt: skip
    """``out = phi_q KV`` for one block of BM queries."""
    bh = tl.program_id(1)
    base = bh.to(tl.int64) * n
    offs_m = tl.program_id(0) * BM + tl.arange(0, BM)
    ok = offs_m < n
    q = load_rows(q_ptr, base, offs_m, ok, D)  # (BM, D)
    phi, _ = _features(q, _load_w(w_ptr, m, D, M), m, M, PREC)  # (BM, M)
    kv = tl.load(_matrix_ptrs(kv_ptr, bh, M, E1))  # (M, E1)
    out = tl.dot(phi.to(q.dtype), kv.to(q.dtype), input_precision=PREC)  # (BM, E1)
    store_rows(out_ptr, base, offs_m, ok, E1, out)


@triton.jit
def _favor_backward_q(
    q_ptr, w_ptr, kv_ptr, g_ptr, dq_ptr, dkv_ptr, n, m,
    D: tl.constexpr, E1: tl.constexpr, M: tl.constexpr, BM: tl.constexpr, PREC: tl.constexpr,
):  # fmt: skip
    """``dq = (phi_q o G KV^T) W`` block by block and ``dKV = phi_q^T G`` of one (batch, head)."""
    bh = tl.program_id(0)
    base = bh.to(tl.int64) * n
    w = _load_w(w_ptr, m, D, M)
    kv = tl.load(_matrix_ptrs(kv_ptr, bh, M, E1))  # (M, E1)
    dkv = tl.zeros([M, E1], tl.float32)
    for start in range(0, n, BM):
        offs_m = start + tl.arange(0, BM)
        ok = offs_m < n
        q = load_rows(q_ptr, base, offs_m, ok, D)  # (BM, D)
        g = load_rows(g_ptr, base, offs_m, ok, E1)  # (BM, E1)
        phi, _ = _features(q, w, m, M, PREC)  # (BM, M)
        phi = tl.where(ok[:, None], phi, 0.0)
        dkv += tl.dot(tl.trans(phi.to(g.dtype)), g, input_precision=PREC)
        reach = tl.dot(g, tl.trans(kv.to(g.dtype)), input_precision=PREC)  # (BM, M)
        a = (phi * reach).to(w.dtype)
        store_rows(dq_ptr, base, offs_m, ok, D, tl.dot(a, w, input_precision=PREC))
    tl.store(_matrix_ptrs(dkv_ptr, bh, M, E1), dkv)


@triton.jit
def _favor_backward_k(
    k_ptr, v_ptr, w_ptr, emax_ptr, dkv_ptr, dk_ptr, dv_ptr, n, m,
    D: tl.constexpr, E1: tl.constexpr, M: tl.constexpr, BN: tl.constexpr, PREC: tl.constexpr,
):  # fmt: skip
    """``dk = (F o V dKV^T) W - rowsum(F o V dKV^T) k`` and ``dV = F dKV``, ``F = s phi_k``."""
    bh = tl.program_id(1)
    base = bh.to(tl.int64) * n
    offs_n = tl.program_id(0) * BN + tl.arange(0, BN)
    ok = offs_n < n
    k = load_rows(k_ptr, base, offs_n, ok, D)  # (BN, D)
    v = load_rows(v_ptr, base, offs_n, ok, E1)  # (BN, E1)
    w = _load_w(w_ptr, m, D, M)
    dkv = tl.load(_matrix_ptrs(dkv_ptr, bh, M, E1))  # (M, E1)
    phi, lse = _features(k, w, m, M, PREC)  # (BN, M)
    s, _ = _key_scale(k, lse, tl.load(emax_ptr + bh))
    feat = phi * tl.where(ok, s, 0.0)[:, None]  # (BN, M)
    reach = tl.dot(v, tl.trans(dkv.to(v.dtype)), input_precision=PREC)  # (BN, M)
    a = feat * reach
    dk = tl.dot(a.to(w.dtype), w, input_precision=PREC) - tl.sum(a, 1)[:, None] * k.to(tl.float32)
    dv = tl.dot(feat.to(v.dtype), dkv.to(v.dtype), input_precision=PREC)  # (BN, E1)
    store_rows(dk_ptr, base, offs_n, ok, D, dk)
    store_rows(dv_ptr, base, offs_n, ok, E1, dv)
