"""Training-step benchmark: the LRA-config step of every mixer next to a plain-PyTorch encoder.

Usage::

    python -m experiments.bench_step [--tasks listops,text,image,pathfinder]
        [--mixers softmax,lst-dct,...] [--device auto|cpu|cuda] [--dtype bf16|fp32]
        [--steps 20] [--warmup 5] [--windows 3] [--compile none|auto|all] [--batch B] [--max-len N]
        [--time-budget SECONDS] [--recompute auto|on|off] [--mixing-path auto|PATH,...]
        [--override KEY=VALUE ...] [--triton-kernels] [--hashed-dropout] [--pad-segments S]
        [--logit-unroll W] [--ab hashed-dropout|logit-unroll] [--out results]

Mixers (:func:`default_mixers`): every preset variant of ``scripts/make_presets.py``'s
``VARIANTS`` (``lst-dct``, ``lra-performer``, ...) and every other registered mixer
(``kernel``, ``global_filter``, ...). For each task and mixer the model of the LRA preset
``conf/experiment/lra/<mixer>-<task>.yaml`` is built exactly as ``train.py`` builds it (a
registered mixer without a preset: a preset with no attention keys, ``attention=<mixer>`` and
the keys ``make_presets.attention_node`` gives it), and one training step is timed: forward
on random tokens of the task's shape (padded and masked as training does: variable-length
tasks get lengths drawn from ``[N/4, N]`` and their key mask; Pathfinder and Path-X, whose
presets mask black pixels (``task.mask=lra_nonzero``), zero tokens at the images' share of
black pixels and their mask; other images carry no mask), cross-entropy on random labels,
backward, and the preset's optimizer (fused AdamW on CUDA) stepping. ``bf16`` runs the model under
``torch.autocast(bfloat16)`` (what ``trainer.precision=bf16-mixed`` does). After ``warmup``
untimed steps (compilation included), ``windows`` windows of ``steps`` steps are timed back to
back, each with one device synchronisation at each end: ``ms_per_step`` is the median of the
windows' means (the note lists each window's, so a row says how much it moved within the run),
``tokens_per_s = B * N`` over it, ``peak_mem_bytes`` the CUDA allocator's peak over the timed
steps (CPU: ``n/a``, empty; a compiled row under CUDA graphs reports its eager step's peak, as
graph memory pools are reserved while recording, before the first window opens).

``--compile-mode``: ``reduce-overhead`` (default) compiles with CUDA graphs, each step then
replays its forward and backward graphs; ``default`` launches the compiled kernels one by one.
The compiled anchor uses the same mode. The anchor has no dropout and no mask.

Anchor: a plain-PyTorch pre-norm encoder of the same shape (embedding + learned positions,
``L`` blocks of LayerNorm, fused q/k/v projection, SDPA, output projection, LayerNorm, GELU
MLP; head width rounded up to a multiple of 8), timed eager and under ``torch.compile`` in
the same run (``anchor_eager_ms``, ``anchor_compiled_ms``).

``path``: the LST mixing path the model takes at this length (``gemm``, ``factored``,
``dense`` or ``fast``), and for softmax layers given a key mask whether they attend on
flash's variable-length kernel (``segments``) or SDPA with the mask (``masked sdpa``); empty
for other mixers.

``--compile``: ``none`` times every mixer eager; ``all`` times every mixer compiled
(``torch.compile`` of the whole model); ``auto`` times both and keeps the faster (the
``compile`` column says which). It applies to the tasks of ``--compile-tasks`` (default
``pathfinder``, the task with the most protocol steps); other tasks run eager (compiling
every mixer of every task takes longer than the rest of the run). Compiled figures exclude
compile time (it falls in warm-up). Each model is compiled from a reset Dynamo
(:func:`experiments.fresh_compile.compile_fresh`: the models share the encoder's code, which
Dynamo otherwise stops compiling after eight of them), and a row that reaches Dynamo's
recompile limit fails instead of being timed eager.

``note``: the mode timed (``eager``, ``compiled``; ``auto: eager 3.10 ms, compiled 2.50 ms``
with both times), each mode's windows when there are several (``compiled 2.50 ms (windows
2.48/2.50/2.61)``), why a task outside ``--compile-tasks`` ran eager, and the options that made
the step differ from the preset's (:func:`step_options`: overrides, Triton kernels, hashed
dropout, recompute), so such a row is never read as the preset's own.

``--recompute``: the backward of the LST, feature-map and S4D layers (``recompute_mixing``,
:func:`experiments.bench_specs.set_recompute`): ``auto`` is the layers' default (keep the
intermediates), ``on`` rebuilds the mixing from q, k and v in eager rows, ``off`` keeps.
Compiled rows never rebuild.

``--mixing-path``: ``auto`` (default) lets each layer choose its path (the ``path`` column
says which it took); a comma list of path names (``auto`` and the values of each layer's
``mixing_path`` annotation: ``fft``, ``gemm``, ``folded``, ``blocks``, ...) times each mixer
once per name, the name forced on every layer that offers it
(:func:`experiments.bench_step_setup.force_mixing_path`), so one run times the same step on
several paths beside one anchor; a mixer with no such path is an error row.

``--override``: a Hydra override added to every preset and to the softmax preset the anchor
takes its shape from (repeatable), e.g. ``model.dropout=0`` and ``model.attention_dropout=0`` to
time the presets without the dropout the anchor lacks. ``--triton-kernels`` and
``--hashed-dropout`` switch on, for the whole run, code paths that are off by default
(:func:`use_triton_kernels`; :data:`spectrans.layers.dropout.HASHED_MASKS_WHEN_COMPILED`:
dropout masks of compiled steps from an integer hash instead of Philox). ``--pad-segments S``
sets :data:`spectrans.layers.attention.key_padding.PAD_SEGMENTS` for the run (0: padded
queries of the key-padding softmax path attend to no key). ``--logit-unroll W`` sets
:data:`spectrans.layers.attention.favor_contract.UNROLLED_LOGITS_MAX_WIDTH` (FAVOR+ feature
logits of heads up to ``W`` wide as broadcast products in compiled steps).

``--ab SWITCH`` (``hashed-dropout`` or ``logit-unroll``; needs ``--compile all``) times each
mixer's compiled step with the switch off and on in one process, windows of the two sides
interleaved (:mod:`experiments.bench_step_ab`), and writes two rows per mixer whose notes say
which side they are: the way to decide a switch worth less than one row moves between runs.

``--time-budget``: once this many seconds have passed since the start, the rows not yet
begun are not run (status ``not run: time budget``); a row under way finishes.

Writes ``<out>/train_step.csv`` (:data:`CSV_COLUMNS`) and ``<out>/train_step.md``, both
rewritten (atomically) after every row, so a run stopped part-way leaves every finished row.

This module is the command line and the run loop. Presets, models and batches live in
:mod:`experiments.bench_step_setup`, the step and its timing in :mod:`experiments.timing`,
the files in :mod:`experiments.bench_step_report` (all re-exported here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from experiments.bench_specs import (
    add_hashed_dropout_option,
    add_logit_unroll_option,
    add_pad_segments_option,
    add_recompute_option,
    set_logit_unroll,
    set_pad_segments,
    set_recompute,
    use_hashed_dropout,
)
from experiments.bench_step_ab import AB_SWITCHES, time_ab
from experiments.bench_step_report import (  # noqa: F401
    CSV_COLUMNS,
    NOT_RUN,
    StepRow,
    _round,
    _row_line,
    write_csv,
    write_markdown,
)
from experiments.bench_step_setup import (  # noqa: F401
    BENCH_TASKS,
    ROOT,
    AnchorEncoder,
    Setup,
    _presets,
    anchor_for,
    anchor_ids,
    default_mixers,
    force_mixing_path,
    load_setup,
    mixing_path,
    preset_overrides,
    random_batch,
    train_step,
)
from experiments.fresh_compile import fail_on_recompile_limit
from experiments.portable import portable_argument
from experiments.timing import is_oom, make_train_step, time_step_windows, time_steps  # noqa: F401
from experiments.timing import short_device_name as device_name


def time_model(
    model: nn.Module,
    forward: Callable[[nn.Module], Tensor],
    labels: Tensor,
    setup: Setup,
    args: argparse.Namespace,
    device: torch.device,
    compiled: bool,
) -> tuple[float, int | None, list[float]]:
    """Time the training step of ``model`` (a fresh optimizer; compiled when asked).

    Returns the median over ``args.windows`` windows of ``args.steps`` steps (ms per step),
    the peak bytes (CUDA) and every window's figure.
    """
    mode = args.compile_mode if compiled else None
    step = train_step(model, forward, labels, setup.optimizer, args.dtype, mode)
    windows, peak = time_step_windows(step, device, args.warmup, args.steps, args.windows)
    return statistics.median(windows), peak, windows


def window_note(mode: str, ms: float, windows: list[float]) -> str:
    """``compiled 16.53 ms``, with ``(windows 16.41/16.53/16.90)`` when there are several."""
    spread = f" (windows {'/'.join(f'{w:.2f}' for w in windows)})" if len(windows) > 1 else ""
    return f"{mode} {ms:.2f} ms{spread}"


def _not_run(task: str, mixer: str, meta: dict[str, str], **known: Any) -> StepRow:
    """A row skipped because the time budget was spent."""
    return StepRow(
        task=task,
        mixer=mixer,
        ms_per_step=None,
        tokens_per_s=None,
        peak_mem_bytes=None,
        anchor_eager_ms=known.pop("anchor_eager_ms", None),
        anchor_compiled_ms=known.pop("anchor_compiled_ms", None),
        compile="",
        status=NOT_RUN,
        **known,
        **meta,
    )


def _spent(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _time_anchor(
    task: str, args: argparse.Namespace, device: torch.device
) -> tuple[dict[str, float | None], int, int]:
    """The anchor's ms/step eager and compiled (None where it failed), batch size and N."""
    anchor: dict[str, float | None] = {"eager": None, "compiled": None}
    first = load_setup("softmax", task, args.batch, args.max_len, args.override)
    batch = random_batch(first, device)
    ids = anchor_ids(first, batch)
    for mode in ("eager", "compiled"):
        torch.manual_seed(0)
        model = anchor_for(first)
        try:
            anchor[mode], _, _ = time_model(
                model, lambda m: m(ids), batch["labels"], first, args, device, mode == "compiled"
            )
        except Exception as err:  # noqa: BLE001 - recorded, the run goes on
            print(
                f"[bench_step] {task} anchor {mode}: {type(err).__name__}: {err}", file=sys.stderr
            )
        del model
    return anchor, batch["labels"].numel(), ids.shape[1]


