"""Profile the LRA-config training step of a mixer: where the milliseconds go.

Usage::

    python -m experiments.profile_step --task listops --mixers softmax,lst-dct
        [--variants preset,no-dropout,no-mask] [--compile] [--hashed-dropout] [--steps 10]
        [--rows 25] [--out profile.md]

For each mixer the model of its LRA preset is built as :mod:`experiments.bench_step` builds
it, and its training step (forward under bf16 autocast, cross-entropy, backward, fused
AdamW) is timed on random tokens of the task's shape. Variants isolate costs of the preset:

- ``preset``: as configured (dropout, attention dropout, the all-real key mask passed).
- ``no-dropout``: every dropout probability set to 0.
- ``no-mask``: the key mask is not passed (None), so fused kernels need no mask.
- ``bare``: both.

``--hashed-dropout``: compiled steps draw their dropout masks from an integer hash
(:data:`spectrans.layers.dropout.HASHED_MASKS_WHEN_COMPILED`) instead of Philox.

The anchor (a plain pre-norm SDPA encoder of the same shape, no dropout, no mask) is timed
first. For each row ``torch.profiler`` records three steps and the table of the kernels with
the most device time is written (self CUDA time, calls, share of the step).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from experiments.bench_specs import add_hashed_dropout_option, use_hashed_dropout
from experiments.bench_step_setup import (
    BENCH_TASKS,
    anchor_for,
    anchor_ids,
    default_mixers,
    load_setup,
    random_batch,
    train_step,
)
from experiments.kernel_table import kernel_table
from experiments.portable import portable_argument
from experiments.results import git_commit
from experiments.timing import short_device_name, time_steps

VARIANTS: tuple[str, ...] = ("preset", "no-dropout", "no-mask", "bare")


def _zero_dropout(model: nn.Module) -> None:
    """Set every dropout probability of ``model`` to 0 (modules and float attributes)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        for name in ("dropout", "attention_dropout", "dropout_p"):
            if isinstance(getattr(module, name, None), float):
                setattr(module, name, 0.0)


def profile_rows(args: argparse.Namespace, write: Callable[[str], None]) -> None:
    """Time and profile the anchor and every (mixer, variant) of ``args``."""
    device = torch.device("cuda")
    first = load_setup("softmax", args.task, None, args.max_len)
    data = random_batch(first, device)
    torch.manual_seed(0)
    ids = anchor_ids(first, data)
    mode = (args.compile_mode or "default") if args.compile else None
    anchor = anchor_for(first)
    step = train_step(anchor, lambda m: m(ids), data["labels"], first.optimizer, "bf16", mode)
    ms, peak = time_steps(step, device, args.warmup, args.steps)
    write(f"\n## anchor ({args.task}, B={first.batch}, N={first.seq_len}, {first.shape})\n")
    write(f"{ms:.2f} ms/step, peak {peak / 2**30:.2f} GiB\n\n{kernel_table(step, args.rows)}\n")
    del step
    for mixer in args.mixers:
        for variant in args.variants:
            torch.manual_seed(0)
            setup = load_setup(mixer, args.task, None, args.max_len)
            if variant in ("no-dropout", "bare"):
                _zero_dropout(setup.model)
            batch = random_batch(setup, device)
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            if variant in ("no-mask", "bare"):
                inputs.pop("attention_mask", None)
            step = train_step(
                setup.model, lambda m, i=inputs: m(**i), batch["labels"], setup.optimizer,
                "bf16", mode,
            )  # fmt: skip
            ms, peak = time_steps(step, device, args.warmup, args.steps)
            write(f"\n## {mixer} / {variant}\n\n{ms:.2f} ms/step, peak {peak / 2**30:.2f} GiB\n\n")
            write(kernel_table(step, args.rows) + "\n")
            del setup, step
            torch.cuda.empty_cache()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; unknown mixers or variants are one-sentence errors."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="listops", choices=BENCH_TASKS)
    parser.add_argument("--mixers", default="softmax")
    parser.add_argument("--variants", default="preset")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument(
        "--compile-mode",
        default=None,
        choices=["default", "reduce-overhead", "max-autotune-no-cudagraphs"],
        help="torch.compile mode (reduce-overhead replays CUDA graphs)",
    )
    add_hashed_dropout_option(parser)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--max-len", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    args.mixers = [m for m in args.mixers.split(",") if m]
    args.variants = [v for v in args.variants.split(",") if v]
    for name, allowed, given in (
        ("--mixers", default_mixers(), args.mixers),
        ("--variants", VARIANTS, args.variants),
    ):
        bad = [g for g in given if g not in allowed]
        if bad:
            parser.error(f"{name}: unknown {', '.join(bad)}; choose from {', '.join(allowed)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Write the profile of every requested row; exit 2 without a CUDA device."""
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("profile_step needs a CUDA device (it reads device kernel times).", file=sys.stderr)
        return 2
    if args.hashed_dropout:
        use_hashed_dropout()
    out = open(args.out, "a") if args.out else None  # noqa: SIM115 - appended row by row
    device = torch.device("cuda")

    def write(text: str) -> None:
        print(text, end="", flush=True)
        if out:
            out.write(text)
            out.flush()

    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = f"compiled ({args.compile_mode or 'default'})" if args.compile else "eager"
    write(
        f"# Step profile: {args.task}, {mode}, bf16, "
        f"{short_device_name(device)}, {stamp}\n\nCommand: `python -m experiments.profile_step "
        f"{' '.join(map(portable_argument, sys.argv[1:] if argv is None else argv))}`\n"
        f"\nCommit: `{git_commit()}`.\n"
    )
    profile_rows(args, write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
