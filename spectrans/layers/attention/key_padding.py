r"""Key-padding softmax attention on flash attention's variable-length kernel.

A key-padding mask makes SDPA's fused kernels read a ``(B, 1, 1, N)`` mask for every score
tile and compute every padded query and key. Flash attention's variable-length kernel takes
the batch as one sequence of ``T`` tokens cut into segments by cumulative offsets ``cu``;
each token attends only to the tokens of its own segment, and no mask is read.

Each row of a ``(B, N)`` batch is cut into two segments: its real tokens and its padding.
When the real tokens come first (a prefix mask), row ``b`` with ``L_b`` real tokens gives

    cu = [0, L_0, N, N + L_1, 2N, ..., (B - 1) N + L_{B-1}, B N],

so a real query attends exactly to the real keys of its row,

    out_i = \sum_{j < L_b} softmax_j(q_i \cdot k_j / \sqrt{d}) v_j,

which is attention with the key mask. Padded queries attend among the padding; their outputs
are discarded by the caller (the layer zeroes masked positions), as are the outputs of SDPA's
masked rows. A row with no real tokens is one segment of padding, the rule "a query whose keys
are all masked sees every key" of :mod:`spectrans.layers.attention.softmax`.

Any mask is brought to prefix form by a stable permutation of each row that moves its real
tokens to the front. Softmax attention without position terms inside the kernel is
equivariant under a common permutation of queries, keys and values, so permuting, attending
and permuting back is exact. The permutation is a row gather whose backward is the gather
by the inverse permutation (no scatter-add).

The work is ``\sum_b L_b^2 + (N - L_b)^2`` score entries instead of ``B N^2``: for lengths
drawn uniformly from ``[N/4, N]`` (LRA ListOps) about 0.63 of the dense count (0.44 for the
real tokens, 0.19 for the padding, which :data:`PAD_SEGMENTS` cuts into smaller segments).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from spectrans.layers.attention.base import fused_head_width, pad_head_width

VARLEN_KEY_PADDING: bool = True
"""Take :func:`key_padding_attention` for key-padding masks where the flash kernel exists.
False: always the masked SDPA call (``python -m experiments.probe_paths --tables sdpa`` times
both)."""

FLASH_MAX_HEAD_DIM = 256
"""Widest head (after padding to a multiple of 8) of PyTorch's flash attention kernels."""


@functools.lru_cache(maxsize=8)
def _flash_capable(device_index: int) -> bool:
    """Flash attention 2 needs compute capability 8.0 (Ampere) or newer."""
    return torch.cuda.get_device_capability(device_index) >= (8, 0)


@torch.compiler.assume_constant_result
def _flash_backend_on(device_index: int) -> bool:
    """Whether SDPA's flash backend is enabled and GPU ``device_index`` can run it.

    ``torch.compile`` calls this once while it traces a caller and keeps the answer as a
    constant of the graph: ``torch.backends.cuda.flash_sdp_enabled()`` returns a Python bool
    that TorchDynamo cannot otherwise place in a graph (it would break the graph there, once
    per attention layer). Switching the flash backend off after a model is compiled takes
    effect when it is compiled again.
    """
    return torch.backends.cuda.flash_sdp_enabled() and _flash_capable(device_index)


def varlen_available(device: torch.device, dtype: torch.dtype, head_dim: int) -> bool:
    """Whether q, k, v of this device, dtype and head width can take the variable-length kernel.

    Not under ``torch.use_deterministic_algorithms``: the kernel's backward accumulates with
    atomics, and SDPA's own backend choice handles that mode.
    """
    if not VARLEN_KEY_PADDING or device.type != "cuda" or torch.version.hip is not None:
        return False
    if torch.are_deterministic_algorithms_enabled():
        return False
    if dtype not in (torch.float16, torch.bfloat16):
        return False
    fits = fused_head_width(head_dim) <= FLASH_MAX_HEAD_DIM
    return fits and _flash_backend_on(device.index or 0)


class RowPermutation(torch.autograd.Function):
    """``x[index]`` along dim 0 for a permutation ``index``; backward ``grad[inverse]``."""

    @staticmethod
    def forward(ctx, x: Tensor, index: Tensor, inverse: Tensor) -> Tensor:  # type: ignore[override]
        """Gather the rows ``index`` of x (M, F)."""
        ctx.save_for_backward(inverse)
        return x.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        """Gather the output gradient's rows by the inverse permutation."""
        (inverse,) = ctx.saved_tensors
        return grad.index_select(0, inverse), None, None


PAD_SEGMENTS = 4
"""Segments each row's padding is cut into. The padded queries' outputs are discarded, so any
cut is exact; ``S`` segments of about ``(N - L) / S`` tokens cost ``(N - L)^2 / S`` scores
instead of ``(N - L)^2``, for ``S`` more (mostly idle) blocks of the kernel's grid per row.
``python -m experiments.probe_paths --tables sdpa`` times 1 against 4 (``results/paths_probe.md``):
on an H200 in bfloat16, forward and backward, 4 took 0.89-0.92x the time of 1 at the ListOps
shape and 0.68-0.84x at N = 4096 and 16,384, and tied at the Pathfinder-32 shape (head dim 8).
A scratch sweep of S = 2, 4, 8, 16 at the ListOps shape found 4 fastest (16 slower than 1).

``S = 0``: the padding is one segment whose queries attend to no key (the kernel's
``seqused_k`` is 0 for it), so it costs no score work at all. The kernel writes 0 to such a
query's output and ``+inf`` to its log-sum-exp, so the backward (which has no ``seqused_k``
and runs over the segment's keys) forms ``P = exp(s - inf) = 0`` there and adds nothing to any
gradient: exact whatever the output gradient at padded queries. In the training-step benchmark
(H200, bf16, compiled, 2026-12-02) 0 took 25.80 ms against 26.35 for 4 at the Pathfinder-32
shape and 25.73 against 24.77 at the ListOps shape (``results/train_step.md``), so 4 stays the
default."""