def _graph_replays(args: argparse.Namespace) -> bool:
    """Whether compiled steps replay CUDA graphs, so that their own peak memory reads ~0.

    The graphs' pools are reserved while recording, before the timed replays' peak window
    opens: a peak over the replays is no figure of the step. (Off CUDA there is no peak.)
    """
    return args.compile_mode == "reduce-overhead"


def _failure(err: Exception) -> str:
    """A row's status for an exception that stopped it: ``oom`` or ``error: Type: message``."""
    return "oom" if is_oom(err) else f"error: {type(err).__name__}: {err}"


def _mixer_step(
    task: str,
    mixer: str,
    args: argparse.Namespace,
    device: torch.device,
    compiled: bool,
    forced_path: str = "auto",
) -> tuple[Callable[[], None], str]:
    """The training step of ``mixer``'s preset on a random batch, and its mixing path.

    The preset is built from seed 0 with a fresh optimizer; ``forced_path`` other than
    ``auto`` is set on every layer that has it (:func:`force_mixing_path`).
    """
    torch.manual_seed(0)
    setup = load_setup(mixer, task, args.batch, args.max_len, args.override)
    if forced_path != "auto":
        force_mixing_path(setup.model, forced_path)
    path = mixing_path(setup.model, setup.seq_len, device, setup.padded, args.dtype, compiled)
    data = random_batch(setup, device)
    inputs = {k: v for k, v in data.items() if k != "labels"}
    mode = args.compile_mode if compiled else None
    step = train_step(
        setup.model, lambda m: m(**inputs), data["labels"], setup.optimizer, args.dtype, mode
    )
    return step, path


