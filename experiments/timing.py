"""Timing and peak-memory helpers shared by the benchmarks.

A *step* is a zero-argument callable that runs one forward+backward (and, for training steps,
one optimizer update). :func:`measure` reports the median of timed repeats after one warm-up
(:mod:`experiments.bench`); :func:`time_steps` the mean over steps run back to back, and
:func:`time_step_windows` that mean for each of several windows (:mod:`experiments.bench_step`).
Both synchronise the device around timed regions, so ``perf_counter`` differences measure
finished device work.

Eager timing launches every kernel from Python, so at small sizes it measures the host's
dispatch and launch time. ``measure(..., graph=True)`` instead captures the step into one CUDA
graph (:func:`capture_graph`) and times its replays: the device's time for the step's work.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` after a reset; on CPU the growth of
the process's resident set (``VmHWM`` after ``/proc/self/clear_refs`` minus ``VmRSS`` before).
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (no-op off CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def is_oom(err: BaseException) -> bool:
    """Whether ``err`` is an out-of-memory failure (CUDA, or the CPU allocator's)."""
    if isinstance(err, MemoryError | torch.cuda.OutOfMemoryError):
        return True
    text = str(err).lower()
    return "out of memory" in text or "not enough memory" in text or "can't allocate" in text


def device_name(device: torch.device) -> str:
    """Human-readable device: the GPU name, or the CPU model and torch thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    return f"cpu ({model}, {torch.get_num_threads()} threads)"


def short_device_name(device: torch.device) -> str:
    """GPU name, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


# --------------------------------------------------------------------------------------------
# CPU peak memory
# --------------------------------------------------------------------------------------------


def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def pin_malloc_threshold() -> None:
    """Fix glibc's mmap threshold (128 KiB) so large freed tensors return to the OS."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD


def _proc_status_kib(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(f"{key} not in /proc/self/status")


def cpu_rss_growth(fn: Callable[[], None]) -> int | None:
    """Run ``fn`` and return the peak RSS growth in bytes, or None where it cannot be read."""
    libc = _libc()
    try:
        if libc is not None:
            libc.malloc_trim(0)
        before = _proc_status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
    except (OSError, KeyError):
        fn()
        return None
    fn()
    return max(0, _proc_status_kib("VmHWM") - before) * 1024


def warm_libraries(device: torch.device) -> None:
    """Create cuBLAS/cuFFT workspaces once, so the first measured mixer is not charged them."""
    a = torch.randn(64, 64, device=device, requires_grad=True)  # (64, 64)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        (a @ a).float().sum().backward()
    (a @ a).sum().backward()
    torch.fft.rfft(a.detach(), dim=0).abs().sum().item()
    sync(device)


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------


def make_step(
    module: nn.Module, x: Tensor, dtype: str, *, autocast_cache: bool | None = None
) -> Callable[[], None]:
    """One forward+backward: ``module(x).backward(g)``, bf16 under autocast.

    ``g`` is a fixed normal gradient of the output (:class:`UpstreamGradient`), so the step
    is the module's forward and backward and nothing else.

    The step sets the gradients of ``module`` and ``x`` to None first, so each step (and a CUDA
    graph captured from it) allocates them afresh instead of accumulating.

    Args:
        module: The layer or model; called on ``x`` of shape (B, N, D).
        x: Input that requires grad, shape (B, N, D).
        dtype: ``"fp32"``, or ``"bf16"`` for ``torch.autocast(bfloat16)``.
        autocast_cache: ``cache_enabled`` of the autocast context; None keeps torch's default.
            A step to be captured into a CUDA graph needs False (cast weights must not be
            cached across the capture boundary).

    Returns:
        The zero-argument step.
    """
    autocast = (
        torch.autocast(
            device_type=x.device.type, dtype=torch.bfloat16, cache_enabled=autocast_cache
        )
        if dtype == "bf16"
        else contextlib.nullcontext()
    )

    upstream = UpstreamGradient()

    def step() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        with autocast:
            out = module(x)  # (B, N, D)
            out = out[0] if isinstance(out, tuple) else out
        upstream(out)

    return step


class UpstreamGradient:
    """Back-propagate a fixed ``N(0, 1)`` gradient of an output: ``out.backward(g)``.

    ``g`` is drawn once per output shape, dtype and device (seeded) and kept, so a CUDA graph
    captured after the first call replays with the same tensor. A timed step that ends this
    way measures the module alone; a loss of the output would add its own kernels (for
    ``mean(out.float()^2)``: a float32 copy, the square, the mean and their backward, about
    1.9 ms of an H200's time at ``(8, 65536, 256)``,
    ``results/profile/kernels_layer_64k_compiled.md``) and its float32 copy to the peak
    memory.

    Args:
        seed: Seed of the generator that draws ``g``.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.grad: Tensor | None = None

    def __call__(self, out: Tensor) -> None:
        """``out.backward(g)`` with the kept ``g`` (drawn on first use or a new output kind)."""
        g = self.grad
        if g is None or g.shape != out.shape or g.dtype != out.dtype or g.device != out.device:
            gen = torch.Generator(device=out.device).manual_seed(self.seed)
            g = torch.randn(out.shape, generator=gen, device=out.device, dtype=out.dtype)
            self.grad = g
        out.backward(g)


def make_train_step(
    model: nn.Module,
    forward: Callable[[], Tensor],
    labels: Tensor,
    optimizer: torch.optim.Optimizer,
    dtype: str,
    device: torch.device,
) -> Callable[[], None]:
    """One optimizer step: forward (autocast for bf16), cross-entropy, backward, update."""
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        with torch.autocast(device.type, torch.bfloat16, enabled=dtype == "bf16"):
            logits = forward()  # (B, C)
        loss = loss_fn(logits.float(), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def _timed(step: Callable[[], None], device: torch.device) -> float:
    """Seconds one ``step`` takes, the device synchronised before and after."""
    sync(device)
    t0 = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - t0


def _peak_bytes(step: Callable[[], None], device: torch.device, baseline_bytes: int) -> int | None:
    """Peak memory of one ``step``: CUDA allocator peak minus ``baseline_bytes``, or CPU RSS."""
    if device.type != "cuda":
        return cpu_rss_growth(step)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    sync(device)
    return int(torch.cuda.max_memory_allocated(device)) - baseline_bytes


TIMINGS: tuple[str, ...] = ("eager", "graph", "compiled")
"""How a step is timed: launched from Python (``eager``), replayed as a CUDA graph (``graph``),
or replayed as a CUDA graph of the module compiled by ``torch.compile`` (``compiled``)."""

GRAPH_TIMINGS: tuple[str, ...] = ("graph", "compiled")
"""The timings whose timed steps are replays of a CUDA graph (CUDA only)."""


class GraphCaptureError(RuntimeError):
    """Capturing a step into a CUDA graph failed (e.g. the step synchronises with the host)."""


def capture_graph(
    step: Callable[[], None], device: torch.device, warmup: int = 3
) -> Callable[[], None]:
    """Capture ``step`` (forward and backward) into one CUDA graph; return its ``replay``.

    PyTorch's whole-network capture pattern: ``warmup`` eager steps on a side stream (so lazy
    initialisation and autograd's stream bookkeeping happen outside the capture), then one
    step under ``torch.cuda.graph``. The step must set gradients to None before its backward
    (as :func:`make_step` does) and run autocast with ``cache_enabled=False``. Replays reuse
    the captured input, parameters and gradient tensors in place.

    Args:
        step: Zero-argument forward+backward on fixed tensors.
        device: The CUDA device.
        warmup: Eager steps on the side stream before the capture.

    Returns:
        ``graph.replay``; the graph (and its memory pool) lives as long as this callable.
    """
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(warmup):
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def first_line(err: BaseException) -> str:
    """``Type: first line of the message``: an exception as one line of a table or log."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


def measure(
    step: Callable[[], None],
    device: torch.device,
    repeats: int,
    budget_s: float,
    baseline_bytes: int = 0,
    *,
    graph: bool = False,
) -> tuple[float, int | None, int, str]:
    """Time ``step`` (median of timed repeats after one warm-up) and its peak memory.

    On CUDA the peak is ``max_memory_allocated`` during one step minus ``baseline_bytes``
    (what was allocated before the module was built: library workspaces and plan caches left
    by earlier configurations). The repeats are capped so that warm-up, memory step (and, with
    ``graph``, the capture) and repeats fit the budget:
    ``n = max(1, min(repeats, (budget - 2 t_warm - t_capture) / t_warm))``.

    With ``graph`` the warm-up and memory steps are still eager (so the peak means the same in
    both modes); then the step is captured by :func:`capture_graph` and the timed repeats are
    replays of that graph, each device-synchronised before and after.

    Args:
        step: Zero-argument forward+backward (with ``graph``: capturable, see
            :func:`capture_graph`).
        device: Where the step runs.
        repeats: Most timed repeats.
        budget_s: Seconds for the whole measurement.
        baseline_bytes: Allocated CUDA bytes not to count as the step's.
        graph: Time CUDA graph replays instead of eager steps.

    The first call may carry one-time costs (kernels compiled at run time, FFT plans), so a
    first warm-up over the budget but within twice it is followed by a second, and the second
    decides; its time is ``t_warm``.

    Returns:
        ``(time_ms, peak_mem_bytes, repeats_done, status)``; status ``over_budget`` when the
        warm-up alone exceeded ``budget_s`` (its time is returned, nothing else is run).

    Raises:
        GraphCaptureError: With ``graph``, when the capture fails; its message starts
            ``CUDA graph capture failed:`` and is one line.
    """
    warm = _timed(step, device)
    if budget_s < warm <= 2 * budget_s:
        warm = _timed(step, device)  # the first call's one-time costs are not the step's
    if warm > budget_s:
        return 1e3 * warm, None, 0, "over_budget"
    peak = _peak_bytes(step, device, baseline_bytes)
    timed, spent = step, 2 * warm
    if graph:
        start = time.perf_counter()
        try:
            timed = capture_graph(step, device)
        except Exception as err:
            raise GraphCaptureError(f"CUDA graph capture failed: {first_line(err)}") from err
        sync(device)
        spent += time.perf_counter() - start
    n = max(1, min(repeats, int((budget_s - spent) / max(warm, 1e-9))))
    times = [_timed(timed, device) for _ in range(n)]
    del timed  # with graph: frees the CUDA graph and its memory pool
    return 1e3 * statistics.median(times), peak, n, "ok"


def time_steps(
    step: Callable[[], None], device: torch.device, warmup: int, steps: int
) -> tuple[float, int | None]:
    """Mean milliseconds per step after ``warmup`` untimed steps, and the peak bytes (CUDA)."""
    windows, peak = time_step_windows(step, device, warmup, steps, 1)
    return windows[0], peak


def time_step_windows(
    step: Callable[[], None], device: torch.device, warmup: int, steps: int, windows: int
) -> tuple[list[float], int | None]:
    """Mean milliseconds per step of each of ``windows`` windows, and the peak bytes (CUDA).

    After ``warmup`` untimed steps, ``windows`` windows of ``steps`` steps run back to back,
    the device synchronised at each window's ends; a window's figure is its wall time over
    ``steps``. Their spread is how much the same step moves within one process (clocks,
    allocator, other work on the machine); the peak is taken over all of them.
    """
    if windows < 1 or steps < 1:
        raise ValueError(f"windows and steps must be >= 1, got {windows} and {steps}")
    for _ in range(warmup):
        step()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    figures = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync(device)
        figures.append((time.perf_counter() - start) * 1000.0 / steps)
    peak = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    return figures, peak
