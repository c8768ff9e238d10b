"""Bytes each token mixer keeps for its backward: one layer forward, counted by autograd hooks.

Usage::

    python -m experiments.saved_activations [--length 4096] [--batch 2] [--hidden 256]
        [--heads 4] [--dtype bf16|fp32] [--mixers softmax,lst-dct,...] [--lst-path auto|...]
        [--compile] [--out <file.md>]

Every tensor that autograd saves during one forward of the layer on ``x`` of shape
``(batch, N, hidden)`` passes through :func:`torch.autograd.graph.saved_tensors_hooks`; the
distinct storages are summed. The sum is the part of a layer's peak memory that waits for the
backward, counted exactly and without allocator effects, on the CPU (``bf16`` runs the forward
under ``torch.autocast(bfloat16)``). It is reported in MiB and in *units*: one bfloat16 copy of
``x`` (``B N D`` x 2 bytes). Parameters saved by the projections are included (they are
counted once however often they are saved).

``--compile`` counts what the layer compiled by ``torch.compile`` saves (after one untimed
forward and backward that compile it): the compiler's partitioner chooses what to keep and what
to recompute in the backward, so the count can differ from the eager one either way.

The CPU takes other kernels than a GPU where those differ: softmax attention saves the
fused kernel's output and log-sum-exp on both, but with attention dropout the CPU falls back
to the math kernel and saves the ``N x N`` weights (so dropout is 0 here), and the LST layers
take their ``fast`` path on the CPU unless ``--lst-path`` sets another.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from experiments.bench_specs import (
    add_backward_options,
    build_mixer,
    default_specs,
    set_lst_path,
    set_recompute,
    unknown_mixers,
)
from experiments.report_text import command_line, emit, utc_stamp
from experiments.run_record import git_commit


def forward_autocast(x: Tensor, dtype: str) -> torch.autocast:
    """``torch.autocast(bfloat16)`` on ``x``'s device for ``bf16``, a disabled one for ``fp32``."""
    return torch.autocast(x.device.type, torch.bfloat16, enabled=dtype == "bf16")


def saved_bytes(forward: Callable[[Tensor], object], x: Tensor, dtype: str) -> int:
    """Bytes of the distinct storages autograd saves during ``forward(x)``.

    Args:
        forward: The module (or any callable) run once on ``x``.
        x: Input that requires grad.
        dtype: ``fp32``, or ``bf16`` for a forward under ``torch.autocast(bfloat16)``.
    """
    storages: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), forward_autocast(x, dtype):
        forward(x)
    return sum(storages.values())


def compiled_forward(layer: nn.Module, x: Tensor, dtype: str) -> Callable[[Tensor], object]:
    """``torch.compile(layer)``, compiled by one forward and backward on ``x`` (not counted)."""
    compiled = torch.compile(layer)
    with forward_autocast(x, dtype):
        out = compiled(x)
    out = out[0] if isinstance(out, tuple) else out
    out.float().sum().backward()
    x.grad = None
    return compiled


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--length", type=int, default=4096, help="sequence length N")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    p.add_argument("--mixers", default=None, help="comma list of labels (default: all)")
    p.add_argument(
        "--compile", action="store_true", help="count what the torch.compile'd layer saves"
    )
    add_backward_options(p)
    p.add_argument("--out", type=Path, default=None, help="also write the table here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build each mixer, count what one forward saves, print (and write) the table."""
    args = parse_args(argv)
    set_recompute(args.recompute)
    specs = default_specs(args.hidden, args.heads)
    if args.mixers:
        wanted = args.mixers.split(",")
        error = unknown_mixers(wanted, specs)
        if error:
            print(error)
            return 2
        specs = [s for s in specs if s.label in wanted]
    unit = args.batch * args.length * args.hidden * 2  # one bfloat16 copy of x
    words = sys.argv[1:] if argv is None else argv
    lines = [
        f"# Saved for the backward: one layer forward, N = {args.length}, {args.dtype}"
        + (", compiled" if args.compile else ""),
        "",
        f"Command: `{command_line('experiments.saved_activations', words)}`; CPU, torch "
        f"{torch.__version__}, commit `{git_commit(short=True)}`, {utc_stamp()}. Unit: one "
        f"bfloat16 copy of x = (B={args.batch}, N={args.length}, D={args.hidden}), "
        f"{unit / 2**20:.1f} MiB.",
        "",
        "| mixer | saved MiB | units |",
        "| --- | ---: | ---: |",
    ]
    for spec in specs:
        torch.manual_seed(0)
        layer: nn.Module = build_mixer(spec, args.length).train()
        set_lst_path(layer, args.lst_path)
        x = torch.randn(args.batch, args.length, args.hidden, requires_grad=True)  # (B, N, D)
        forward: Callable[[Tensor], object] = layer
        if args.compile:
            torch._dynamo.reset()
            forward = compiled_forward(layer, x, args.dtype)
        size = saved_bytes(forward, x, args.dtype)
        lines.append(f"| {spec.label} | {size / 2**20:.1f} | {size / unit:.2f} |")
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