def _time_mixer(
    task: str,
    mixer: str,
    modes: list[str],
    args: argparse.Namespace,
    device: torch.device,
    forced_path: str = "auto",
) -> tuple[tuple[float, int | None, str] | None, str, str, list[str]]:
    """Time ``mixer`` in each mode: fastest ``(ms, peak, mode)`` or None, status, path, notes.

    The path is the one the fastest mode's layers take (FNet's differs between eager and
    compiled steps).

    ``forced_path`` other than ``auto`` is set on every layer that has it
    (:func:`force_mixing_path`).
    """
    best: tuple[float, int | None, str] | None = None
    status, path, notes = "ok", "", []
    peaks: dict[str, int | None] = {}
    paths: dict[str, str] = {}
    for mode in modes:
        try:
            step, path = _mixer_step(task, mixer, args, device, mode == "compiled", forced_path)
            paths[mode] = path
            windows, peak = time_step_windows(step, device, args.warmup, args.steps, args.windows)
            ms = statistics.median(windows)
            notes.append(window_note(mode, ms, windows))
            peaks[mode] = peak
            if best is None or ms < best[0]:
                best = (ms, peak, mode)
        except Exception as err:  # noqa: BLE001 - recorded, the run goes on
            status = _failure(err)
            notes.append(f"{mode} {'oom' if status == 'oom' else 'error'}")
            print(f"[bench_step] {task} {mixer} {mode}: {status}", file=sys.stderr)
        finally:
            step = None  # the model and its optimizer go before the next mode's
            if device.type == "cuda":
                torch.cuda.empty_cache()
    if best is not None and best[2] == "compiled" and _graph_replays(args):
        best = (best[0], peaks.get("eager"), best[2])  # the eager step's peak stands for it
    return best, status, paths[best[2]] if best is not None else path, notes