class PrefixOrder:
    """The stable permutation that puts each row's real tokens first, and the segment offsets.

    Attributes:
        index: (B*N,) flat row indices: sorted position -> original position.
        inverse: (B*N,) original position -> sorted position.
        cu: (B (1 + S') + 1,) int32 segment offsets: per row ``bN``, then ``bN + L_b`` and the
            cuts of its padding into ``S`` = ``pad_segments`` near-equal parts (the first
            ``S - 1`` of ``ceil((N - L_b) / S)`` tokens each, empty ones where the padding is
            short), and ``BN`` at the end; ``S' = max(S, 1)``.
        seqused_k: None, or with ``S = 0`` the (2B,) int32 count of keys each segment's
            queries attend to: ``L_b`` for the real tokens, 0 for the padding.
        max_len: N, the longest segment.
    """

    def __init__(self, mask: Tensor, pad_segments: int | None = None) -> None:
        pieces = PAD_SEGMENTS if pad_segments is None else pad_segments
        if pieces < 0:
            raise ValueError(f"pad_segments must be at least 0, got {pieces}")
        batch, seq_len = mask.shape
        order = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)  # (B, N)
        offsets = torch.arange(batch, device=mask.device)[:, None] * seq_len  # (B, 1)
        self.index = (order + offsets).reshape(-1)  # (B*N,)
        positions = torch.arange(batch * seq_len, device=mask.device)
        self.inverse = torch.empty_like(self.index).scatter_(0, self.index, positions)
        lengths = mask.sum(dim=1, dtype=torch.int32)  # (B,)
        starts = offsets[:, 0].to(torch.int32)  # (B,)
        pad = seq_len - lengths  # (B,)
        cut = max(pieces, 1)  # S' (S = 0 keeps the padding whole)
        step = (pad + cut - 1) // cut  # (B,) ceil((N - L) / S')
        cuts = [starts + lengths + torch.minimum(step * j, pad) for j in range(cut)]
        cu = torch.stack([starts, *cuts], dim=1).reshape(-1)  # (B (1 + S'),)
        self.cu = torch.cat([cu, cu.new_full((1,), batch * seq_len)])  # (B (1 + S') + 1,)
        self.seqused_k: Tensor | None = None
        if pieces == 0:
            used = torch.stack([lengths, torch.zeros_like(lengths)], dim=1)  # (B, 2)
            self.seqused_k = used.reshape(-1)  # (2B,)
        self.max_len = seq_len

    def sort(self, x: Tensor) -> Tensor:
        """(B, N, ...) in original order -> (B, N, ...) with real tokens first in each row."""
        flat = x.reshape(x.shape[0] * x.shape[1], -1)  # (B*N, F)
        return RowPermutation.apply(flat, self.index, self.inverse).view(x.shape)

    def unsort(self, x: Tensor) -> Tensor:
        """Inverse of :meth:`sort`."""
        flat = x.reshape(x.shape[0] * x.shape[1], -1)  # (B*N, F)
        return RowPermutation.apply(flat, self.inverse, self.index).view(x.shape)


def segment_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    cu: Tensor,
    max_len: int,
    dropout: float,
    scale: float,
    seqused_k: Tensor | None = None,
) -> Tensor:
    """Softmax attention within the segments ``cu`` of T tokens; q, k, v (T, H, d) -> (T, H, d).

    Flash attention's variable-length kernel, attention dropout included (its draws are the
    kernel's own). With ``seqused_k`` the queries of segment ``s`` attend to its first
    ``seqused_k[s]`` keys only (none: output 0). The head width must be a multiple of 8.
    """
    out = torch.ops.aten._flash_attention_forward(
        q, k, v, cu, cu, max_len, max_len, dropout, False, False, scale=scale, seqused_k=seqused_k
    )[0]  # (T, H, d)
    return out


def key_padding_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    cu: Tensor,
    max_len: int,
    dropout: float,
    seqused_k: Tensor | None = None,
) -> Tensor:
    """Attention of prefix-ordered q, k, v (B, N, H, d) within their rows' segments ``cu``.

    The head width is zero-padded to a multiple of 8 with the scale ``1/sqrt(d)`` of the true
    width (exact) and the output cropped back. ``seqused_k``: :attr:`PrefixOrder.seqused_k`.

    Returns:
        (B, N, H, d); rows of padded queries hold attention among the padding (0 where their
        segment's ``seqused_k`` is 0).
    """
    batch, seq_len, heads, d = q.shape
    flat = pad_head_width(*(t.reshape(batch * seq_len, heads, d) for t in (q, k, v)))  # (T, H, d')
    out = segment_attention(*flat, cu, max_len, dropout, d**-0.5, seqused_k)  # (T, H, d')
    return out[..., :d].reshape(batch, seq_len, heads, d)
