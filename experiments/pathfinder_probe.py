r"""Can a preset's sequence model read the image layout? Spatial probes on Pathfinder images.

Usage::

    python -m experiments.pathfinder_probe --preset lst-dct-pathfinder --target columns
        [--steps 800] [--batch-size 64] [--lr 1e-3] [--eval-every 100] [--eval-images 1000]
        [--data-dir data] [--device auto] [--threads N] [--seed 0] [--out FILE] [OVERRIDE ...]

The model is ``experiment=lra/<preset>`` plus the Hydra ``OVERRIDE`` arguments, built as
``train.py`` builds it, and reads the Pathfinder images of the data module's splits as token
sequences with the key mask training gives them (:class:`MaskedAsTrained`). It trains with
AdamW (betas 0.9/0.98, no weight decay, a constant learning rate; the preset's dropout) on one
of three labels of the same images:

- ``rows``: does the top half hold more ink than the bottom half
  (:math:`\sum_{r < S/2} x_{r,c} > \sum_{r \ge S/2} x_{r,c}`), a function of the row
  :math:`\lfloor p / S \rfloor` of each token ``p``;
- ``columns``: does the left half hold more ink than the right half, a function of the column
  :math:`p \bmod S`;
- ``labels``: the Pathfinder labels (are the two markers connected).

``rows`` and ``columns`` are the same predicate turned by 90 degrees, so a model that learns one
and not the other, in the same number of steps, reads one coordinate of a token from its
positional input more easily than the other. Evaluation is on
the first ``--eval-images`` validation images against the majority class of their labels.
Writes a Markdown table (step, train loss of the last batch, validation accuracy in eval mode
and with the model's dropout active as in training) with the command, commit, device and date.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from experiments.config.compose import compose_experiment
from experiments.data.datamodule import key_mask
from experiments.pathfinder_check import accuracy, pick_device, split_pixels
from experiments.report_text import command_line, emit, utc_stamp
from experiments.results import git_commit

TARGETS = ("rows", "columns", "labels")


class MaskedAsTrained(torch.nn.Module):
    """The preset's model called on token ids with the key mask training gives it.

    Under ``task.mask=lra_nonzero`` (LRA's ``inputs > 0``) every token 0, a black pixel, is
    masked, as the data module masks it; under ``lengths`` a full-length image has no mask.
    """

    def __init__(self, model: torch.nn.Module, mask_mode: str) -> None:
        super().__init__()
        self.model = model
        self.mask_mode = mask_mode

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits (B, C) of token ids (B, N)."""
        mask = key_mask(None, tokens, self.mask_mode)  # (B, N) or None
        return self.model(tokens, attention_mask=mask)


def split_tokens(datamodule, split: str) -> tuple[Tensor, Tensor]:  # noqa: ANN001
    """``(tokens (M, N) int64, labels (M,) int64)`` of a split of the Pathfinder data module."""
    pixels, labels = split_pixels(datamodule, split)  # (M, N) uint8, (M,)
    return torch.from_numpy(pixels.astype(np.int64)), labels


def probe_labels(tokens: Tensor, labels: Tensor, target: str) -> Tensor:
    """The labels of ``target`` for row-major square images ``tokens`` (M, S * S)."""
    if target == "labels":
        return labels
    side = int(round(tokens.shape[1] ** 0.5))
    image = tokens.view(-1, side, side).float()  # (M, S, S): rows, columns
    if target == "rows":
        first, second = image[:, : side // 2], image[:, side - side // 2 :]  # top, bottom
    elif target == "columns":
        first, second = image[:, :, : side // 2], image[:, :, side - side // 2 :]  # left, right
    else:
        raise ValueError(f"unknown target '{target}'; choose one of {', '.join(TARGETS)}")
    return (first.sum((1, 2)) > second.sum((1, 2))).long()  # (M,)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(
        prog="python -m experiments.pathfinder_probe", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--preset", default="lst-dct-pathfinder", help="conf/experiment/lra/<preset>")
    p.add_argument("--target", choices=TARGETS, default="columns")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--eval-images", type=int, default=1000)
    p.add_argument("--data-dir", default="data", help="LRA data root (default: data)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="also write the table here")
    p.add_argument(
        "overrides", nargs="*", help="Hydra overrides, e.g. model.positional_encoding=learned"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Train the preset's model on the probe labels and print (and write) the table."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    from experiments.train import build_datamodule, build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    exp = compose_experiment(
        [f"experiment=lra/{args.preset}", f"paths.data_dir={args.data_dir}", *args.overrides]
    )
    dm = build_datamodule(exp)  # the training run's files and split
    dm.prepare_data()
    dm.setup("fit")
    x_train, y_train = split_tokens(dm, "train")
    x_val, y_val = split_tokens(dm, "val")
    x_val, y_val = x_val[: args.eval_images], y_val[: args.eval_images]
    y_train = probe_labels(x_train, y_train, args.target)
    y_val = probe_labels(x_val, y_val, args.target)
    majority = max(y_val.float().mean().item(), 1 - y_val.float().mean().item())
    device = pick_device(args.device)
    x_train, y_train, x_val, y_val = (t.to(device) for t in (x_train, y_train, x_val, y_val))
    torch.manual_seed(args.seed)
    model = MaskedAsTrained(build_model(exp, dm), exp.task.mask).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.0)
    rows, start = [], time.monotonic()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(y_train), (args.batch_size,), device=device)
        loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % args.eval_every == 0 or step == args.steps:
            val = accuracy(model, x_val, y_val, batch=256)
            val_dropout = accuracy(model, x_val, y_val, batch=256, dropout=True)
            elapsed = time.monotonic() - start
            rows.append(
                f"| {step} | {elapsed:.0f} | {loss.item():.4f} | {100 * val:.1f} "
                f"| {100 * val_dropout:.1f} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    extra = " ".join(args.overrides) or "none"
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({torch.get_num_threads()} thread{'s' if torch.get_num_threads() > 1 else ''})"
    )
    emit(
        [
            f"# Spatial probe: {args.preset}, target `{args.target}`",
            "",
            f"Command: `{command_line('experiments.pathfinder_probe', argv)}`; commit "
            f"`{git_commit()}`, {where}, {utc_stamp()}. "
            f"Overrides: {extra}. Key mask: `task.mask={exp.task.mask}`. "
            f"Train {len(y_train)} images, evaluated on {len(y_val)} "
            f"validation images, whose majority class scores {100 * majority:.1f} %.",
            "",
            "| step | seconds | train loss (last batch) | validation acc % "
            "| validation acc %, dropout on |",
            "|---:|---:|---:|---:|---:|",
            *rows,
        ],
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