def _time_mixer_ab(
    task: str, mixer: str, args: argparse.Namespace, device: torch.device
) -> tuple[dict[bool, list[float]] | None, int | None, str, str]:
    """A/B of ``args.ab`` on the compiled step of ``mixer``: windows per side, peak, status, path.

    The status is ``ok``, ``oom`` or the error that stopped it (the run goes on).
    """
    try:
        step, path = _mixer_step(task, mixer, args, device, compiled=True)
        figures, peak = time_ab(step, device, args.ab, args.warmup, args.steps, args.windows)
        if _graph_replays(args):
            peak = None
        return figures, peak, "ok", path
    except Exception as err:  # noqa: BLE001 - recorded, the run goes on
        status = _failure(err)
        print(f"[bench_step] {task} {mixer} A/B {args.ab}: {status}", file=sys.stderr)
        return None, None, status, ""
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _ab_rows(
    task: str,
    mixer: str,
    args: argparse.Namespace,
    device: torch.device,
    shared: dict[str, Any],
    meta: dict[str, str],
) -> list[StepRow]:
    """The two rows (switch off, on) of one mixer's A/B, or two error rows."""
    if task not in args.compile_tasks:
        figures, peak, path = None, None, ""
        status = f"error: --ab needs compiled steps; --compile-tasks lacks {task}"
    else:
        figures, peak, status, path = _time_mixer_ab(task, mixer, args, device)
    rows = []
    n_tokens = shared["batch"] * shared["seq_len"]
    for on in (False, True):
        ms = statistics.median(figures[on]) if figures else None
        side = f"A/B {args.ab} {'on' if on else 'off'}, windows interleaved with the other side's"
        note = (window_note("compiled", ms, figures[on]) + "; " if figures else "") + side
        rows.append(
            StepRow(
                task=task,
                mixer=mixer,
                ms_per_step=round(ms, 3) if ms is not None else None,
                tokens_per_s=round(n_tokens / ms * 1000.0) if ms else None,
                peak_mem_bytes=peak,
                compile="compiled",
                status=status,
                path=path,
                note=note + step_options(args),
                **shared,
                **meta,
            )
        )
    return rows


def _modes(task: str, args: argparse.Namespace) -> tuple[list[str], str]:
    """The compile modes timed for ``task``, and why it runs eager when ``--compile`` skips it."""
    modes = {"none": ["eager"], "all": ["compiled"], "auto": ["eager", "compiled"]}[args.compile]
    if task not in args.compile_tasks and args.compile != "none":
        return ["eager"], f" (--compile applies to {','.join(args.compile_tasks)})"
    return modes, ""


