"""Training-step benchmark: the LRA-config step of every mixer next to a plain-PyTorch encoder.

Usage::

    python -m experiments.bench_step [--tasks listops,text,image,pathfinder]
        [--mixers softmax,lst-dct,...] [--device auto|cpu|cuda] [--dtype bf16|fp32]
        [--steps 20] [--warmup 5] [--compile none|auto|all] [--batch B] [--max-len N]
        [--time-budget SECONDS] [--out results]

Mixers (:func:`default_mixers`): every preset variant of ``scripts/make_presets.py``'s
``VARIANTS`` (``lst-dct``, ``lra-performer``, ...) and every other registered mixer
(``kernel``, ``global_filter``, ...). For each task and mixer the model of the LRA preset
``conf/experiment/lra/<mixer>-<task>.yaml`` is built exactly as ``train.py`` builds it (a
registered mixer without a preset: a preset with no attention keys, ``attention=<mixer>`` and
the keys ``make_presets.attention_node`` gives it), and one training step is timed: forward
on random tokens of the task's shape (all positions real), cross-entropy on random labels,
backward, and the preset's optimizer (fused AdamW on CUDA) stepping. ``bf16`` runs the model under
``torch.autocast(bfloat16)`` (what ``trainer.precision=bf16-mixed`` does). After ``warmup``
untimed steps (compilation included), ``steps`` steps are timed back to back with one device
synchronisation at each end: ``ms_per_step`` is their mean, ``tokens_per_s = B * N`` over it,
``peak_mem_bytes`` the CUDA allocator's peak over the timed steps (CPU: ``n/a``, empty).

Anchor: a plain-PyTorch pre-norm encoder of the same shape (embedding + learned positions,
``L`` blocks of LayerNorm, fused q/k/v projection, SDPA, output projection, LayerNorm, GELU
MLP; head width rounded up to a multiple of 8), timed eager and under ``torch.compile`` in
the same run (``anchor_eager_ms``, ``anchor_compiled_ms``).

``path``: the LST mixing path the model takes at this length (``dense`` operator or
``fast`` transforms; empty for other mixers).

``--compile``: ``none`` times every mixer eager; ``all`` times every mixer compiled
(``torch.compile`` of the whole model); ``auto`` times both and keeps the faster (the
``compile`` column says which). It applies to the tasks of ``--compile-tasks`` (default
``pathfinder``, the task with the most protocol steps); other tasks run eager (compiling
every mixer of every task takes longer than the rest of the run). Compiled figures exclude
compile time (it falls in warm-up).

``note``: the mode timed (``eager``, ``compiled``; ``auto: eager 3.10 ms, compiled 2.50 ms``
with both times), and why a task outside ``--compile-tasks`` ran eager.

``--time-budget``: once this many seconds have passed since the start, the rows not yet
begun are not run (status ``not run: time budget``); a row under way finishes.

Writes ``<out>/train_step.csv`` (:data:`CSV_COLUMNS`) and ``<out>/train_step.md``, both
rewritten (atomically) after every row, so a run stopped part-way leaves every finished row.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import importlib.util
import io
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn

BENCH_TASKS: tuple[str, ...] = ("listops", "text", "image", "pathfinder")
"""Tasks the step benchmark times (registered task names)."""
CSV_COLUMNS = (  # ``path`` names the LST mixing path (see mixing_path)
    "task",
    "mixer",
    "ms_per_step",
    "tokens_per_s",
    "peak_mem_bytes",
    "anchor_eager_ms",
    "anchor_compiled_ms",
    "compile",
    "device",
    "dtype",
    "commit",
    "date",
    "path",
    "status",
    "note",
)
ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = ROOT / "conf"
NOT_RUN = "not run: time budget"


@dataclass
class StepRow:
    """One timed configuration (a row of ``train_step.csv``)."""

    task: str
    mixer: str
    ms_per_step: float | None
    tokens_per_s: float | None
    peak_mem_bytes: int | None
    anchor_eager_ms: float | None
    anchor_compiled_ms: float | None
    compile: str
    device: str
    dtype: str
    commit: str
    date: str
    batch: int = 0
    seq_len: int = 0
    status: str = "ok"
    path: str = ""
    note: str = ""


@dataclass
class Setup:
    """What a timed step needs: the model, its optimizer config, and the batch shape."""

    model: nn.Module
    optimizer: Any
    batch: int
    seq_len: int
    vocab_size: int
    num_classes: int
    input_type: str
    shape: dict[str, Any]


@functools.cache
def _presets() -> ModuleType:
    """``scripts/make_presets.py``, the table of preset variants."""
    spec = importlib.util.spec_from_file_location("make_presets", ROOT / "scripts/make_presets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def default_mixers() -> tuple[str, ...]:
    """Every preset variant, then every other registered mixer.

    A registered mixer that is the attention group of a variant is timed as its variants
    (``lst`` as ``lst-dct``, ``lst-dst``, ...).
    """
    from spectrans import registry

    variants = _presets().VARIANTS
    groups = {group for group, _, _ in variants.values()}
    rest = [n for n in registry.names() if n not in variants and n not in groups]
    return (*variants, *rest)


def _hydra_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def preset_overrides(mixer: str, task: str) -> list[str]:
    """Hydra overrides of a mixer's LRA preset for ``task``.

    A preset variant is its own file; another registered mixer takes a preset whose attention
    node is empty (all else is shared by every variant) with ``attention=<mixer>`` and the keys
    :func:`make_presets.attention_node` gives it.
    """
    presets = _presets()
    if mixer in presets.VARIANTS:
        return [f"experiment=lra/{mixer}-{task}"]
    base = next(v for v in presets.VARIANTS if not presets.attention_node(v, task))
    node = presets.attention_node(mixer, task)
    keys = [f"attention.{k}={_hydra_value(v)}" for k, v in node.items()]
    return [f"experiment=lra/{base}-{task}", f"attention={mixer}", *keys]


def load_setup(mixer: str, task: str, batch: int | None, max_len: int | None) -> Setup:
    """Compose and validate the preset, then build its model as ``train.py`` does.

    Args:
        mixer: Mixer preset name (see :func:`default_mixers`).
        task: LRA task (see :data:`BENCH_TASKS`).
        batch: Batch size override (default: the preset's).
        max_len: Cap on the sequence length (default: the task's).
    """
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from experiments.config import validate_experiment
    from experiments.data import build_datamodule
    from spectrans.models import build_classifier

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=preset_overrides(mixer, task))
    exp = validate_experiment(OmegaConf.to_container(cfg, resolve=True))
    dm = build_datamodule(exp.task, data_dir="unused", batch_size=exp.data.batch_size)
    seq_len = min(dm.max_length, max_len) if max_len else dm.max_length
    model = build_classifier(
        exp.model,
        exp.attention,
        vocab_size=dm.vocab_size,
        num_classes=dm.num_classes,
        max_length=seq_len,
        pair=False,
        input_type=dm.input_type,
    )
    heads = getattr(exp.attention, "num_heads", None) or 4
    head_dim = getattr(exp.attention, "head_dim", None) or exp.model.hidden_dim // heads
    shape = {
        "hidden": exp.model.hidden_dim,
        "layers": exp.model.num_layers,
        "ffn": exp.model.ffn_hidden_dim,
        "heads": heads,
        "head_dim": head_dim,
    }
    return Setup(
        model=model,
        optimizer=exp.optimizer,
        batch=batch or exp.data.batch_size,
        seq_len=seq_len,
        vocab_size=dm.vocab_size,
        num_classes=dm.num_classes,
        input_type=dm.input_type,
        shape=shape,
    )


class AnchorEncoder(nn.Module):
    """Plain pre-norm SDPA encoder classifier (the reference a user would write).

    Args:
        vocab_size: Token vocabulary.
        num_classes: Logits.
        seq_len: Learned positions.
        hidden: Model width D.
        layers: Blocks L.
        ffn: MLP width.
        heads: Heads H; the head width is ``max(8, 8 ceil(head_dim / 8))``.
        head_dim: Head width of the mixer being compared.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        seq_len: int,
        hidden: int,
        layers: int,
        ffn: int,
        heads: int,
        head_dim: int,
    ) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, 8 * math.ceil(head_dim / 8)
        inner = heads * self.head_dim
        self.embed = nn.Embedding(vocab_size, hidden)
        self.pos = nn.Parameter(torch.randn(seq_len, hidden) * 0.02)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            block = nn.ModuleDict(
                {
                    "ln1": nn.LayerNorm(hidden),
                    "qkv": nn.Linear(hidden, 3 * inner),
                    "out": nn.Linear(inner, hidden),
                    "ln2": nn.LayerNorm(hidden),
                    "mlp": nn.Sequential(nn.Linear(hidden, ffn), nn.GELU(), nn.Linear(ffn, hidden)),
                }
            )
            self.blocks.append(block)
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, input_ids: Tensor) -> Tensor:
        """Logits (B, C) of token ids (B, N)."""
        batch, n = input_ids.shape
        x = self.embed(input_ids) + self.pos[:n]  # (B, N, D)
        for block in self.blocks:
            qkv = block["qkv"](block["ln1"](x)).view(batch, n, 3, self.heads, self.head_dim)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)  # (B, H, N, d) each
            att = nn.functional.scaled_dot_product_attention(q, k, v)  # (B, H, N, d)
            x = x + block["out"](att.transpose(1, 2).reshape(batch, n, -1))
            x = x + block["mlp"](block["ln2"](x))
        return self.head(self.norm(x).mean(dim=1))  # (B, C)


