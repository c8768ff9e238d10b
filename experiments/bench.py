"""Scaling benchmark: forward+backward time and peak memory of every token mixer against N.

Usage::

    python -m experiments.bench [--device cpu|cuda] [--lengths 256 512 ...] [--dtypes fp32,bf16]
        [--batch 4] [--hidden 256] [--heads 4] [--repeats 3] [--scopes layer,model]
        [--mixers softmax,lst-dct,...] [--budget 60] [--timing eager|graph|compiled]
        [--out results/] [--quick]

For every registered mixer (``lst`` expanded over its transforms), one *layer* and one small
*model* (two pre-norm blocks) are timed at each sequence length N: one warm-up step (two when
the first, which may compile kernels or plan FFTs, is over the budget but within twice it), one
step for memory, then ``repeats`` timed steps (device-synchronised); the reported time is their
median. A step is ``f(x).backward(g)`` on ``x ~ N(0, 1)`` of shape ``(batch, N, hidden)``
with no padding mask and a fixed ``g ~ N(0, 1)`` of the output's shape and dtype
(:class:`~experiments.timing.UpstreamGradient`: no loss kernels in the step), under
``torch.autocast(bfloat16)`` for ``bf16``.

Timing (``--timing``): ``eager`` (default) launches each step from Python with the device
synchronised before and after, so at small N on a GPU the figure is mostly the host's dispatch
and kernel-launch time. ``graph`` (CUDA only) keeps the eager warm-up and memory steps, then
captures the whole forward+backward step into one CUDA graph
(:func:`~experiments.timing.capture_graph`, autocast without its weight cache) and times the
graph's replays, so the figure is the device's time for the operator. A mixer whose step
cannot be captured (one that synchronises with the host, say) is recorded as ``error`` with
``CUDA graph capture failed: ...``. ``compiled`` (CUDA only) does the same with the module
compiled by ``torch.compile`` (default mode, a fresh Dynamo per configuration,
:func:`~experiments.fresh_compile.compile_fresh`): two untimed steps compile it first, so the
figure excludes compilation, and Inductor's fusions of the elementwise work around the
mixer's matrix products and FFTs count, as they do in a compiled training step. The memory
step then runs the compiled module too.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` over the memory step (parameters,
input and activations); on CPU the growth of the process's resident set during that step
(``VmHWM`` after ``/proc/self/clear_refs`` minus ``VmRSS`` before, with glibc's dynamic mmap
threshold pinned so freed tensors go back to the OS), or ``n/a`` where that is unavailable.

Scaling exponent: ``log t = alpha * log N + c`` fitted by least squares on the upper half of
the lengths a mixer completed (and, for reference, on all of them). Crossover: the smallest
measured N from which the mixer is faster than the softmax (SDPA) layer at every larger
measured N (softmax running out of memory or time counts as slower).

Anchor: ``sdpa-anchor`` (:class:`~experiments.bench_specs.SDPAAnchor`, first in the default
list) is plain PyTorch attention, the q, k, v (one fused ``nn.Linear``) and output
projections around one ``scaled_dot_product_attention`` call, timed in the same run; the
report gives the softmax layer's time divided by it at each N.

``scaling.csv`` and ``scaling.md`` are rewritten (atomically) after every finished mixer, so a
run stopped part-way keeps what it measured; ``scaling.png`` is drawn when the run ends.

A length that runs out of memory (``oom``) or over the per-config time budget
(``over_budget``) stops that mixer from growing (``skipped`` after); any other exception is
recorded as ``error`` with its message, and the run goes on.

This module is the command line and the run loop. The mixers and the modules built around
them live in :mod:`experiments.bench_specs`, the timing and memory helpers in
:mod:`experiments.timing`, the files in :mod:`experiments.bench_write`, and the fits,
verdicts, tables and plot in :mod:`experiments.bench_report` (all re-exported here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

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
from experiments.bench_specs import (  # noqa: F401
    LST_TRANSFORMS,
    MixerSpec,
    SDPAAnchor,
    add_recompute_option,
    build,
    build_mixer,
    build_small_model,
    default_specs,
    set_recompute,
)
from experiments.bench_write import (  # noqa: F401
    CSV_COLUMNS,
    MODEL_DESCRIPTIONS,
    model_description,
    write_csv,
    write_outputs,
    write_tables,
)
from experiments.fresh_compile import compile_fresh
from experiments.kernel_table import kernel_table
from experiments.portable import portable_argument
from experiments.run_record import git_commit
from experiments.timing import (  # noqa: F401
    GRAPH_TIMINGS,
    TIMINGS,
    GraphCaptureError,
    cpu_rss_growth,
    device_name,
    first_line,
    is_oom,
    make_step,
    measure,
    pin_malloc_threshold,
    warm_libraries,
)

CPU_LENGTHS: tuple[int, ...] = tuple(2**k for k in range(8, 14))  # 256 .. 8192
GPU_LENGTHS: tuple[int, ...] = tuple(2**k for k in range(8, 17))  # 256 .. 65536


# --------------------------------------------------------------------------------------------
# Run loop
# --------------------------------------------------------------------------------------------


def _failure(row: Row, err: Exception) -> None:
    """Record an exception on ``row``: ``oom``, or ``error`` with its first line."""
    row.status = "oom" if is_oom(err) else "error"
    row.message = first_line(err)
    if isinstance(err, ImportError | AttributeError) and "import" in str(err).lower():
        row.message = f"import failed: {row.message}"


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
    timing: str = "eager",
    kernels: int = 0,
) -> Row:
    """Measure one (mixer, scope, dtype, N); never raises.

    With ``kernels`` > 0 a measured step is then profiled (three more steps, launched from
    Python: the kernels a graph replay runs, without the replay) and the ``kernels`` costliest
    kernels go to ``row.kernels`` (:func:`experiments.kernel_table.kernel_table`).

    With ``timing`` ``graph`` or ``compiled`` the timed repeats are replays of one CUDA graph
    of the step (:func:`~experiments.timing.measure`); a failed capture is an ``error`` row
    whose message starts ``CUDA graph capture failed:`` (``oom`` when the capture ran out of
    memory). With ``compiled`` the module is compiled first and two untimed steps compile it.
    """
    graph, compiled = timing in GRAPH_TIMINGS, timing == "compiled"
    row = Row(spec.label, scope, dtype, device_name(device), n, batch)
    module = x = step = None
    baseline = int(torch.cuda.memory_allocated(device)) if device.type == "cuda" else 0
    try:
        torch.manual_seed(0)
        module, what = build(spec, scope, n, hidden)
        module = module.to(device).train()
        row.message = what
        x = torch.randn(batch, n, hidden, device=device, requires_grad=True)  # (B, N, D)
        if compiled:
            module = compile_fresh(module)
        step = make_step(module, x, dtype, autocast_cache=False if graph else None)
        if compiled:
            for _ in range(2):  # compilation, then the first compiled step's one-time costs
                step()
        time_ms, peak, done, status = measure(
            step, device, repeats, budget_s, baseline, graph=graph
        )
        row.time_ms, row.peak_mem_bytes, row.repeats, row.status = time_ms, peak, done, status
        if kernels > 0 and status == "ok":
            row.kernels = kernel_table(step, kernels, device=device)
        if status == "over_budget":
            over = f"warm-up step took {time_ms / 1e3:.1f} s > budget {budget_s:g} s"
            row.message = "; ".join(filter(None, [row.message, over]))
    except ModuleNotFoundError as err:
        row.status, row.message = "error", f"import failed: {err}"
    except GraphCaptureError as err:
        row.status, row.message = ("oom" if is_oom(err) else "error"), str(err)
    except Exception as err:  # noqa: BLE001 -- one mixer's failure must not stop the run
        _failure(row, err)
    finally:
        del module, x, step
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def _predict_ms(done: list[Row], n: int) -> float:
    """Time at ``n`` extrapolated from the last two rows' local slope (at least linear)."""
    last = done[-1]
    slope = 1.0
    if len(done) >= 2 and done[-2].time_ms and last.time_ms:
        slope = max(1.0, math.log(last.time_ms / done[-2].time_ms) / math.log(last.N / done[-2].N))
    return float(last.time_ms or 0.0) * (n / last.N) ** slope