def bench_task(
    task: str,
    args: argparse.Namespace,
    device: torch.device,
    meta: dict[str, str],
    emit: Callable[[StepRow], None],
    deadline: float | None = None,
) -> None:
    """Every mixer of one task, plus the anchor eager and compiled; ``emit`` gets each row.

    Rows not begun by ``deadline`` (``time.monotonic()``) are emitted as not run.
    """
    if _spent(deadline):
        for mixer in args.mixers:
            emit(_not_run(task, mixer, meta))
        return
    anchor, n_batch, seq_len = _time_anchor(task, args, device)
    modes, reason = _modes(task, args)
    shared = {
        "batch": n_batch,
        "seq_len": seq_len,
        "anchor_eager_ms": _round(anchor["eager"]),
        "anchor_compiled_ms": _round(anchor["compiled"]),
    }
    for mixer, forced in [(m, p) for m in args.mixers for p in args.mixing_paths]:
        if _spent(deadline):
            emit(_not_run(task, mixer, meta, **shared))
            continue
        if args.ab is not None:
            for row in _ab_rows(task, mixer, args, device, shared, meta):
                emit(row)
            continue
        best, status, path, notes = _time_mixer(task, mixer, modes, args, device, forced)
        if len(modes) > 1:
            note = f"auto: {', '.join(notes)}"
        else:  # the one mode, with its windows when there are several
            note = notes[0] if best is not None and args.windows > 1 else modes[0]
        emit(
            StepRow(
                task=task,
                mixer=mixer,
                ms_per_step=round(best[0], 3) if best else None,
                tokens_per_s=round(n_batch * seq_len / best[0] * 1000.0) if best else None,
                peak_mem_bytes=best[1] if best else None,
                compile=best[2] if best else modes[0],
                status="ok" if best else status,
                path=path,
                note=note + reason + step_options(args),
                **shared,
                **meta,
            )
        )


def _csv_list(text: str, allowed: tuple[str, ...], option: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise SystemExit(f"{option}: unknown value(s) {bad or text!r}; use some of {allowed}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default=",".join(BENCH_TASKS))
    p.add_argument("--mixers", default=None, help="comma list (default: every mixer)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--dtype", default=None, choices=("bf16", "fp32"))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument(
        "--windows",
        type=int,
        default=3,
        help="timed windows of --steps steps each; ms_per_step is their median and the note "
        "lists them",
    )
    p.add_argument("--compile", default="none", choices=("none", "auto", "all"))
    p.add_argument(
        "--compile-mode",
        default="reduce-overhead",
        choices=("default", "reduce-overhead"),
        help="torch.compile mode of compiled rows and the compiled anchor (reduce-overhead: "
        "CUDA graphs)",
    )
    p.add_argument(
        "--compile-tasks",
        default="pathfinder",
        help="tasks whose mixers --compile applies to (others: eager); compiling every "
        "mixer of every task takes longer than the rest of the run",
    )
    p.add_argument("--batch", type=int, default=None, help="batch size (default: preset's)")
    p.add_argument("--max-len", type=int, default=None, help="cap on the sequence length")
    p.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds; rows not begun by then are listed as not run",
    )
    p.add_argument(
        "--triton-kernels",
        action="store_true",
        help="route softmax of head width <= 16 and the FAVOR+ contraction to the Triton kernels",
    )
    add_hashed_dropout_option(p)
    add_pad_segments_option(p)
    add_logit_unroll_option(p)
    p.add_argument(
        "--ab",
        default=None,
        choices=sorted(AB_SWITCHES),
        help="time each mixer's compiled step with this switch off and on in one process, "
        "windows interleaved (two rows per mixer; needs --compile all)",
    )
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Hydra override added to every preset, e.g. model.dropout=0 (repeat it); the "
        "anchor takes its shape from the softmax preset with them (it has no dropout)",
    )
    add_recompute_option(p)
    p.add_argument(
        "--mixing-path",
        default="auto",
        help="comma list; one row per mixer and path, the path forced on every layer that has "
        "it (e.g. fft,gemm); a mixer without it is an error row (auto: each layer's choice)",
    )
    p.add_argument("--out", default="results")
    args = p.parse_args(argv)
    args.tasks = _csv_list(args.tasks, BENCH_TASKS, "--tasks")
    mixers = default_mixers()
    args.mixers = _csv_list(args.mixers or ",".join(mixers), mixers, "--mixers")
    args.compile_tasks = _csv_list(args.compile_tasks, BENCH_TASKS, "--compile-tasks")
    args.mixing_paths = [v.strip() for v in args.mixing_path.split(",") if v.strip()]
    if not args.mixing_paths:
        raise SystemExit("--mixing-path: give auto or a comma list of path names")
    if args.steps < 1 or args.warmup < 0 or args.windows < 1:
        raise SystemExit("--steps and --windows must be >= 1 and --warmup >= 0")
    if args.time_budget is not None and not args.time_budget >= 0:
        raise SystemExit("--time-budget must be a number of seconds >= 0")
    if args.ab is not None and args.compile != "all":
        raise SystemExit(f"--ab {args.ab} times compiled steps: add --compile all")
    fixed = {"hashed-dropout": args.hashed_dropout, "logit-unroll": args.logit_unroll is not None}
    if args.ab is not None and fixed[args.ab]:
        raise SystemExit(f"--ab {args.ab} switches it itself: drop --{args.ab}")
    if args.ab is not None and args.mixing_paths != ["auto"]:
        raise SystemExit("--ab times each mixer on its own paths: drop --mixing-path")
    return args


