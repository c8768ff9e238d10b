"""Scaling benchmark: forward+backward time and peak memory of every token mixer against N.

Usage::

    python -m experiments.bench [--device cpu|cuda] [--lengths 256 512 ...] [--dtypes fp32,bf16]
        [--batch 4] [--hidden 256] [--heads 4] [--repeats 3] [--scopes layer,model]
        [--mixers softmax,lst-dct,...] [--budget 60] [--out results/] [--quick]

For every registered mixer (``lst`` expanded over its transforms), one *layer* and one small
*model* (two pre-norm blocks) are timed at each sequence length N: one warm-up step, one step
for memory, then ``repeats`` timed steps (device-synchronised); the reported time is their
median. A step is ``loss = mean(f(x)^2); loss.backward()`` on ``x ~ N(0, 1)`` of shape
``(batch, N, hidden)`` with no padding mask, under ``torch.autocast(bfloat16)`` for ``bf16``.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` over the memory step (parameters,
input and activations); on CPU the growth of the process's resident set during that step
(``VmHWM`` after ``/proc/self/clear_refs`` minus ``VmRSS`` before, with glibc's dynamic mmap
threshold pinned so freed tensors go back to the OS), or ``n/a`` where that is unavailable.

Scaling exponent: ``log t = alpha * log N + c`` fitted by least squares on the upper half of
the lengths a mixer completed (and, for reference, on all of them). Crossover: the smallest
measured N from which the mixer is faster than the softmax (SDPA) layer at every larger
measured N (softmax running out of memory or time counts as slower).

A length that runs out of memory (``oom``) or over the per-config time budget
(``over_budget``) stops that mixer from growing (``skipped`` after); any other exception is
recorded as ``error`` with its message, and the run goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import math
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from experiments.results import git_commit

BASELINE = "softmax"
LST_TRANSFORMS: tuple[str, ...] = ("dct", "dst", "hadamard", "mixed")
CPU_LENGTHS: tuple[int, ...] = tuple(2**k for k in range(8, 14))  # 256 .. 8192
GPU_LENGTHS: tuple[int, ...] = tuple(2**k for k in range(8, 17))  # 256 .. 65536
STOP_STATUSES = ("oom", "over_budget")
CSV_COLUMNS = ("mixer", "scope", "dtype", "device", "N", "batch", "time_ms", "peak_mem_bytes",
               "status", "repeats", "message")


@dataclass(frozen=True)
class MixerSpec:
    """One benchmarked mixer.

    Attributes:
        label: Name in the tables (registry name, or ``lst-<transform>``).
        config: Registry config dict (``name`` plus options); ``max_sequence_length`` is set
            to N at build time where the config has it.
        factory: Optional ``N -> nn.Module`` that replaces the registry (tests, custom mixers).
        claim: The complexity the registry claims (``O(n)``, ``O(n log n)``, ``O(n^2)``).
    """

    label: str
    config: dict[str, Any] = field(default_factory=dict)
    factory: Callable[[int], nn.Module] | None = None
    claim: str = ""


@dataclass
class Row:
    """One measurement (a row of ``scaling.csv``)."""

    mixer: str
    scope: str
    dtype: str
    device: str
    N: int
    batch: int
    time_ms: float | None = None
    peak_mem_bytes: int | None = None
    status: str = "ok"
    repeats: int = 0
    message: str = ""


# --------------------------------------------------------------------------------------------
# Mixers and models
# --------------------------------------------------------------------------------------------


def default_specs(hidden: int, heads: int) -> list[MixerSpec]:
    """Every registered mixer, ``lst`` once per transform; heads only where the config has them."""
    from spectrans import registry

    specs: list[MixerSpec] = []
    for name in registry.names():
        entry = registry.get_entry(name)
        fields = entry.config_class.model_fields
        found = re.search(r"O\([^)]*\)", entry.description)
        claim = found.group(0) if found else ""
        config: dict[str, Any] = {"name": name, "hidden_dim": hidden}
        if "num_heads" in fields:
            config["num_heads"] = heads
        if name == "lst":
            specs += [MixerSpec(f"lst-{t}", {**config, "transform_type": t}, claim=claim)
                      for t in LST_TRANSFORMS]
        else:
            specs.append(MixerSpec(name, config, claim=claim))
    return specs


def build_mixer(spec: MixerSpec, n: int) -> nn.Module:
    """Build the mixer for sequence length ``n`` (registry, or the spec's factory)."""
    if spec.factory is not None:
        return spec.factory(n)
    from spectrans import registry

    config = dict(spec.config)
    if "max_sequence_length" in registry.get_entry(config["name"]).config_class.model_fields:
        config["max_sequence_length"] = n
    return registry.build_layer(config)


class _MixerOut(nn.Module):
    """Calls a mixer and drops the attention weights if it returns a tuple."""

    def __init__(self, mixer: nn.Module) -> None:
        super().__init__()
        self.mixer = mixer

    def forward(self, x: Tensor) -> Tensor:  # x: (B, N, D)
        """The mixer's output without weights."""
        out = self.mixer(x)
        return out[0] if isinstance(out, tuple) else out  # (B, N, D)


class PreNormBlock(nn.Module):
    """``x + mixer(LN(x))`` then ``x + MLP(LN(x))`` with a 4D GELU MLP."""

    def __init__(self, mixer: nn.Module, hidden: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.mixer = _MixerOut(mixer)
        self.mlp = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(),
                                 nn.Linear(4 * hidden, hidden))

    def forward(self, x: Tensor) -> Tensor:  # x: (B, N, D)
        """Two residual sub-blocks."""
        x = x + self.mixer(self.norm1(x))  # (B, N, D)
        return x + self.mlp(self.norm2(x))  # (B, N, D)


def build_small_model(spec: MixerSpec, n: int, hidden: int,
                      num_blocks: int = 2) -> tuple[nn.Module, str]:
    """The "whole small model" and a description of what it is.

    ``spectrans.models.build_classifier`` (encoder, ``num_blocks`` layers, no dropout, mean
    pooling, 10 classes, input ``(B, N, D)`` fed through an adapter that maps it to token ids)
    when it exists and accepts the mixer, else ``num_blocks`` pre-norm blocks of this module.
    """
    if spec.factory is None:
        try:
            return _classifier(spec, n, hidden, num_blocks), "build_classifier"
        except ImportError:
            pass
    blocks = [PreNormBlock(build_mixer(spec, n), hidden) for _ in range(num_blocks)]
    return nn.Sequential(*blocks, nn.LayerNorm(hidden)), "pre-norm stack"


class _TokenAdapter(nn.Module):
    """Feeds fixed random token ids to a classifier; the float input only sets the shape."""

    def __init__(self, model: nn.Module, vocab_size: int) -> None:
        super().__init__()
        self.model, self.vocab_size = model, vocab_size
        self._ids: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:  # x: (B, N, D)
        """Logits of the wrapped classifier on fixed token ids (drawn once per shape)."""
        if self._ids is None or self._ids.shape != x.shape[:2] or self._ids.device != x.device:
            gen = torch.Generator(device="cpu").manual_seed(0)
            self._ids = torch.randint(0, self.vocab_size, x.shape[:2], generator=gen).to(
                x.device)  # (B, N)
        return self.model(input_ids=self._ids)  # (B, C)


def _classifier(spec: MixerSpec, n: int, hidden: int, num_blocks: int) -> nn.Module:
    from spectrans.config.layers import parse_layer_config
    from spectrans.config.models import EncoderModelConfig
    from spectrans.models import build_classifier

    mixer_config = dict(spec.config)
    from spectrans import registry

    if "max_sequence_length" in registry.get_entry(mixer_config["name"]).config_class.model_fields:
        mixer_config["max_sequence_length"] = n
    model_cfg = EncoderModelConfig(hidden_dim=hidden, num_layers=num_blocks, dropout=0.0,
                                   max_sequence_length=n, pooling="mean")
    model = build_classifier(model_cfg, parse_layer_config(mixer_config), vocab_size=256,
                             num_classes=10, max_length=n, pair=False)
    return _TokenAdapter(model, 256)


# --------------------------------------------------------------------------------------------
# Measurement
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
    _sync(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _is_oom(err: BaseException) -> bool:
    if isinstance(err, MemoryError | torch.cuda.OutOfMemoryError):
        return True
    text = str(err).lower()
    return "out of memory" in text or "not enough memory" in text or "can't allocate" in text


def make_step(module: nn.Module, x: Tensor, dtype: str) -> Callable[[], None]:
    """One forward+backward: ``mean(module(x)^2).backward()``, bf16 under autocast."""
    autocast = (torch.autocast(device_type=x.device.type, dtype=torch.bfloat16)
                if dtype == "bf16" else contextlib.nullcontext())

    def step() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        with autocast:
            out = module(x)  # (B, N, D)
            out = out[0] if isinstance(out, tuple) else out
        out.float().square().mean().backward()

    return step


def measure(step: Callable[[], None], device: torch.device, repeats: int,
            budget_s: float, baseline_bytes: int = 0) -> tuple[float, int | None, int, str]:
    """Time ``step`` (median of timed repeats after one warm-up) and its peak memory.

    On CUDA the peak is ``max_memory_allocated`` during one step minus ``baseline_bytes``
    (what was allocated before the module was built: library workspaces and plan caches left
    by earlier configurations).

    Returns:
        ``(time_ms, peak_mem_bytes, repeats_done, status)``; status ``over_budget`` when the
        warm-up alone exceeded ``budget_s`` (its time is returned, nothing else is run).
    """
    _sync(device)
    t0 = time.perf_counter()
    step()
    _sync(device)
    warm = time.perf_counter() - t0
    if warm > budget_s:
        return 1e3 * warm, None, 0, "over_budget"
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        step()
        _sync(device)
        peak: int | None = int(torch.cuda.max_memory_allocated(device)) - baseline_bytes
    else:
        peak = cpu_rss_growth(step)
    n = max(1, min(repeats, int((budget_s - 2 * warm) / max(warm, 1e-9))))
    times = []
    for _ in range(n):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times), peak, n, "ok"


def _build(spec: MixerSpec, scope: str, n: int, hidden: int) -> tuple[nn.Module, str]:
    if scope == "layer":
        return _MixerOut(build_mixer(spec, n)), ""
    return build_small_model(spec, n, hidden)


def run_config(spec: MixerSpec, scope: str, dtype: str, n: int, *, device: torch.device,
               batch: int, hidden: int, repeats: int, budget_s: float) -> Row:
    """Measure one (mixer, scope, dtype, N); never raises."""
    row = Row(spec.label, scope, dtype, device_name(device), n, batch)
    module = x = None
    baseline = int(torch.cuda.memory_allocated(device)) if device.type == "cuda" else 0
    try:
        torch.manual_seed(0)
        module, what = _build(spec, scope, n, hidden)
        module = module.to(device).train()
        row.message = what
        x = torch.randn(batch, n, hidden, device=device, requires_grad=True)  # (B, N, D)
        time_ms, peak, done, status = measure(make_step(module, x, dtype), device, repeats,
                                              budget_s, baseline)
        row.time_ms, row.peak_mem_bytes, row.repeats, row.status = time_ms, peak, done, status
        if status == "over_budget":
            over = f"warm-up step took {time_ms / 1e3:.1f} s > budget {budget_s:g} s"
            row.message = "; ".join(filter(None, [row.message, over]))
    except ModuleNotFoundError as err:
        row.status, row.message = "error", f"import failed: {err}"
    except Exception as err:  # noqa: BLE001 -- one mixer's failure must not stop the run
        row.status = "oom" if _is_oom(err) else "error"
        row.message = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        if isinstance(err, ImportError | AttributeError) and "import" in str(err).lower():
            row.message = f"import failed: {row.message}"
    finally:
        del module, x
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def run_benchmark(specs: list[MixerSpec], *, lengths: Iterable[int], dtypes: Iterable[str],
                  scopes: Iterable[str], device: torch.device, batch: int, hidden: int,
                  repeats: int, budget_s: float,
                  progress: Callable[[Row], None] | None = None) -> list[Row]:
    """Measure every (scope, dtype, mixer, N); a mixer stops growing after oom/over_budget.

    A length is also skipped when the last two completed lengths predict (by their local
    slope, at least linear) a step longer than twice the budget.
    """
    rows: list[Row] = []
    lengths = sorted(set(lengths))
    for scope in scopes:
        for dtype in dtypes:
            for spec in specs:
                stopped = ""
                done: list[Row] = []
                for n in lengths:
                    if not stopped and len(done) >= 1:
                        predicted = _predict_ms(done, n)
                        if predicted > 2e3 * budget_s:
                            stopped = (f"predicted {predicted / 1e3:.0f} s per step > "
                                       f"2 x budget {budget_s:g} s")
                    if stopped:
                        row = Row(spec.label, scope, dtype, device_name(device), n, batch,
                                  status="skipped", message=stopped)
                    else:
                        row = run_config(spec, scope, dtype, n, device=device, batch=batch,
                                         hidden=hidden, repeats=repeats, budget_s=budget_s)
                        if row.status in STOP_STATUSES:
                            stopped = f"after {row.status} at N={n}"
                        elif row.status == "ok":
                            done.append(row)
                    rows.append(row)
                    if progress is not None:
                        progress(row)
    return rows


def _predict_ms(done: list[Row], n: int) -> float:
    last = done[-1]
    slope = 1.0
    if len(done) >= 2 and done[-2].time_ms and last.time_ms:
        slope = max(1.0, math.log(last.time_ms / done[-2].time_ms)
                    / math.log(last.N / done[-2].N))
    return float(last.time_ms or 0.0) * (n / last.N) ** slope


# --------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------


def fit_power_law(ns: Iterable[float], ts: Iterable[float]) -> tuple[float, float]:
    """Least-squares fit of ``log t = alpha * log N + c``; returns ``(alpha, c)``.

    Raises:
        ValueError: with fewer than two distinct lengths or a non-positive value.
    """
    n_arr, t_arr = np.asarray(list(ns), float), np.asarray(list(ts), float)
    if len(set(n_arr.tolist())) < 2:
        raise ValueError(f"need at least two distinct lengths to fit N^alpha, got {n_arr}")
    if (n_arr <= 0).any() or (t_arr <= 0).any():
        raise ValueError("lengths and times must be positive to fit N^alpha on log-log axes")
    alpha, c = np.polyfit(np.log(n_arr), np.log(t_arr), 1)
    return float(alpha), float(c)


def upper_half(ns: list[int]) -> list[int]:
    """The upper half of the sorted lengths (the middle one included for an odd count)."""
    ns = sorted(ns)
    return ns[len(ns) // 2:]


def alpha_upper_half(times: dict[int, float]) -> float | None:
    """Exponent fitted on the upper half of the measured lengths; None below two points."""
    top = upper_half(list(times))
    if len(top) < 2:
        return None
    return fit_power_law(top, [times[n] for n in top])[0]


def alpha_all(times: dict[int, float]) -> float | None:
    """Exponent fitted on every measured length; None below two points."""
    if len(times) < 2:
        return None
    ns = sorted(times)
    return fit_power_law(ns, [times[n] for n in ns])[0]


def crossover_length(times: dict[int, float], baseline: dict[int, float]) -> int | None:
    """Smallest N from which ``times`` beats ``baseline`` at every larger common N.

    ``baseline`` may hold ``inf`` where the baseline ran out of memory or time. Returns None
    when the mixer is not faster at the largest common length (or no length is common).
    """
    common = sorted(set(times) & set(baseline))
    result = None
    for n in reversed(common):
        if times[n] < baseline[n]:
            result = n
        else:
            break
    return result


def _series(rows: list[Row], scope: str, dtype: str, key: str = "time_ms") -> dict[
        str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for r in rows:
        if r.scope == scope and r.dtype == dtype and r.status == "ok":
            value = getattr(r, key)
            if value is not None:
                out.setdefault(r.mixer, {})[r.N] = float(value)
    return out


def summarize(rows: list[Row], scope: str, dtype: str) -> list[dict[str, Any]]:
    """Per mixer: times by N, alpha (upper half / all), ratio to softmax, crossover."""
    times = _series(rows, scope, dtype)
    base = dict(times.get(BASELINE, {}))
    for r in rows:  # the baseline's oom / over-budget lengths count as infinitely slow
        if (r.mixer == BASELINE and r.scope == scope and r.dtype == dtype
                and r.status in (*STOP_STATUSES, "skipped")):
            base[r.N] = math.inf
    mixers = list(dict.fromkeys(r.mixer for r in rows if r.scope == scope and r.dtype == dtype))
    out = []
    for mixer in mixers:
        t = times.get(mixer, {})
        common = [n for n in sorted(set(t) & set(base)) if math.isfinite(base[n])]
        n_ratio = common[-1] if common else None
        statuses = sorted({r.status for r in rows if r.mixer == mixer and r.scope == scope
                           and r.dtype == dtype and r.status != "ok"})
        out.append({
            "mixer": mixer, "times": t,
            "alpha_upper": alpha_upper_half(t), "alpha_all": alpha_all(t),
            "ratio_n": n_ratio, "ratio": None if n_ratio is None else t[n_ratio] / base[n_ratio],
            "crossover": None if mixer == BASELINE else crossover_length(t, base),
            "has_baseline": bool(base), "not_ok": statuses,
        })
    return out


def _crossover_text(s: dict[str, Any], lengths: list[int]) -> str:
    if s["mixer"] == BASELINE:
        return "baseline"
    if not s["has_baseline"] or not s["times"]:
        return "n/a"
    if s["crossover"] is None:
        return "never in range"
    first = min(n for n in s["times"] if n in lengths)
    return f"≤ {s['crossover']} (all measured)" if s["crossover"] == first else str(s["crossover"])


def verdict(claim: str, alpha: float | None) -> str:
    """Whether the fitted exponent matches the claimed class.

    Claimed ``O(n)`` / ``O(n log n)``: consistent when ``alpha <= 1.15``; claimed ``O(n^2)``:
    consistent when ``alpha >= 1.8``. ``alpha < 0.8`` is flagged as overhead-bound (the lengths
    are too short for the asymptotic class to show).
    """
    if not claim or alpha is None:
        return "—"
    quadratic = "^2" in claim or "²" in claim
    note = " (overhead-bound)" if alpha < 0.8 else ""
    if quadratic:
        return "consistent" if alpha >= 1.8 else f"below N^2 in range{note}"
    return f"consistent{note}" if alpha <= 1.15 else "GROWS FASTER than claimed"


def _f(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


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


def write_csv(rows: list[Row], path: Path) -> None:
    """Raw rows, one per (mixer, scope, dtype, N)."""
    import csv

    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for r in rows:
            d = asdict(r)
            d["time_ms"] = "" if r.time_ms is None else f"{r.time_ms:.3f}"
            d["peak_mem_bytes"] = "" if r.peak_mem_bytes is None else r.peak_mem_bytes
            writer.writerow({k: d[k] for k in CSV_COLUMNS})


def combos(rows: list[Row]) -> list[tuple[str, str]]:
    """(scope, dtype) pairs in first-seen order."""
    return list(dict.fromkeys((r.scope, r.dtype) for r in rows))


def table_rows(rows: list[Row], scope: str, dtype: str,
               claims: dict[str, str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the summary table of one (scope, dtype)."""
    claims = claims or {}
    lengths = sorted({r.N for r in rows if r.scope == scope and r.dtype == dtype})
    header = ["mixer", *[f"{n} ms" for n in lengths], "alpha (upper half)", "alpha (all N)",
              "claimed", "measured vs claim", "x softmax (N)", "faster than softmax from N",
              "not ok"]
    status = {(r.mixer, r.N): r.status for r in rows if r.scope == scope and r.dtype == dtype}
    body = []
    for s in summarize(rows, scope, dtype):
        cells = [s["mixer"]]
        for n in lengths:
            st = status.get((s["mixer"], n), "")
            cells.append(_f(s["times"].get(n), ".1f") if st == "ok" else st)
        ratio = ("—" if s["ratio"] is None else f"{s['ratio']:.2f} ({s['ratio_n']})")
        claim = claims.get(s["mixer"], "")
        cells += [_f(s["alpha_upper"], ".2f"), _f(s["alpha_all"], ".2f"), claim or "—",
                  verdict(claim, s["alpha_upper"]), ratio,
                  _crossover_text(s, lengths), ", ".join(s["not_ok"])]
        body.append(cells)
    return header, body


def ratio_rows(rows: list[Row], scope: str, dtype: str) -> tuple[list[str], list[list[str]]]:
    """Header and cells of ``time / time_softmax`` per mixer and N (both completed)."""
    times = _series(rows, scope, dtype)
    base = times.get(BASELINE, {})
    lengths = sorted({r.N for r in rows if r.scope == scope and r.dtype == dtype})
    body = [[m, *[f"{t[n] / base[n]:.2f}" if n in t and n in base else "—" for n in lengths]]
            for m, t in times.items()]
    return ["mixer", *[str(n) for n in lengths]], body


def _md_table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]


def write_markdown(rows: list[Row], path: Path, meta: dict[str, Any]) -> None:
    """``scaling.md``: per (scope, dtype) the time/alpha/crossover table, errors, provenance."""
    lines = [
        "# Scaling: forward+backward time and peak memory against sequence length N",
        "",
        f"Step: `mean(f(x)^2).backward()` on x of shape (batch={meta['batch']}, N, "
        f"hidden={meta['hidden']}), {meta['heads']} heads where the mixer has heads, no "
        "padding mask. Time: median of the timed repeats after one warm-up step. "
        "**alpha**: least-squares slope of log time against log N on the upper half of the "
        "lengths the mixer completed (and on all of them). **x softmax**: time divided by the "
        "softmax (SDPA) layer's at the largest length both completed. **faster from N**: the "
        "smallest measured N from which the mixer beats softmax at every larger measured N "
        "(softmax out of memory/time counts as slower). **measured vs claim**: the registry's "
        "claimed class against alpha (upper half): O(n)/O(n log n) are consistent at alpha <= "
        "1.15, O(n^2) at alpha >= 1.8; alpha < 0.8 means fixed overheads still dominate, so the "
        "lengths are too short to show the class. The table shows what was measured, not what "
        "the docstrings claim.",
        f"Layer scope: the mixer alone. Model scope: {meta['model']}.",
        f"Peak memory: {meta['memory']}.",
        "",
    ]
    for scope, dtype in combos(rows):
        lines += [f"## {scope}, {dtype}", ""]
        lines += _md_table(*table_rows(rows, scope, dtype, meta.get("claims"))) + [""]
        lines += [f"Time relative to the softmax layer at each N, {scope}, {dtype}:", ""]
        lines += _md_table(*ratio_rows(rows, scope, dtype)) + [""]
        lines += [f"Peak memory (MiB), {scope}, {dtype}:", ""]
        lengths = sorted({r.N for r in rows if r.scope == scope and r.dtype == dtype})
        mem = _series(rows, scope, dtype, "peak_mem_bytes")
        mixers = list(dict.fromkeys(r.mixer for r in rows if r.scope == scope and r.dtype == dtype))
        body = [[m, *[_f(mem.get(m, {}).get(n, None) and mem[m][n] / 2**20, ".1f")
                      for n in lengths]] for m in mixers]
        lines += _md_table(["mixer", *[str(n) for n in lengths]], body) + [""]
    bad = [r for r in rows if r.status not in ("ok", "skipped")]
    lines += ["## Errors, out-of-memory and over-budget configurations", ""]
    if bad:
        lines += _md_table(["mixer", "scope", "dtype", "N", "status", "message"],
                           [[r.mixer, r.scope, r.dtype, str(r.N), r.status, r.message[:200]]
                            for r in bad])
    else:
        lines.append("None.")
    lines += ["", "## Provenance", "", f"- command: `{meta['command']}`",
              f"- git commit: `{meta['git_commit']}`", f"- device: {meta['device']}",
              f"- torch: {meta['torch']}", f"- date: {meta['date']}",
              f"- repeats: {meta['repeats']}, per-config budget: {meta['budget']} s",
              f"- host load: {meta.get('load', 'n/a')}",
              "- raw rows: `scaling.csv`; plot: `scaling.png`", ""]
    path.write_text("\n".join(lines))


def plot(rows: list[Row], path: Path, title: str) -> None:
    """Log-log time and memory against N: one row of two panels per (scope, dtype)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullLocator

    pairs = combos(rows)
    mixers = list(dict.fromkeys(r.mixer for r in rows))
    tab20 = plt.get_cmap("tab20").colors
    order = [0, 2, 4, 6, 8, 10, 12, 16, 18, 1, 3, 5, 7, 9, 11, 13, 17, 19]  # no greys (14, 15)
    palette = [tab20[i] for i in order]
    styles = {m: {"color": "black" if m == BASELINE else palette[i % len(palette)],
                  "lw": 2.6 if m == BASELINE else 1.6,
                  "ls": ("-", "--", "-.", ":")[i % 4] if m != BASELINE else "-",
                  "marker": "os^vD<>ph*"[i % 10], "ms": 4}
              for i, m in enumerate(mixers)}
    fig, axes = plt.subplots(len(pairs), 2, figsize=(13, 4.6 * len(pairs)), dpi=110,
                             squeeze=False)
    for row_axes, (scope, dtype) in zip(axes, pairs):
        for ax, key, ylabel in ((row_axes[0], "time_ms", "forward+backward time (ms)"),
                                (row_axes[1], "peak_mem_bytes", "peak memory (MiB)")):
            series = _series(rows, scope, dtype, key)
            scale = 1.0 if key == "time_ms" else 1 / 2**20
            for m in mixers:
                if m in series and series[m]:
                    ns = sorted(series[m])
                    ax.plot(ns, [series[m][n] * scale for n in ns], label=m, **styles[m])
                    oom = [r.N for r in rows if r.mixer == m and r.scope == scope
                           and r.dtype == dtype and r.status == "oom"]
                    if oom and key == "time_ms":
                        ax.plot([oom[0]], [series[m][ns[-1]] * scale], marker="x", ms=10,
                                color=styles[m]["color"], ls="none")
            if not series:
                ax.text(0.5, 0.5, "n/a (not measured on this device)", ha="center",
                        va="center", transform=ax.transAxes)
            elif key == "time_ms":
                values = [v for ser in series.values() for v in ser.values()]
                _guides(ax, series)
                ax.set_ylim(min(values) / 1.5, max(values) * 1.5)
            ax.set_xscale("log", base=2)
            lengths = sorted({r.N for r in rows if r.scope == scope and r.dtype == dtype})
            ax.set_xticks(lengths, [str(n) for n in lengths], rotation=45 if len(lengths) > 6
                          else 0)
            ax.xaxis.set_minor_locator(NullLocator())
            if series:
                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(FuncFormatter(_minor_label))
            ax.set_xlabel("sequence length N (tokens)")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{'time' if key == 'time_ms' else 'memory'}: {scope}, {dtype}")
            ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.84, 0.97))
    fig.savefig(path)
    plt.close(fig)


def _minor_label(value: float, _pos: int) -> str:
    """Label minor log ticks 2 and 5 (x 10^k) only, in plain numbers."""
    if value <= 0:
        return ""
    lead = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return f"{value:g}" if round(lead) in (2, 5) and abs(lead - round(lead)) < 1e-6 else ""


def _guides(ax: Any, series: dict[str, dict[int, float]]) -> None:
    """Grey reference slopes N^1 and N^2 through the geometric middle of the data."""
    ns = sorted({n for s in series.values() for n in s})
    if len(ns) < 2:
        return
    ts = [t for s in series.values() for t in s.values()]
    mid_t = math.exp(statistics.fmean(math.log(t) for t in ts))
    n0 = ns[0]
    for power, label, ls in ((1, "slope 1 (∝ N)", "-."), (2, "slope 2 (∝ N²)", ":")):
        ys = [mid_t * (n / n0) ** power / (ns[-1] / n0) ** (power / 2) for n in ns]
        ax.plot(ns, ys, color="grey", lw=1.2, ls=ls, label=label)



def print_tables(rows: list[Row], claims: dict[str, str] | None = None) -> None:
    """The summary tables with rich (plain text when rich is missing)."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        for scope, dtype in combos(rows):
            header, body = table_rows(rows, scope, dtype, claims)
            print(f"{scope}, {dtype}\n" + "\n".join("\t".join(r) for r in [header, *body]))
        return
    console = Console(width=260)
    for scope, dtype in combos(rows):
        header, body = table_rows(rows, scope, dtype, claims)
        table = Table(title=f"scaling: {scope}, {dtype} (time in ms)")
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right")
        for cells in body:
            table.add_row(*cells)
        console.print(table)


def write_outputs(rows: list[Row], out: Path, meta: dict[str, Any]) -> list[Path]:
    """Write ``scaling.csv``, ``scaling.md`` and ``scaling.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "scaling.csv", out / "scaling.md", out / "scaling.png"]
    write_csv(rows, paths[0])
    write_markdown(rows, paths[1], meta)
    plot(rows, paths[2], f"{meta['device']}, batch {meta['batch']}, hidden {meta['hidden']}")
    return paths


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


MODEL_DESCRIPTIONS = {
    "build_classifier": "spectrans.models.build_classifier (encoder, 2 layers, hidden as "
                        "above, no dropout, mean pooling, 10 classes) on random token ids",
    "pre-norm stack": "two pre-norm blocks (LayerNorm, mixer, residual; LayerNorm, 4x GELU MLP, "
                      "residual) and a final LayerNorm, built in experiments/bench.py",
}


def model_description(rows: list[Row]) -> str:
    """What the model scope measured (from the rows' build notes)."""
    kinds = sorted({r.message.split(";")[0] for r in rows
                    if r.scope == "model" and r.message.split(";")[0] in MODEL_DESCRIPTIONS})
    return "; ".join(MODEL_DESCRIPTIONS[k] for k in kinds) or "not measured"


def _loadavg() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (defaults depend on the device)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="default: cuda when available")
    p.add_argument("--lengths", type=int, nargs="+", default=None,
                   help="default: 256..8192 on CPU, 256..65536 on CUDA (doubling)")
    p.add_argument("--dtypes", default="fp32,bf16", help="comma list of fp32, bf16")
    p.add_argument("--scopes", default="layer,model", help="comma list of layer, model")
    p.add_argument("--mixers", default=None, help="comma list of labels (default: all)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--repeats", type=int, default=None, help="default 3 on CPU, 10 on CUDA")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds per config (default 60 on CPU, 20 on CUDA)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default="results")
    p.add_argument("--quick", action="store_true",
                   help="lengths 256 512 1024, 2 repeats, layer scope, fp32")
    return p.parse_args(argv)


def _check_choices(values: list[str], allowed: Iterable[str], option: str) -> list[str]:
    allowed = list(allowed)
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"{option} got unknown value(s) {bad}; choose from {allowed}")
    return values


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the csv, markdown and plot."""
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was given but torch.cuda.is_available() is False; "
                         "use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    gpu = device.type == "cuda"
    lengths = args.lengths or list(GPU_LENGTHS if gpu else CPU_LENGTHS)
    dtypes = _check_choices(args.dtypes.split(","), ("fp32", "bf16"), "--dtypes")
    scopes = _check_choices(args.scopes.split(","), ("layer", "model"), "--scopes")
    repeats = args.repeats or (10 if gpu else 3)
    budget = args.budget or (20.0 if gpu else 60.0)
    if args.quick:
        lengths, repeats, scopes, dtypes = [256, 512, 1024], 2, ["layer"], ["fp32"]
    specs = default_specs(args.hidden, args.heads)
    if args.mixers:
        wanted = _check_choices(args.mixers.split(","), [s.label for s in specs], "--mixers")
        specs = [s for s in specs if s.label in wanted]
    if gpu:
        warm_libraries(device)
    else:
        pin_malloc_threshold()

    def progress(r: Row) -> None:
        t = "" if r.time_ms is None else f"{r.time_ms:9.1f} ms"
        print(f"{r.scope:5} {r.dtype:4} {r.mixer:14} N={r.N:<6} {r.status:11} {t} {r.message}",
              flush=True)

    load_before = _loadavg()
    rows = run_benchmark(specs, lengths=lengths, dtypes=dtypes, scopes=scopes, device=device,
                         batch=args.batch, hidden=args.hidden, repeats=repeats, budget_s=budget,
                         progress=progress)
    meta = {
        "command": " ".join(["python -m experiments.bench",
                             *(sys.argv[1:] if argv is None else argv)]),
        "git_commit": git_commit(), "device": device_name(device), "torch": torch.__version__,
        "load": f"{load_before} before, {_loadavg()} after (1-minute load average, "
                f"{os.cpu_count()} logical CPUs)",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "batch": args.batch,
        "hidden": args.hidden, "heads": args.heads, "repeats": repeats, "budget": budget,
        "model": model_description(rows), "claims": {sp.label: sp.claim for sp in specs},
        "memory": ("torch.cuda.max_memory_allocated over one step (parameters, input and "
                   "activations)" if gpu else
                   "growth of the process's peak resident set during one step (VmHWM after "
                   "clear_refs minus VmRSS before; allocator effects included), n/a where "
                   "/proc does not allow it"),
    }
    print_tables(rows, meta["claims"])
    for path in write_outputs(rows, Path(args.out), meta):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