def _run_series(
    spec: MixerSpec,
    scope: str,
    dtype: str,
    lengths: list[int],
    budget_s: float,
    config: dict[str, Any],
    progress: Callable[[Row], None] | None,
) -> list[Row]:
    """One mixer over the lengths; it stops growing after oom/over_budget or a slow forecast."""
    rows: list[Row] = []
    stopped = ""
    done: list[Row] = []
    for n in lengths:
        if not stopped and len(done) >= 1:
            predicted = _predict_ms(done, n)
            if predicted > 2e3 * budget_s:
                stopped = f"predicted {predicted / 1e3:.0f} s per step > 2 x budget {budget_s:g} s"
        if stopped:
            row = Row(
                spec.label,
                scope,
                dtype,
                device_name(config["device"]),
                n,
                config["batch"],
                status="skipped",
                message=stopped,
            )
        else:
            row = run_config(spec, scope, dtype, n, budget_s=budget_s, **config)
            if row.status in STOP_STATUSES:
                stopped = f"after {row.status} at N={n}"
            elif row.status == "ok":
                done.append(row)
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows


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
    timing: str = "eager",
    kernels: int = 0,
) -> list[Row]:
    """Measure every (scope, dtype, mixer, N); a mixer stops growing after oom/over_budget.

    A length is also skipped when the last two completed lengths predict (by their local
    slope, at least linear) a step longer than twice the budget. ``progress`` gets each row,
    ``finished`` the rows so far after each (scope, dtype, mixer). ``timing`` is ``eager``
    (timed steps), ``graph`` (timed replays of one CUDA graph per configuration) or
    ``compiled`` (the same of the module compiled by ``torch.compile``); ``kernels`` > 0 adds
    each measured step's kernel table of that many rows (:func:`run_config`).
    """
    if timing not in TIMINGS:
        raise ValueError(f"timing must be one of {TIMINGS}, got {timing!r}")
    rows: list[Row] = []
    ordered = sorted(set(lengths))
    config = {
        "device": device,
        "batch": batch,
        "hidden": hidden,
        "repeats": repeats,
        "timing": timing,
        "kernels": kernels,
    }
    for scope in scopes:
        for dtype in dtypes:
            for spec in specs:
                rows += _run_series(spec, scope, dtype, ordered, budget_s, config, progress)
                if finished is not None:
                    finished(rows)
    return rows


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


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
    p.add_argument(
        "--timing",
        choices=TIMINGS,
        default="eager",
        help="eager: time steps launched from Python (default); graph: time replays of one "
        "CUDA graph of the forward+backward step (device time, CUDA only); compiled: the same "
        "of the module compiled by torch.compile (compilation excluded, CUDA only)",
    )
    p.add_argument(
        "--kernels",
        type=int,
        default=0,
        metavar="ROWS",
        help="after each measured configuration, profile three steps and write the ROWS "
        "costliest kernels (device time on CUDA, operators' host time on the CPU) to "
        "kernels.md (default 0: off)",
    )
    add_recompute_option(p)
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


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """Device, lengths, dtypes, scopes, repeats, budget, specs and timing from the options."""
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchUsageError(
            "--device cuda was given but torch.cuda.is_available() is False; use --device cpu"
        )
    if args.timing in GRAPH_TIMINGS and device.type != "cuda":
        raise BenchUsageError(
            f"--timing {args.timing} needs --device cuda, since CUDA graphs only replay on a "
            "GPU; use --timing eager on the CPU"
        )
    if args.kernels < 0:
        raise BenchUsageError(f"--kernels must be 0 (off) or a number of rows, got {args.kernels}")
    if args.threads:
        torch.set_num_threads(args.threads)
    set_recompute(args.recompute)
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
    return {
        "device": device,
        "lengths": lengths,
        "dtypes": dtypes,
        "scopes": scopes,
        "repeats": repeats,
        "budget": budget,
        "specs": specs,
        "timing": args.timing,
        "kernels": args.kernels,
    }