def random_batch(setup: Setup, device: torch.device, seed: int = 0) -> dict[str, Tensor]:
    """Random tokens (or pixel values) and labels of the task's shape, no padding."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, setup.vocab_size, (setup.batch, setup.seq_len), generator=gen)
    batch = {
        "attention_mask": torch.ones(setup.batch, setup.seq_len, dtype=torch.bool),
        "labels": torch.randint(0, setup.num_classes, (setup.batch,), generator=gen),
    }
    if setup.input_type == "values":
        batch["input_values"] = ids.float() / max(1, setup.vocab_size - 1)
    else:
        batch["input_ids"] = ids
    return {k: v.to(device) for k, v in batch.items()}


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(
    step: Callable[[], None], device: torch.device, warmup: int, steps: int
) -> tuple[float, int | None]:
    """Mean milliseconds per step after ``warmup`` untimed steps, and the peak bytes (CUDA)."""
    for _ in range(warmup):
        step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    ms = (time.perf_counter() - start) * 1000.0 / steps
    peak = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    return ms, peak


def time_model(
    model: nn.Module,
    forward: Callable[[nn.Module], Tensor],
    labels: Tensor,
    setup: Setup,
    args: argparse.Namespace,
    device: torch.device,
    compiled: bool,
) -> tuple[float, int | None]:
    """Time the training step of ``model`` (a fresh optimizer; compiled when asked)."""
    from experiments.module import make_optimizer, parameter_groups

    model = model.to(device).train()
    optimizer = make_optimizer(
        parameter_groups(model, setup.optimizer.weight_decay, setup.optimizer.decay_all),
        setup.optimizer,
    )
    run = torch.compile(model) if compiled else model
    step = make_train_step(model, lambda: forward(run), labels, optimizer, args.dtype, device)
    return time_steps(step, device, args.warmup, args.steps)


def mixing_path(model: nn.Module, seq_len: int, device: torch.device) -> str:
    """The LST mixing path (``dense`` / ``fast``) the model's layers take, or ``""``."""
    paths = {m.chosen_path(seq_len, device) for m in model.modules() if hasattr(m, "chosen_path")}
    return "/".join(sorted(paths))


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


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
    anchor: dict[str, float | None] = {"eager": None, "compiled": None}
    first = load_setup("softmax", task, args.batch, args.max_len)
    batch = random_batch(first, device)
    ids = batch.get("input_ids")
    if ids is None:  # pixel values: the anchor embeds the same positions as tokens
        ids = (batch["input_values"] * (first.vocab_size - 1)).round().long()
    s = first.shape
    for mode in ("eager", "compiled"):
        torch.manual_seed(0)
        model = AnchorEncoder(
            first.vocab_size,
            first.num_classes,
            first.seq_len,
            s["hidden"],
            s["layers"],
            s["ffn"],
            s["heads"],
            s["head_dim"],
        )
        try:
            anchor[mode], _ = time_model(
                model, lambda m: m(ids), batch["labels"], first, args, device, mode == "compiled"
            )
        except Exception as err:  # noqa: BLE001 - recorded, the run goes on
            print(
                f"[bench_step] {task} anchor {mode}: {type(err).__name__}: {err}", file=sys.stderr
            )
        del model
    del first
    modes = {"none": ["eager"], "all": ["compiled"], "auto": ["eager", "compiled"]}[args.compile]
    reason = ""
    if task not in args.compile_tasks and args.compile != "none":
        modes, reason = ["eager"], f" (--compile applies to {','.join(args.compile_tasks)})"
    n_batch, seq_len = batch["labels"].numel(), ids.shape[1]
    shared = {
        "batch": n_batch,
        "seq_len": seq_len,
        "anchor_eager_ms": _round(anchor["eager"]),
        "anchor_compiled_ms": _round(anchor["compiled"]),
    }
    for mixer in args.mixers:
        if _spent(deadline):
            emit(_not_run(task, mixer, meta, **shared))
            continue
        best: tuple[float, int | None, str] | None = None
        status, path, notes = "ok", "", []
        setup = None
        for mode in modes:
            try:
                torch.manual_seed(0)
                setup = load_setup(mixer, task, args.batch, args.max_len)
                path = mixing_path(setup.model, setup.seq_len, device)
                data = random_batch(setup, device)
                inputs = {k: v for k, v in data.items() if k != "labels"}
                ms, peak = time_model(
                    setup.model,
                    lambda m, inputs=inputs: m(**inputs),
                    data["labels"],
                    setup,
                    args,
                    device,
                    mode == "compiled",
                )
                notes.append(f"{mode} {ms:.2f} ms")
                if best is None or ms < best[0]:
                    best = (ms, peak, mode)
            except Exception as err:  # noqa: BLE001 - recorded, the run goes on
                status = "oom" if _is_oom(err) else f"error: {type(err).__name__}: {err}"
                notes.append(f"{mode} {'oom' if status == 'oom' else 'error'}")
                print(f"[bench_step] {task} {mixer} {mode}: {status}", file=sys.stderr)
            finally:
                setup = None
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        note = f"auto: {', '.join(notes)}" if len(modes) > 1 else modes[0]
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
                note=note + reason,
                **shared,
                **meta,
            )
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _row_line(row: StepRow) -> str:
    ms = f"{row.ms_per_step:.2f} ms" if row.ms_per_step is not None else row.status
    return (
        f"{row.task:10s} {row.mixer:14s} {ms:>12s} ({row.note or row.compile}) "
        f"anchor {row.anchor_eager_ms} / {row.anchor_compiled_ms} ms"
    )