def step_options(args: argparse.Namespace) -> str:
    """What changed the step from the preset's, as a note suffix.

    ``; overrides: ...; triton kernels; hashed dropout; pad segments S; logit unroll W;
    recompute on``.
    """
    options = []
    if args.override:
        options.append(f"overrides: {' '.join(args.override)}")
    if args.triton_kernels:
        options.append("triton kernels")
    if args.hashed_dropout:
        options.append("hashed dropout")
    if args.pad_segments is not None:
        options.append(f"pad segments {args.pad_segments}")
    if args.logit_unroll is not None:
        options.append(f"logit unroll {args.logit_unroll}")
    if args.recompute != "auto":
        options.append(f"recompute {args.recompute}")
    return "".join(f"; {o}" for o in options)


def use_triton_kernels() -> None:
    """Switch the Triton kernels on for this process (they are off by default).

    Softmax attention of head width up to 16 without a mask takes
    ``spectrans.kernels.small_head_attention``; the FAVOR+ contraction takes
    ``spectrans.kernels.favor_fused`` where it supports the widths.
    """
    from spectrans.kernels.small_head_attention import PADDED_HEAD_DIM
    from spectrans.layers.attention import favor_contract, softmax

    softmax.SMALL_HEAD_MAX_DIM = PADDED_HEAD_DIM
    favor_contract.TRITON_KERNELS = True


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write ``train_step.csv`` / ``train_step.md``."""
    with fail_on_recompile_limit():  # a row past Dynamo's limit fails instead of timing eager
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    from experiments.results import git_commit

    args = parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device on this machine; use --device cpu", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    if args.triton_kernels:
        use_triton_kernels()
    if args.hashed_dropout:
        use_hashed_dropout()
    set_pad_segments(args.pad_segments)
    set_logit_unroll(args.logit_unroll)
    set_recompute(args.recompute)
    args.dtype = args.dtype or ("bf16" if device.type == "cuda" else "fp32")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    meta = {
        "device": device_name(device),
        "dtype": args.dtype,
        "commit": git_commit(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    command = "python -m experiments.bench_step " + " ".join(
        map(portable_argument, argv if argv is not None else sys.argv[1:])
    )
    deadline = None if args.time_budget is None else time.monotonic() + args.time_budget
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    planned = len(args.tasks) * len(args.mixers)
    rows: list[StepRow] = []

    def write() -> None:
        write_csv(rows, out / "train_step.csv")
        write_markdown(
            rows, out / "train_step.md", command.strip(), meta, planned, args.time_budget
        )

    def emit(row: StepRow) -> None:
        rows.append(row)
        print(_row_line(row), flush=True)
        write()

    write()  # no stale rows of an earlier run survive a stop before the first row
    for task in args.tasks:
        bench_task(task, args, device, meta, emit, deadline)
    print(f"wrote {out / 'train_step.csv'} and {out / 'train_step.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