def _progress(r: Row) -> None:
    t = "" if r.time_ms is None else f"{r.time_ms:9.1f} ms"
    print(
        f"{r.scope:5} {r.dtype:4} {r.mixer:14} N={r.N:<6} {r.status:11} {t} {r.message}",
        flush=True,
    )


def _run_meta(
    rows: list[Row], args: argparse.Namespace, s: dict[str, Any], command: str, load: str
) -> dict[str, Any]:
    """What ``scaling.md`` names: command, commit, machine, load, settings, claims."""
    gpu = s["device"].type == "cuda"
    return {
        "command": command,
        "git_commit": git_commit(short=True),
        "device": device_name(s["device"]),
        "torch": torch.__version__,
        "load": f"{load} before, {_loadavg()} after (1-minute load average, "
        f"{os.cpu_count()} logical CPUs)",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "batch": args.batch,
        "hidden": args.hidden,
        "heads": args.heads,
        "repeats": s["repeats"],
        "budget": s["budget"],
        "timing": s["timing"],
        "model": model_description(rows),
        "claims": {sp.label: sp.claim for sp in s["specs"]},
        "memory": (
            "torch.cuda.max_memory_allocated over one step (parameters, input and activations)"
            if gpu
            else "growth of the process's peak resident set during one step (VmHWM after "
            "clear_refs minus VmRSS before; allocator effects included), n/a where "
            "/proc does not allow it"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the csv, markdown and plot."""
    args = parse_args(argv)
    s = _settings(args)
    if s["device"].type == "cuda":
        warm_libraries(s["device"])
    else:
        pin_malloc_threshold()
    words = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m experiments.bench", *map(portable_argument, words)])
    load_before = _loadavg()
    out = Path(args.out)
    total = len(s["scopes"]) * len(s["dtypes"]) * len(s["specs"])
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
            meta = _run_meta(rows, args, s, command, load_before)
            write_tables(rows, out, {**meta, "partial": partial})

    rows = run_benchmark(
        s["specs"],
        lengths=s["lengths"],
        dtypes=s["dtypes"],
        scopes=s["scopes"],
        device=s["device"],
        batch=args.batch,
        hidden=args.hidden,
        repeats=s["repeats"],
        budget_s=s["budget"],
        progress=_progress,
        finished=checkpoint,
        timing=s["timing"],
        kernels=s["kernels"],
    )
    meta = _run_meta(rows, args, s, command, load_before)
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