def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` to a sibling file, then rename it over ``path`` (never half-written)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_csv(rows: list[StepRow], path: Path) -> None:
    """``train_step.csv`` with :data:`CSV_COLUMNS`."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})
    _replace_text(path, buffer.getvalue())


def _gib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**30:.2f}"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def write_markdown(
    rows: list[StepRow],
    path: Path,
    command: str,
    meta: dict[str, str],
    planned: int | None = None,
    budget_s: float | None = None,
) -> None:
    """``train_step.md``: one table per task, ms/step next to the anchor.

    Args:
        rows: The rows finished so far (measured, failed or not run).
        path: Where to write.
        command: The command line, named in the header.
        meta: ``device``, ``dtype``, ``commit``, ``date``.
        planned: Rows the run plans; fewer ``rows`` means the run is going on or stopped.
        budget_s: The ``--time-budget``, if any.
    """
    lines = [
        "# Training step per mixer (LRA configs)",
        "",
        f"Command: `{command}`; device {meta['device']}, {meta['dtype']}, "
        f"commit {meta['commit']}, {meta['date']}.",
        "",
        "One step = forward on random tokens of the task's shape, cross-entropy, backward, "
        "optimizer step; mean over the timed steps after warm-up (compile time excluded). "
        "Anchor: a plain-PyTorch pre-norm SDPA encoder of the same shape. Mode: the modes "
        "timed and their ms/step (the faster one is reported).",
        "",
    ]
    if budget_s is not None:
        lines += [f"Time budget {budget_s:g} s: rows not begun within it say `{NOT_RUN}`.", ""]
    if planned is not None and len(rows) < planned:
        lines += [
            f"Partial: {len(rows)} of {planned} planned rows (the run is going on or stopped).",
            "",
        ]
    for task in dict.fromkeys(r.task for r in rows):
        sub = [r for r in rows if r.task == task]
        head = next((r for r in sub if r.batch), None)
        shape = (
            f"batch {head.batch}, N = {head.seq_len}; anchor {head.anchor_eager_ms} ms eager, "
            f"{head.anchor_compiled_ms} ms compiled"
            if head
            else NOT_RUN
        )
        lines += [
            f"## {task} ({shape})",
            "",
            "| mixer | ms/step | tokens/s | peak GiB | vs anchor (compiled) | mode | path |",
            "| --- | ---: | ---: | ---: | ---: | --- | --- |",
        ]
        for r in sub:
            mode = _cell(r.note or r.compile)
            if r.ms_per_step is None:
                lines.append(f"| {r.mixer} | {_cell(r.status)} | | | | {mode} | {r.path} |")
                continue
            ratio = (
                f"{r.ms_per_step / r.anchor_compiled_ms:.2f}x" if r.anchor_compiled_ms else "n/a"
            )
            lines.append(
                f"| {r.mixer} | {r.ms_per_step:.2f} | {r.tokens_per_s:,.0f} | "
                f"{_gib(r.peak_mem_bytes)} | {ratio} | {mode} | {r.path} |"
            )
        lines.append("")
    _replace_text(path, "\n".join(lines))


def device_name(device: torch.device) -> str:
    """GPU name, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


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
    p.add_argument("--compile", default="none", choices=("none", "auto", "all"))
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
    p.add_argument("--out", default="results")
    args = p.parse_args(argv)
    args.tasks = _csv_list(args.tasks, BENCH_TASKS, "--tasks")
    mixers = default_mixers()
    args.mixers = _csv_list(args.mixers or ",".join(mixers), mixers, "--mixers")
    args.compile_tasks = _csv_list(args.compile_tasks, BENCH_TASKS, "--compile-tasks")
    if args.steps < 1 or args.warmup < 0:
        raise SystemExit("--steps must be >= 1 and --warmup >= 0")
    if args.time_budget is not None and not args.time_budget >= 0:
        raise SystemExit("--time-budget must be a number of seconds >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write ``train_step.csv`` / ``train_step.md``."""
    from experiments.results import git_commit

    args = parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device on this machine; use --device cpu", file=sys.stderr)
        return 2
    device = torch.device(args.device)
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
        argv if argv is not None else sys.argv[1:]
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
