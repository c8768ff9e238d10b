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

``scaling.csv`` and ``scaling.md`` are rewritten (atomically) after every finished mixer, so a
run stopped part-way keeps what it measured; ``scaling.png`` is drawn when the run ends.

A length that runs out of memory (``oom``) or over the per-config time budget
(``over_budget``) stops that mixer from growing (``skipped`` after); any other exception is
recorded as ``error`` with its message, and the run goes on.

This module measures and writes ``scaling.csv``; the fits, verdicts, tables and plot
live in :mod:`experiments.bench_report` (re-exported here).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

# Analysis and presentation live in bench_report; names not used here are re-exported.
from experiments.bench_report import (  # noqa: F401
    BASELINE,
    STOP_STATUSES,
    Row,
    alpha_all,
    alpha_upper_half,
    combos,
    crossover_length,
    fit_power_law,
    plot,
    print_tables,
    ratio_rows,
    summarize,
    table_rows,
    upper_half,
    verdict,
    write_markdown,
)
from experiments.run_record import git_commit
from spectrans.layers.blocks import PreNormBlock

LST_TRANSFORMS: tuple[str, ...] = ("dct", "dst", "hadamard", "wavelet", "mixed")
CPU_LENGTHS: tuple[int, ...] = tuple(2**k for k in range(8, 14))  # 256 .. 8192
GPU_LENGTHS: tuple[int, ...] = tuple(2**k for k in range(8, 17))  # 256 .. 65536
CSV_COLUMNS = (
    "mixer",
    "scope",
    "dtype",
    "device",
    "N",
    "batch",
    "time_ms",
    "peak_mem_bytes",
    "status",
    "repeats",
    "message",
)


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
        claim = entry.complexity
        config: dict[str, Any] = {"name": name, "hidden_dim": hidden}
        if "num_heads" in fields:
            config["num_heads"] = heads
        if name == "lst":
            specs += [
                MixerSpec(f"lst-{t}", {**config, "transform_type": t}, claim=claim)
                for t in LST_TRANSFORMS
            ]
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

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # x: (B, N, D)
        """The mixer's output without weights (a factory's mixer may take no mask)."""
        out = self.mixer(x) if mask is None else self.mixer(x, mask)
        return out[0] if isinstance(out, tuple) else out  # (B, N, D)


def build_small_model(
    spec: MixerSpec, n: int, hidden: int, num_blocks: int = 2
) -> tuple[nn.Module, str]:
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
    blocks = [
        PreNormBlock(_MixerOut(build_mixer(spec, n)), hidden, 4 * hidden) for _ in range(num_blocks)
    ]
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
                x.device
            )  # (B, N)
        return self.model(input_ids=self._ids)  # (B, C)


def _classifier(spec: MixerSpec, n: int, hidden: int, num_blocks: int) -> nn.Module:
    from spectrans.config.layers import parse_layer_config
    from spectrans.config.models import EncoderModelConfig
    from spectrans.models import build_classifier

    mixer_config = dict(spec.config)
    from spectrans import registry

    if "max_sequence_length" in registry.get_entry(mixer_config["name"]).config_class.model_fields:
        mixer_config["max_sequence_length"] = n
    model_cfg = EncoderModelConfig(
        hidden_dim=hidden, num_layers=num_blocks, dropout=0.0, max_sequence_length=n, pooling="mean"
    )
    model = build_classifier(
        model_cfg,
        parse_layer_config(mixer_config),
        vocab_size=256,
        num_classes=10,
        max_length=n,
        pair=False,
    )
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
    autocast = (
        torch.autocast(device_type=x.device.type, dtype=torch.bfloat16)
        if dtype == "bf16"
        else contextlib.nullcontext()
    )

    def step() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        with autocast:
            out = module(x)  # (B, N, D)
            out = out[0] if isinstance(out, tuple) else out
        out.float().square().mean().backward()

    return step


def measure(
    step: Callable[[], None],
    device: torch.device,
    repeats: int,
    budget_s: float,
    baseline_bytes: int = 0,
) -> tuple[float, int | None, int, str]:
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


def run_config(
    spec: MixerSpec,
    scope: str,
    dtype: str,
    n: int,
    *,
    device: torch.device,
    batch: int,
    hidden: int,
    repeats: int,
    budget_s: float,
) -> Row:
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
        time_ms, peak, done, status = measure(
            make_step(module, x, dtype), device, repeats, budget_s, baseline
        )
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


