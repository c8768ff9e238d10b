"""Profile LRA training steps and time single layers on one CUDA GPU (development tool).

Usage::

    python scripts/profile_step.py [--profile task:mixer ...] [--layers] [--out DIR]

``--profile task:mixer[:fast|dense]``: three steps of the preset's training step (as
``experiments.bench_step`` times it) under ``torch.profiler``; prints the kernel table (top
kernels by device time) and writes it to ``DIR/profile_<task>_<mixer>.txt``. The optional
third field forces the LST mixing path.

``--layers``: bf16 forward+backward of one layer (batch 8, hidden 256, 4 heads) at
N = 1024 .. 65536 for softmax, bare SDPA plus four projections, the LST layers (auto path,
and the fast path forced), fnet, global_filter and performer: median milliseconds over 10
timed steps and peak bytes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from experiments.bench_step import load_setup, make_train_step, random_batch


def _set_lst_path(path: str) -> None:
    from spectrans.layers.attention.lst import _SpectralFilterAttention

    _SpectralFilterAttention.mixing_path = path  # type: ignore[assignment]


def profile_step(task: str, mixer: str, path: str, out: Path) -> None:
    """Kernel table of three training steps after three warm-up steps."""
    from experiments.module import make_optimizer, parameter_groups

    _set_lst_path(path)
    device = torch.device("cuda")
    setup = load_setup(mixer, task, None, None)
    model = setup.model.to(device).train()
    data = random_batch(setup, device)
    inputs = {k: v for k, v in data.items() if k != "labels"}
    opt = make_optimizer(parameter_groups(model, 0.0), setup.optimizer)
    step = make_train_step(model, lambda: model(**inputs), data["labels"], opt, "bf16", device)
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
    table = prof.key_averages().table(
        sort_by="cuda_time_total", row_limit=18, max_name_column_width=60
    )
    text = f"== {task} {mixer} path={path}\n{table}\n"
    print(text[:3000], flush=True)
    (out / f"profile_{task}_{mixer}_{path}.txt").write_text(text)
    _set_lst_path("auto")


class BareSDPA(nn.Module):
    """q/k/v/out projections around one SDPA call (the softmax layer's floor)."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(hidden, hidden) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, N, D)
        """Projections, SDPA, output projection."""
        b, n, _ = x.shape
        q, k, v = (
            p(x).view(b, n, self.heads, -1).transpose(1, 2) for p in (self.q, self.k, self.v)
        )
        out = nn.functional.scaled_dot_product_attention(q, k, v)  # (B, H, N, d)
        return self.o(out.transpose(1, 2).reshape(b, n, -1))


def time_layer(layer: nn.Module, n: int, batch: int, hidden: int) -> tuple[float, int]:
    """Median ms of bf16 forward+backward, and peak bytes."""
    device = torch.device("cuda")
    layer = layer.to(device)
    x = torch.randn(batch, n, hidden, device=device, requires_grad=True)

    def step() -> None:
        with torch.autocast("cuda", torch.bfloat16):
            y = layer(x)
        y.float().pow(2).mean().backward()

    step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(10):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), int(torch.cuda.max_memory_allocated())


def layer_table(out: Path) -> None:
    """Layer timings at N = 1024 .. 65536 (see the module docstring)."""
    from spectrans.registry import build_layer

    hidden, heads, batch = 256, 4, 8
    lines = ["mixer,N,path,ms,peak_bytes"]
    builders = {
        "softmax": lambda: build_layer(
            {"name": "softmax", "hidden_dim": hidden, "num_heads": heads}
        ),
        "bare_sdpa": lambda: BareSDPA(hidden, heads),
        "fnet": lambda: build_layer({"name": "fnet", "hidden_dim": hidden}),
        "global_filter": lambda: build_layer({"name": "global_filter", "hidden_dim": hidden}),
        "performer": lambda: build_layer(
            {"name": "performer", "hidden_dim": hidden, "num_heads": heads}
        ),
    }
    for t in ("dct", "dst", "hadamard", "mixed"):
        builders[f"lst-{t}"] = lambda t=t: build_layer(
            {"name": "lst", "hidden_dim": hidden, "num_heads": heads, "transform_type": t}
        )
    for n in (1024, 2048, 4096, 16384, 65536):
        for name, build in builders.items():
            paths = ["auto", "fast"] if name.startswith("lst") and n <= 2048 else ["auto"]
            for path in paths:
                _set_lst_path(path)
                try:
                    ms, peak = time_layer(build(), n, batch, hidden)
                    line = f"{name},{n},{path},{ms:.3f},{peak}"
                except Exception as err:  # noqa: BLE001
                    line = f"{name},{n},{path},{type(err).__name__},"
                torch.cuda.empty_cache()
                print(line, flush=True)
                lines.append(line)
    _set_lst_path("auto")
    (out / "layers.csv").write_text("\n".join(lines) + "\n")


def sdpa_backends(out: Path) -> None:
    """bf16 SDPA forward+backward per backend at the Pathfinder shape, and LayerNorm(32)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    device = torch.device("cuda")
    lines = ["op,backend,ms"]
    for shape in ((512, 4, 1024, 8), (32, 8, 2000, 64)):
        q, k, v = (
            torch.randn(shape, device=device, dtype=torch.bfloat16, requires_grad=True)
            for _ in range(3)
        )
        for name in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION"):
            backend = getattr(SDPBackend, name)

            def step(backend=backend, q=q, k=k, v=v) -> None:
                with sdpa_kernel(backend):
                    out = nn.functional.scaled_dot_product_attention(q, k, v)
                out.sum().backward()

            try:
                ms = _median_ms(step)
                line = f"sdpa{list(shape)},{name},{ms:.3f}"
            except Exception as err:  # noqa: BLE001
                line = f"sdpa{list(shape)},{name},{type(err).__name__}"
            print(line, flush=True)
            lines.append(line)
    x = torch.randn(512 * 1024, 32, device=device, requires_grad=True)
    ln = nn.LayerNorm(32).to(device)
    for name, fn in (("eager", ln), ("compiled", torch.compile(ln))):

        def step(fn=fn) -> None:
            fn(x).sum().backward()

        line = f"layernorm32[524288],{name},{_median_ms(step):.3f}"
        print(line, flush=True)
        lines.append(line)
    (out / "sdpa.csv").write_text("\n".join(lines) + "\n")


def _median_ms(step) -> float:
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(10):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main() -> int:
    """Parse the options and run the profiles and the layer table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--profile", nargs="*", default=[])
    p.add_argument("--layers", action="store_true")
    p.add_argument("--sdpa", action="store_true", help="SDPA backends and LayerNorm(32)")
    p.add_argument("--out", default=".")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("this tool needs a CUDA device", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in args.profile:
        task, mixer, *rest = spec.split(":")
        profile_step(task, mixer, rest[0] if rest else "auto", out)
    if args.layers:
        layer_table(out)
    if args.sdpa:
        sdpa_backends(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
