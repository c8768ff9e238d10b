"""Peak memory of one layer's forward and backward on the CPU, tracked tensor by tensor.

    python -m experiments.peak_memory [--lengths 1024 4096 8192] [--batch 8] [--hidden 256]
        [--heads 4] [--mixers softmax,lst-dct,...] [--lst-path auto|gemm|factored|dense|fast]
        [--recompute auto|on|off] [--out <file.md>]

Each mixer is built as the layer benchmark builds it (``experiments.bench_specs``), run once
to warm its caches, then once more under
``torch.distributed._tools.mem_tracker.MemTracker``, which follows every tensor storage the
step creates and frees: the step is ``mean(out.float()^2).backward()`` under
``torch.autocast("cpu", torch.bfloat16)`` on ``x`` of shape ``(batch, N, hidden)``, as in
``experiments.bench``. The peak is the largest sum of live storages (parameters, their
gradients, activations and temporaries), without allocator effects, so it shows what the
code keeps and creates, device-independent where the device runs the same operations (the
LST paths do; CPU and CUDA softmax use different attention kernels). Each mixer's peak is
also given in units of one bfloat16 copy of ``x`` and against the first mixer listed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

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


def peak_bytes(layer: nn.Module, x: torch.Tensor) -> int:
    """The largest total of live tensor storages during one forward and backward of ``layer``."""
    from torch.distributed._tools.mem_tracker import MemTracker

    def step() -> None:
        with torch.autocast("cpu", torch.bfloat16):
            out = layer(x)
            out = out[0] if isinstance(out, tuple) else out  # (B, N, D)
            loss = out.float().pow(2).mean()
        loss.backward()
        layer.zero_grad(set_to_none=True)
        x.grad = None

    step()  # caches (transform matrices, twiddles) are built before the tracked step
    tracker = MemTracker()
    tracker.track_external(layer, x)
    with tracker:
        step()
    peak = tracker.get_tracker_snapshot("peak")
    return int(sum(device.get("Total", 0) for device in peak.values()))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 8192])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument(
        "--mixers",
        default="softmax,lst-dct,lst-dst,lst-hadamard,lst-mixed,fnet,global_filter",
        help="comma list of labels; the first is the reference of the ratio column",
    )
    add_backward_options(p)
    p.add_argument("--out", type=Path, default=None, help="also write the table here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure every mixer at every length; print (and write) one table."""
    args = parse_args(argv)
    set_recompute(args.recompute)
    all_specs = default_specs(args.hidden, args.heads)
    wanted = args.mixers.split(",")
    error = unknown_mixers(wanted, all_specs)
    if error:
        print(error)
        return 2
    specs = {s.label: s for s in all_specs}
    words = sys.argv[1:] if argv is None else argv
    lines = [
        f"# Peak memory of one layer step, CPU, bf16 autocast, batch {args.batch}",
        "",
        f"Command: `{command_line('experiments.peak_memory', words)}`; CPU, torch "
        f"{torch.__version__}, commit `{git_commit(short=True)}`, {utc_stamp()}. LST path "
        f"`{args.lst_path}`, backward recompute `{args.recompute}`. Unit: one bfloat16 "
        f"copy of x = (B, N, D={args.hidden}); ratio: against {wanted[0]} at the same N.",
        "",
        "| mixer | N | peak MiB | units | ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for n in args.lengths:
        unit = args.batch * n * args.hidden * 2
        reference = None
        for label in wanted:
            torch.manual_seed(0)
            layer = build_mixer(specs[label], n).train()
            set_lst_path(layer, args.lst_path)
            x = torch.randn(args.batch, n, args.hidden, requires_grad=True)  # (B, N, D)
            size = peak_bytes(layer, x)
            reference = reference or size
            lines.append(
                f"| {label} | {n} | {size / 2**20:.1f} | {size / unit:.2f} | "
                f"{size / reference:.3f} |"
            )
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
