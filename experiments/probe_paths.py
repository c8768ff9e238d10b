r"""Measure the choices the fast paths make: SDPA backend per mask/dropout, LST mixing paths.

Usage::

    python -m experiments.probe_paths [--out results/paths_probe.md] [--repeats 10]
        [--tables sdpa,lst,fnet,wavelet,performer] [--transforms dct,hadamard]
        [--timing eager|graph|compiled] [--lengths 16384,65536] [--lst-paths fast,fast-strided]

Five tables, each row one forward+backward (bf16 autocast, device-synchronised, median of
``repeats`` after a warm-up and a memory step, as :func:`experiments.timing.measure` times;
the backward from a fixed gradient of the output, :class:`experiments.timing.UpstreamGradient`):

- **SDPA**: ``scaled_dot_product_attention`` on q, k, v ``(B, H, N, d)`` restricted to one
  backend (cuDNN, flash, memory-efficient) with and without a key-padding mask
  ``(B, 1, 1, N)`` and attention dropout 0.1, at the LRA ListOps and Pathfinder-32 shapes
  and the layer benchmark's shape, and the small-head Triton kernels
  (:mod:`spectrans.kernels.small_head_attention`, head widths up to 16, no mask) at the same
  shapes, and, with the mask, flash attention's variable-length kernel on each row cut into
  its real tokens and its padding, the padding whole or cut in four (``segments``,
  :mod:`spectrans.layers.attention.key_padding`, the sort of each row included). A backend
  that refuses the inputs shows ``n/a``.
- **LST**: the LST layer of each ``--transforms`` kind with ``mixing_path`` forced to
  ``gemm`` (two GEMMs with the transform matrix), ``folded`` (the DCT/DST matrix split by
  its mirror symmetry into four half-size GEMMs; Hadamard as ``gemm``), ``factored`` (the
  transform factored into small GEMMs: Hadamard as :math:`H_a \otimes H_b`, DCT/DST by the
  four-step DFT), ``dense`` (the ``N x N`` operator built, then one GEMM per head),
  ``fast`` (the transforms) and ``fast-strided`` (``fast`` with the DCT/DST FFTs along the
  strided sequence axis, :data:`LST_PATHS`) at several N, at the ListOps width and the layer
  benchmark's width; ``gemm``, ``folded`` and ``dense`` are skipped (``-``) above
  ``MATRIX_PROBE_MAX_LENGTH``. ``GEMM_MAX_LENGTH``, ``FOLD_ODD_LENGTHS``, ``DENSE_MAX_LENGTH`` and
  ``FACTORED_MIN_LENGTH`` of :mod:`spectrans.layers.attention.lst` are read off it.
- **FNet**: the FNet layer on ``fft`` (cuFFT in float32), ``factored`` (four-step GEMMs in
  bf16) and ``gemm`` (two dense GEMMs with the DFT matrices in bf16; skipped above
  :data:`FNET_GEMM_PROBE_MAX_LENGTH`) at the same shapes; ``GEMM_MAX_LENGTH`` and
  ``FACTORED_MIN_LENGTH`` of :mod:`spectrans.layers.mixing.fourier` are read off it.
- **Wavelet**: the wavelet mixing layer (db4, 3 levels, symmetric: the presets') on ``fast``
  (the strided-convolution transforms) and ``gemm`` (the analysis and synthesis matrices, two
  GEMMs in bf16) at the Pathfinder-32, ListOps and layer-benchmark shapes
  (:data:`WAVELET_SHAPES`); ``GEMM_MAX_LENGTH`` of :mod:`spectrans.layers.mixing.wavelet` is
  read off it.
- **Performer**: :func:`spectrans.layers.attention.linear.feature_attention` on q, k, v
  ``(B, H, N, d)`` at the LRA Pathfinder-32 and ListOps shapes (256 features) with and without
  a key-padding mask: FAVOR+ through the fused contraction (``fused``, where
  ``(e + 1)(d + 1) <= m``), through its Triton kernels (``triton``,
  :mod:`spectrans.kernels.favor_fused`, widths up to 16) and through autograd (``autograd``),
  and the ReLU kernel, eager and under ``torch.compile``.

``--timing graph`` times the LST, FNet and wavelet tables as replays of one CUDA graph of the
forward+backward step (:func:`experiments.timing.measure` with ``graph=True``): the device's
time without the host's kernel launches, as training with ``compile_mode=reduce-overhead``
runs. ``--timing compiled`` first compiles each cell's layer with ``torch.compile`` (a fresh
Dynamo per cell, two untimed steps to compile it), then times replays of one CUDA graph of
the compiled step, as ``python -m experiments.bench --timing compiled`` does. The default
(``eager``) launches each step from Python, which at small N measures the launches. A step
that cannot be captured shows ``capture failed``. The Performer table has its own eager and
compiled columns whatever ``--timing`` says.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from experiments.fresh_compile import compile_fresh, fail_on_recompile_limit
from experiments.results import git_commit
from experiments.timing import (
    GRAPH_TIMINGS,
    TIMINGS,
    GraphCaptureError,
    UpstreamGradient,
    is_oom,
    measure,
    short_device_name,
)
from spectrans.kernels import favor_fused
from spectrans.kernels import small_head_attention as small_head
from spectrans.layers import spectral_filter
from spectrans.layers.attention import favor_contract as favor_contract_module
from spectrans.layers.attention import key_padding

BACKENDS = {
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
}
PROBE_BUDGET_S = 120.0
"""Seconds one configuration may take (it caps the repeats of a slow one)."""
LISTOPS_TOKENS = 2001
"""What a ListOps preset's token mixers see: 2000 tokens and the CLS token that LRA's ListOps
config (``pooling cls``) prepends. 2001 = 3 * 23 * 29, so FFT-based paths run cuFFT's kernel
for those radices there (``regular_fft<2001u, EPT<3u, 23u, 29u>>`` in
``results/profile/profile_listops_compiled.md``), not the one for 2000 = 2^4 * 5^3; the LST and
FNet table times both lengths."""
SDPA_SHAPES = {  # name: (B, H, N, d)
    "listops": (32, 8, LISTOPS_TOKENS, 64),
    "pathfinder-32": (512, 4, 1024, 8),
    "layer N=4096": (8, 4, 4096, 64),
    "layer N=16384": (8, 4, 16384, 64),
}
LST_SHAPES = {  # name: (B, D, H, lengths)
    "listops width": (32, 512, 8, (1024, 2000, LISTOPS_TOKENS, 3000, 4096, 8192)),
    "layer width": (8, 256, 4, (1024, 2048, 4096, 8192, 16384, 32768, 65536)),
}
LST_PATHS = ("gemm", "folded", "factored", "dense", "fast", "fast-strided")
"""The LST table's columns: the layer's mixing paths, and ``fast-strided``, the ``fast`` path
with :data:`spectrans.layers.spectral_filter.FFT_ALONG_LAST_DIM` off (DCT and DST FFTs along
the strided sequence axis; other kinds are unaffected)."""
WAVELET_SHAPES = {  # name: (B, D, lengths)
    "pathfinder-32": (512, 32, (1024,)),
    "listops": (32, 512, (LISTOPS_TOKENS,)),
    "layer width": (8, 256, (1024, 2048, 4096, 8192, 16384)),
}
PERFORMER_SHAPES = {  # name: (B, H, N, d)
    "pathfinder-32": (512, 4, 1024, 8),
    "listops": (32, 8, LISTOPS_TOKENS, 64),
}
PERFORMER_PATHS = ("fused", "triton", "autograd", "relu")
TABLES = ("sdpa", "lst", "fnet", "wavelet", "performer")
MATRIX_PROBE_MAX_LENGTH = 32768
"""Longest N timed on the ``gemm`` and ``dense`` paths (their N x N matrices grow as N^2)."""
FNET_GEMM_PROBE_MAX_LENGTH = 8192
"""Longest N timed on FNet's ``gemm`` path: its ``(N, 2N)`` matrix, 256 MiB in bf16 at 8192,
and ``4 N^2 (D/2 + 1)`` flops per batch item grow as N^2."""


def median_ms(step: Callable[[], None], repeats: int, graph: bool = False) -> float:
    """Median ms of ``step`` over ``repeats`` synchronised calls (:func:`timing.measure`).

    With ``graph`` the calls are replays of one CUDA graph of ``step``.
    """
    cuda = torch.device("cuda")
    ms, _, _, _ = measure(step, cuda, repeats, budget_s=PROBE_BUDGET_S, graph=graph)
    return ms


def autocast_ms(forward: Callable[[], torch.Tensor], reps: int, timing: str = "eager") -> str:
    """Median ms of ``forward`` under bf16 autocast plus its backward from a fixed gradient.

    ``timing`` is one of :data:`TIMINGS`; with ``graph`` or ``compiled`` the timed calls are
    replays of one CUDA graph of the step, and with ``compiled`` (``forward`` calls a compiled
    module) two untimed steps compile it first. ``oom`` if it runs out of memory (also while
    being captured), ``capture failed`` if the step cannot be captured otherwise. A captured
    step runs autocast without its weight cache, as CUDA graphs need.
    """
    graph = timing in GRAPH_TIMINGS
    upstream = UpstreamGradient()

    def step() -> None:
        with torch.autocast("cuda", torch.bfloat16, cache_enabled=not graph):
            out = forward()
        upstream(out)

    try:
        if timing == "compiled":
            for _ in range(2):  # compilation, then the first compiled step's one-time costs
                step()
        return f"{median_ms(step, reps, graph):.2f}"
    except torch.OutOfMemoryError:
        return "oom"
    except GraphCaptureError as err:  # a capture that ran out of memory is an oom too
        return "oom" if is_oom(err) else "capture failed"


def sdpa_ms(shape: tuple[int, ...], backend: str, masked: bool, dropout: float, reps: int) -> str:
    """Forward+backward milliseconds of SDPA on one backend, or ``n/a`` if it refuses."""
    b, h, n, d = shape
    q, k, v = (
        torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        for _ in range(3)
    )  # (B, H, N, d) each
    mask = None
    if masked:
        lengths = torch.randint(n // 4, n + 1, (b,), device="cuda")
        mask = (torch.arange(n, device="cuda") < lengths[:, None])[:, None, None, :]  # (B,1,1,N)

    upstream = UpstreamGradient()

    def step() -> None:
        with sdpa_kernel([BACKENDS[backend]]):
            out = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout
            )  # (B, H, N, d)
        upstream(out)

    try:
        return f"{median_ms(step, reps):.2f}"
    except RuntimeError:
        return "n/a"


PAD_SEGMENTS_PROBED = (0, 1, 4)
"""Values of :data:`spectrans.layers.attention.key_padding.PAD_SEGMENTS` the SDPA table times."""


def segments_ms(
    shape: tuple[int, ...], masked: bool, dropout: float, reps: int, pieces: int = 1
) -> str:
    """Forward+backward ms of key-padding attention on row segments, the sort included.

    Each row's padding is cut into ``pieces`` segments (0: one segment attending to no key).
    """
    b, h, n, d = shape
    if not masked or not key_padding.varlen_available(torch.device("cuda"), torch.bfloat16, d):
        return "n/a"
    q, k, v = (
        torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        for _ in range(3)
    )  # (B, N, H, d) each
    lengths = torch.randint(n // 4, n + 1, (b,), device="cuda")
    mask = torch.arange(n, device="cuda") < lengths[:, None]  # (B, N)

    upstream = UpstreamGradient()

    def step() -> None:
        order = key_padding.PrefixOrder(mask, pad_segments=pieces)
        qs, ks, vs = (order.sort(t) for t in (q, k, v))  # (B, N, H, d) each
        out = key_padding.key_padding_attention(
            qs, ks, vs, order.cu, order.max_len, dropout, order.seqused_k
        )  # (B, N, H, d)
        upstream(order.unsort(out))

    return f"{median_ms(step, reps):.2f}"


def small_head_ms(shape: tuple[int, ...], masked: bool, dropout: float, reps: int) -> str:
    """Forward+backward ms of the small-head Triton kernels, or ``n/a`` where they do not apply."""
    b, h, n, d = shape
    if masked or d > small_head.PADDED_HEAD_DIM or not small_head.HAS_TRITON:
        return "n/a"
    q, k, v = (
        torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        for _ in range(3)
    )  # (B, H, N, d) each

    upstream = UpstreamGradient()

    def step() -> None:
        out = small_head.small_head_attention(q, k, v, dropout)  # (B, H, N, d)
        upstream(out)

    return f"{median_ms(step, reps):.2f}"


def lst_ms(
    b: int,
    width: int,
    heads: int,
    n: int,
    path: str,
    reps: int,
    transform: str = "dct",
    timing: str = "eager",
) -> str:
    """Forward+backward milliseconds of the ``transform`` LST layer on ``path``."""
    from spectrans.layers.attention.lst import LSTAttention

    if path in ("gemm", "folded", "dense") and n > MATRIX_PROBE_MAX_LENGTH:
        return "-"
    if path == "fast-strided":
        if transform not in ("dct", "dst", "mixed"):
            return "-"
        saved = spectral_filter.FFT_ALONG_LAST_DIM
        spectral_filter.FFT_ALONG_LAST_DIM = False
        try:
            return lst_ms(b, width, heads, n, "fast", reps, transform, timing)
        finally:
            spectral_filter.FFT_ALONG_LAST_DIM = saved
    layer = LSTAttention(width, heads, transform, max_sequence_length=n).cuda()
    return _mixing_layer_ms(layer, b, width, n, path, reps, timing)


def _mixing_layer_ms(
    layer: torch.nn.Module, b: int, width: int, n: int, path: str, reps: int, timing: str
) -> str:
    """Forward+backward milliseconds of a mixing layer with ``mixing_path`` forced to ``path``.

    With ``timing`` ``compiled`` the layer is compiled after the path is set (and after any
    module flag the caller set), by a fresh Dynamo, so the graph traces this cell's choices.
    """
    layer = layer.cuda()
    layer.mixing_path = path
    run = compile_fresh(layer) if timing == "compiled" else layer
    x = torch.randn(b, n, width, device="cuda", requires_grad=True)  # (B, N, D)
    return autocast_ms(lambda: run(x), reps, timing)  # (B, N, D) output


def fnet_ms(b: int, width: int, n: int, path: str, reps: int, timing: str = "eager") -> str:
    """Forward+backward milliseconds of the FNet layer on ``path``."""
    from spectrans.layers.mixing.fourier import FourierMixing

    if path == "gemm" and n > FNET_GEMM_PROBE_MAX_LENGTH:
        return "-"
    return _mixing_layer_ms(FourierMixing(width), b, width, n, path, reps, timing)


def wavelet_ms(b: int, width: int, n: int, path: str, reps: int, timing: str = "eager") -> str:
    """Forward+backward milliseconds of the wavelet mixing layer (its preset: db4, 3 levels)."""
    from spectrans.layers.mixing.wavelet import WaveletMixing

    if path == "gemm" and n > MATRIX_PROBE_MAX_LENGTH:
        return "-"
    return _mixing_layer_ms(WaveletMixing(width), b, width, n, path, reps, timing)


def kept_lengths(shape_lengths: tuple[int, ...], lengths: frozenset[int] | None) -> list[int]:
    """The lengths of a shape that ``--lengths`` keeps (all of them without it)."""
    return [n for n in shape_lengths if lengths is None or n in lengths]


def path_table(
    shapes: dict[str, tuple[int, int, tuple[int, ...]]],
    paths: tuple[str, ...],
    measure_ms: Callable[..., str],
    reps: int,
    lengths: frozenset[int] | None = None,
) -> list[str]:
    """Markdown rows of a mixing layer's paths: one row per (B, D, N) of ``shapes``.

    ``lengths``, when given, keeps only the rows of those N.
    """
    lines = [
        "| config (B, D) | N | " + " | ".join(f"{path} ms" for path in paths) + " |",
        "|---|---|" + "---|" * len(paths),
    ]
    for name, (b, width, shape_lengths) in shapes.items():
        for n in kept_lengths(shape_lengths, lengths):
            cells = [measure_ms(b, width, n, path, reps) for path in paths]
            lines.append(f"| {name} ({b}, {width}) | {n} | {' | '.join(cells)} |")
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return lines


def fnet_table(
    reps: int, measure_ms: Callable[..., str] = fnet_ms, lengths: frozenset[int] | None = None
) -> list[str]:
    """Markdown rows of the FNet path table (the LST shapes)."""
    shapes = {name: (b, width, ns) for name, (b, width, _, ns) in LST_SHAPES.items()}
    return path_table(shapes, ("fft", "factored", "gemm"), measure_ms, reps, lengths)


def wavelet_table(
    reps: int, measure_ms: Callable[..., str] = wavelet_ms, lengths: frozenset[int] | None = None
) -> list[str]:
    """Markdown rows of the wavelet path table."""
    return path_table(WAVELET_SHAPES, ("fast", "gemm"), measure_ms, reps, lengths)


def performer_ms(shape: tuple[int, ...], path: str, masked: bool, compiled: bool, reps: int) -> str:
    """Forward+backward milliseconds of ``feature_attention`` on ``path`` (``n/a``: not taken)."""
    from unittest import mock

    from spectrans.kernels import PositiveRandomFeatures, ReLUFeatures
    from spectrans.layers.attention import linear

    b, h, n, d = shape
    if path in ("fused", "triton") and not linear.fused_is_cheaper(d, d, 256):
        return "n/a"
    if path == "triton" and not (favor_fused.HAS_TRITON and d < favor_fused.PADDED_WIDTH):
        return "n/a"
    kernel = ReLUFeatures(d) if path == "relu" else PositiveRandomFeatures(d, 256)
    kernel = kernel.cuda()
    q, k, v = (torch.randn(b, h, n, d, device="cuda", requires_grad=True) for _ in range(3))
    mask = (torch.arange(n, device="cuda") < n - n // 4).expand(b, n) if masked else None

    def forward() -> torch.Tensor:
        return linear.feature_attention(kernel, q, k, v, mask, causal=False)

    run = compile_fresh(forward) if compiled else forward  # a fresh Dynamo per cell
    fused = path in ("fused", "triton")
    with (
        mock.patch.object(linear, "_use_fused", lambda *a, **k: fused),
        mock.patch.object(favor_contract_module, "TRITON_KERNELS", path == "triton"),
    ):
        return autocast_ms(run, reps)  # (B, H, N, d) output


def performer_table(reps: int, measure_ms: Callable[..., str] = performer_ms) -> list[str]:
    """Markdown rows of the Performer table."""
    lines = [
        "| shape (B, H, N, d) | mask | path | eager ms | compiled ms |",
        "|---|---|---|---|---|",
    ]
    for name, shape in PERFORMER_SHAPES.items():
        for masked in (False, True):
            for path in PERFORMER_PATHS:
                cells = [measure_ms(shape, path, masked, c, reps) for c in (False, True)]
                mask = "key padding" if masked else "none"
                lines.append(f"| {name} {shape} | {mask} | {path} | {' | '.join(cells)} |")
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
    return lines


def sdpa_table(reps: int) -> list[str]:
    """Markdown rows of the SDPA table."""
    lines = [
        "| shape (B, H, N, d) | mask | dropout | cudnn ms | flash ms | efficient ms | "
        "small-head Triton ms | "
        + " | ".join(f"segments ms (padding in {p})" for p in PAD_SEGMENTS_PROBED)
        + " |",
        "|---" * (7 + len(PAD_SEGMENTS_PROBED)) + "|",
    ]
    for name, shape in SDPA_SHAPES.items():
        for masked in (False, True):
            for dropout in (0.0, 0.1):
                cells = [sdpa_ms(shape, be, masked, dropout, reps) for be in BACKENDS]
                cells.append(small_head_ms(shape, masked, dropout, reps))
                cells += [segments_ms(shape, masked, dropout, reps, p) for p in PAD_SEGMENTS_PROBED]
                lines.append(
                    f"| {name} {shape} | {'key padding' if masked else 'none'} | {dropout} | "
                    + " | ".join(cells)
                    + " |"
                )
                torch.cuda.empty_cache()
    return lines


def lst_table(
    reps: int,
    transforms: list[str],
    measure_ms: Callable[..., str] = lst_ms,
    lengths: frozenset[int] | None = None,
    paths: tuple[str, ...] = LST_PATHS,
) -> list[str]:
    """Markdown rows of the LST path table: one row per transform, shape and N.

    ``lengths``, when given, keeps only the rows of those N; ``paths`` are the columns.
    """
    lines = [
        "| transform | config (B, D, H) | N | " + " | ".join(f"{p} ms" for p in paths) + " |",
        "|---|---|---|" + "---|" * len(paths),
    ]
    for transform in transforms:
        for name, (b, width, heads, shape_lengths) in LST_SHAPES.items():
            for n in kept_lengths(shape_lengths, lengths):
                cells = [measure_ms(b, width, heads, n, p, reps, transform) for p in paths]
                lines.append(
                    f"| {transform} | {name} ({b}, {width}, {heads}) | {n} | "
                    + " | ".join(cells)
                    + " |"
                )
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
    return lines


def main(argv: list[str] | None = None) -> int:
    """Write the tables to ``--out`` (and print them); exit 2 without CUDA or on bad options."""
    with fail_on_recompile_limit():  # a row past Dynamo's limit fails instead of timing eager
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/paths_probe.md"))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--tables", default=",".join(TABLES), help="comma list of " + ", ".join(TABLES)
    )
    parser.add_argument(
        "--transforms", default="dct,hadamard", help="comma list of LST kinds (dct, dst, hadamard)"
    )
    parser.add_argument(
        "--timing",
        choices=TIMINGS,
        default="eager",
        help="graph: time the LST, FNet and wavelet tables as CUDA-graph replays (device time); "
        "compiled: the same replays of the layers compiled by torch.compile",
    )
    parser.add_argument(
        "--lengths",
        default="",
        help="comma list of N: only those rows of the LST, FNet and wavelet tables (default all)",
    )
    parser.add_argument(
        "--lst-paths",
        default=",".join(LST_PATHS),
        help="comma list of the LST table's columns, of " + ", ".join(LST_PATHS),
    )
    args = parser.parse_args(argv)
    tables = [t for t in args.tables.split(",") if t]
    lst_paths = tuple(p for p in args.lst_paths.split(",") if p)
    if not lst_paths or set(lst_paths) - set(LST_PATHS):
        print(
            f"unknown --lst-paths {args.lst_paths!r}; use a comma list of {', '.join(LST_PATHS)}.",
            file=sys.stderr,
        )
        return 2
    try:
        lengths = frozenset(int(n) for n in args.lengths.split(",") if n) or None
    except ValueError:
        print(f"--lengths {args.lengths!r} is not a comma list of integers.", file=sys.stderr)
        return 2
    transforms = [t for t in args.transforms.split(",") if t]
    if not tables or set(tables) - set(TABLES):
        print(
            f"unknown --tables {args.tables!r}; use a comma list of {', '.join(TABLES)}.",
            file=sys.stderr,
        )
        return 2
    if set(transforms) - {"dct", "dst", "hadamard"}:
        print(
            f"unknown --transforms {args.transforms!r}; use a comma list of dct, dst, hadamard.",
            file=sys.stderr,
        )
        return 2
    if not torch.cuda.is_available():
        print("probe_paths needs a CUDA device.", file=sys.stderr)
        return 2
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    timing_notes = {
        "graph": " (LST, FNet and wavelet tables: replays of one CUDA graph of the step, the "
        "device's time)",
        "compiled": " (LST, FNet and wavelet tables: each layer compiled by torch.compile, then "
        "replays of one CUDA graph of the compiled step, the device's time)",
    }
    head = [
        f"# Fast-path probe ({short_device_name(torch.device('cuda'))}, torch "
        f"{torch.__version__.split('+')[0]}, bf16, {stamp})",
        "",
        f"Command: `python -m experiments.probe_paths --repeats {args.repeats} "
        f"--tables {','.join(tables)} --transforms {','.join(transforms)} "
        f"--timing {args.timing}"
        + (f" --lengths {','.join(map(str, sorted(lengths)))}" if lengths else "")
        + (f" --lst-paths {','.join(lst_paths)}" if lst_paths != LST_PATHS else "")
        + "`. Forward+backward, median ms"
        + timing_notes.get(args.timing, "")
        + f". Commit: `{git_commit()}`.",
    ]
    lines = head
    if "sdpa" in tables:
        lines += ["", "## SDPA backends", "", *sdpa_table(args.repeats)]
    print("\n".join(lines), flush=True)
    rows: list[str] = []
    if "lst" in tables:
        lst = functools.partial(lst_ms, timing=args.timing)
        rows = [
            "",
            "## LST mixing paths",
            "",
            *lst_table(args.repeats, transforms, lst, lengths, lst_paths),
        ]
        print("\n".join(rows), flush=True)
    if "fnet" in tables:
        fnet = functools.partial(fnet_ms, timing=args.timing)
        fnet_rows = ["", "## FNet mixing paths", "", *fnet_table(args.repeats, fnet, lengths)]
        print("\n".join(fnet_rows), flush=True)
        rows += fnet_rows
    if "wavelet" in tables:
        wavelet = functools.partial(wavelet_ms, timing=args.timing)
        wavelet_rows = [
            "",
            "## Wavelet mixing paths",
            "",
            *wavelet_table(args.repeats, wavelet, lengths),
        ]
        print("\n".join(wavelet_rows), flush=True)
        rows += wavelet_rows
    if "performer" in tables:
        performer_rows = ["", "## Performer feature attention", "", *performer_table(args.repeats)]
        print("\n".join(performer_rows), flush=True)
        rows += performer_rows
    args.out.write_text("\n".join(lines + rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