def run_benchmark(
    specs: list[MixerSpec],
    *,
    lengths: Iterable[int],
    dtypes: Iterable[str],
    scopes: Iterable[str],
    device: torch.device,
    batch: int,
    hidden: int,
    repeats: int,
    budget_s: float,
    progress: Callable[[Row], None] | None = None,
    finished: Callable[[list[Row]], None] | None = None,
) -> list[Row]:
    """Measure every (scope, dtype, mixer, N); a mixer stops growing after oom/over_budget.

    A length is also skipped when the last two completed lengths predict (by their local
    slope, at least linear) a step longer than twice the budget. ``progress`` gets each row,
    ``finished`` the rows so far after each (scope, dtype, mixer).
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
                            stopped = (
                                f"predicted {predicted / 1e3:.0f} s per step > "
                                f"2 x budget {budget_s:g} s"
                            )
                    if stopped:
                        row = Row(
                            spec.label,
                            scope,
                            dtype,
                            device_name(device),
                            n,
                            batch,
                            status="skipped",
                            message=stopped,
                        )
                    else:
                        row = run_config(
                            spec,
                            scope,
                            dtype,
                            n,
                            device=device,
                            batch=batch,
                            hidden=hidden,
                            repeats=repeats,
                            budget_s=budget_s,
                        )
                        if row.status in STOP_STATUSES:
                            stopped = f"after {row.status} at N={n}"
                        elif row.status == "ok":
                            done.append(row)
                    rows.append(row)
                    if progress is not None:
                        progress(row)
                if finished is not None:
                    finished(rows)
    return rows


def _predict_ms(done: list[Row], n: int) -> float:
    last = done[-1]
    slope = 1.0
    if len(done) >= 2 and done[-2].time_ms and last.time_ms:
        slope = max(1.0, math.log(last.time_ms / done[-2].time_ms) / math.log(last.N / done[-2].N))
    return float(last.time_ms or 0.0) * (n / last.N) ** slope


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


def write_tables(rows: list[Row], out: Path, meta: dict[str, Any]) -> list[Path]:
    """Write ``scaling.csv`` and ``scaling.md`` into ``out``, each by renaming a full copy."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "scaling.csv", out / "scaling.md"]
    for path, write in zip(
        paths, (write_csv, lambda r, p: write_markdown(r, p, meta)), strict=True
    ):
        tmp = path.with_name(path.name + ".tmp")
        write(rows, tmp)
        os.replace(tmp, path)
    return paths


def write_outputs(rows: list[Row], out: Path, meta: dict[str, Any]) -> list[Path]:
    """Write ``scaling.csv``, ``scaling.md`` and ``scaling.png`` into ``out``."""
    paths = [*write_tables(rows, out, meta), out / "scaling.png"]
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
    kinds = sorted(
        {
            r.message.split(";")[0]
            for r in rows
            if r.scope == "model" and r.message.split(";")[0] in MODEL_DESCRIPTIONS
        }
    )
    return "; ".join(MODEL_DESCRIPTIONS[k] for k in kinds) or "not measured"


def _loadavg() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (defaults depend on the device)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available"
    )
    p.add_argument(
        "--lengths",
        type=int,
        nargs="+",
        default=None,
        help="default: 256..8192 on CPU, 256..65536 on CUDA (doubling)",
    )
    p.add_argument("--dtypes", default="fp32,bf16", help="comma list of fp32, bf16")
    p.add_argument("--scopes", default="layer,model", help="comma list of layer, model")
    p.add_argument("--mixers", default=None, help="comma list of labels (default: all)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--repeats", type=int, default=None, help="default 3 on CPU, 10 on CUDA")
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds per config (default 60 on CPU, 20 on CUDA)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default="results")
    p.add_argument(
        "--quick", action="store_true", help="lengths 256 512 1024, 2 repeats, layer scope, fp32"
    )
    return p.parse_args(argv)


class BenchUsageError(ValueError):
    """A bad command-line value; ``python -m experiments.bench`` prints it and exits 2."""


def _check_choices(values: list[str], allowed: Iterable[str], option: str) -> list[str]:
    allowed = list(allowed)
    bad = [v for v in values if v not in allowed]
    if bad:
        raise BenchUsageError(f"{option} got unknown value(s) {bad}; choose from {allowed}")
    return values


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the csv, markdown and plot."""
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchUsageError(
            "--device cuda was given but torch.cuda.is_available() is False; use --device cpu"
        )
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
        print(
            f"{r.scope:5} {r.dtype:4} {r.mixer:14} N={r.N:<6} {r.status:11} {t} {r.message}",
            flush=True,
        )

    load_before = _loadavg()
    out = Path(args.out)

    def run_meta(rows: list[Row]) -> dict[str, Any]:
        return {
            "command": " ".join(
                ["python -m experiments.bench", *(sys.argv[1:] if argv is None else argv)]
            ),
            "git_commit": git_commit(short=True),
            "device": device_name(device),
            "torch": torch.__version__,
            "load": f"{load_before} before, {_loadavg()} after (1-minute load average, "
            f"{os.cpu_count()} logical CPUs)",
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "batch": args.batch,
            "hidden": args.hidden,
            "heads": args.heads,
            "repeats": repeats,
            "budget": budget,
            "model": model_description(rows),
            "claims": {sp.label: sp.claim for sp in specs},
            "memory": (
                "torch.cuda.max_memory_allocated over one step (parameters, input and activations)"
                if gpu
                else "growth of the process's peak resident set during one step (VmHWM after "
                "clear_refs minus VmRSS before; allocator effects included), n/a where "
                "/proc does not allow it"
            ),
        }

    total = len(scopes) * len(dtypes) * len(specs)
    finished = 0
    (out / "scaling.png").unlink(missing_ok=True)  # drawn again when the run ends

    def checkpoint(rows: list[Row]) -> None:
        nonlocal finished
        finished += 1
        if finished < total:
            partial = (
                f"Partial: {finished} of {total} (scope, dtype, mixer) series finished (the "
                "run is going on or stopped); scaling.png is drawn when the run ends."
            )
            write_tables(rows, out, {**run_meta(rows), "partial": partial})

    rows = run_benchmark(
        specs,
        lengths=lengths,
        dtypes=dtypes,
        scopes=scopes,
        device=device,
        batch=args.batch,
        hidden=args.hidden,
        repeats=repeats,
        budget_s=budget,
        progress=progress,
        finished=checkpoint,
    )
    meta = run_meta(rows)
    print_tables(rows, meta["claims"])
    for path in write_outputs(rows, out, meta):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BenchUsageError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
