"""Can a plain CNN learn a Pathfinder folder? A check of the data, independent of the mixers.

Usage::

    python -m experiments.pathfinder_check [--resolution 32]
        [--difficulty curv_contour_length_14] [--data-dir data] [--seconds 180]
        [--device auto] [--out results/pathfinder_check.md]

The folder is read through the same data module as training (``task=pathfinder``, the same
split), so the pixels and labels are those the sequence models see. A residual CNN (dilated
3x3 convolutions, global max pooling, about 0.2M parameters) trains with AdamW on the training
split for ``--seconds`` and is evaluated on the validation split after every epoch. A folder
whose labels follow its images is learnable this way well above chance; one that stays at
chance points at the data, not at the token mixers. Writes a Markdown table (epoch, steps,
seconds, train loss, validation accuracy) with the command, commit, device and date.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from experiments.config.compose import compose_experiment
from experiments.report_text import command_line, emit, utc_stamp
from experiments.results import git_commit


class Block(nn.Module):
    """``x + conv(relu(norm(conv(relu(norm(x))))))`` with dilated 3x3 convolutions."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x + self.body(x)


def make_cnn(channels: int = 48) -> nn.Module:
    """Stem, six residual blocks of dilations 1, 2, 4, 8, 2, 1, global max pool, linear."""
    blocks = [Block(channels, d) for d in (1, 2, 4, 8, 2, 1)]
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1),
        *blocks,
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, 2),
    )


def split_pixels(datamodule, split: str) -> tuple[np.ndarray, Tensor]:  # noqa: ANN001
    """``(pixels (M, N) uint8, labels (M,) int64)`` of a split of the Pathfinder data module."""
    arrays = datamodule.datasets[split].arrays
    labels = torch.from_numpy(np.array(arrays["labels"], dtype=np.int64))  # (M,)
    return np.array(arrays["tokens"], dtype=np.uint8).reshape(len(labels), -1), labels


def split_images(datamodule, split: str, resolution: int) -> tuple[Tensor, Tensor]:  # noqa: ANN001
    """``(images (M, 1, R, R) uint8, labels (M,))`` of a split of the Pathfinder data module."""
    pixels, labels = split_pixels(datamodule, split)  # (M, R * R), (M,)
    images = torch.from_numpy(pixels).view(-1, 1, resolution, resolution)  # (M, 1, R, R)
    return images, labels


def pick_device(choice: str) -> torch.device:
    """``auto`` (CUDA when there is one, else the CPU), ``cpu`` or ``cuda``."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def accuracy(
    model: nn.Module,
    inputs: Tensor,
    labels: Tensor,
    batch: int = 1024,
    prepare: Callable[[Tensor], Tensor] | None = None,
    dropout: bool = False,
) -> float:
    """Accuracy of ``model`` on ``inputs`` in batches, without gradients.

    Args:
        model: The classifier; left in training mode on return.
        inputs: ``(M, ...)`` model inputs, or what ``prepare`` turns into them.
        labels: ``(M,)`` class ids (the predictions are compared on their device).
        batch: Inputs per forward pass.
        prepare: Applied to each batch of ``inputs`` first (device, dtype, scaling).
        dropout: Evaluate in training mode (dropout active, as during the training steps)
            instead of eval mode. The two differ when dropout's inverted scaling, which keeps
            each unit's mean, does not keep the mean of what follows it (LayerNorm's variance,
            GELU): the pooled features then shift between the modes, and a classifier that
            separates the classes by a small margin can flip its answers.
    """
    model.train(dropout)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            x = inputs[i : i + batch] if prepare is None else prepare(inputs[i : i + batch])
            predicted = model(x).argmax(1).to(labels.device)  # (b,)
            correct += (predicted == labels[i : i + batch]).sum().item()
    model.train()
    return correct / max(1, len(labels))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(
        prog="python -m experiments.pathfinder_check", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--difficulty", default="curv_contour_length_14")
    p.add_argument("--data-dir", default="data", help="LRA data root (default: data)")
    p.add_argument("--seconds", type=float, default=180.0, help="training time (default 180)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="also write the table here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Load the folder, train the CNN for the time given, print (and write) the table."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    from experiments.train import build_datamodule

    exp = compose_experiment(
        [
            "task=pathfinder",
            f"task.resolution={args.resolution}",
            f"task.difficulty={args.difficulty}",
            f"paths.data_dir={args.data_dir}",
        ]
    )
    dm = build_datamodule(exp)  # as train.py builds it: same files, same split
    dm.prepare_data()
    dm.setup("fit")
    device = pick_device(args.device)
    x_train, y_train = split_images(dm, "train", args.resolution)
    x_val, y_val = split_images(dm, "val", args.resolution)
    torch.manual_seed(args.seed)
    model = make_cnn().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    rows, steps, start, epoch = [], 0, time.monotonic(), 0
    majority = max(y_val.float().mean().item(), 1 - y_val.float().mean().item())
    while time.monotonic() - start < args.seconds:
        epoch += 1
        order = torch.randperm(len(y_train))
        losses = []
        for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
            idx = order[i : i + args.batch_size]
            x = x_train[idx].to(device).float().div_(255.0)  # (B, 1, R, R)
            loss = nn.functional.cross_entropy(model(x), y_train[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
            steps += 1
            if time.monotonic() - start >= args.seconds:
                break
        train_loss = torch.stack(losses).mean().item() if losses else float("nan")
        val = accuracy(model, x_val, y_val, prepare=lambda x: x.to(device).float().div_(255.0))
        elapsed = time.monotonic() - start
        rows.append(f"| {epoch} | {steps} | {elapsed:.0f} | {train_loss:.4f} | {100 * val:.2f} |")
        print(rows[-1], file=sys.stderr, flush=True)
    command = command_line("experiments.pathfinder_check", argv)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    emit(
        [
            f"# Pathfinder-{args.resolution} {args.difficulty}: a CNN on the same splits",
            "",
            f"Command: `{command}`; commit `{git_commit()}`, {name}, {utc_stamp()}. "
            f"Train {len(y_train)}, validation {len(y_val)} images; always answering the "
            f"validation split's majority class scores {100 * majority:.2f} %.",
            "",
            "| epoch | steps | seconds | train loss | validation acc % |",
            "|---:|---:|---:|---:|---:|",
            *rows,
        ],
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
