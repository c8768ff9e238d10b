"""How much of the input reaches the classifier at initialisation, per init arm.

Usage::

    python -m experiments.init_signal experiment=lra/softmax-pathfinder
        --arm "" --arm "model.init_weights=xavier attention.init_weights=xavier"

Positional arguments are Hydra overrides shared by every arm; each ``--arm`` adds its own
(space-separated; ``""`` is the config as composed). For each arm the model is built as
``train.py`` builds it (seeded by ``seed``), put in eval mode (no dropout), and run on the
first ``--batches`` validation batches of the task's real data. A model whose logits barely
depend on the input starts training with almost no signal; this shows it before any GPU time
is spent. Per arm, over the ``M`` examples:

- ``feature spread``: ``mean_j std_i f_ij / mean_j |mean_i f_ij|``, for the pooled features
  ``f`` (the head's input): how much the examples differ, relative to what they share;
- ``logit spread``: ``mean_c std_i z_ic``, the logits' standard deviation across examples;
- ``logit margin spread``: ``std_i (z_i1 - z_i0)`` for two classes, else ``std_i max_c z_ic``;
- ``head spread``: ``median_j std_i h_ij`` for the pre-activations ``h = W f + b`` of the
  head's hidden ReLU layer (``Dense -> ReLU -> Dense``), with ``head offset``
  ``median_j |mean_i h_ij|`` beside it, and ``live head units``: the units with ``h_ij > 0``
  for some example. A unit whose ``h_ij`` stays below zero for every example passes no gradient
  again; Adam moves its bias by about the learning rate per step whatever the gradient's size,
  so a head spread small against ``lr`` times the warm-up steps lets the biases' drift kill
  units while the encoder has nothing to tell the head yet.

Writes a Markdown table to stdout (and ``--out``) with the command, commit and date.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch
from torch import Tensor

from experiments.config.compose import compose_experiment
from experiments.report_text import command_line, emit, utc_stamp
from experiments.results import git_commit


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.init_signal", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides shared by every arm")
    parser.add_argument(
        "--arm", action="append", default=None, help="overrides of one arm ('' = as composed)"
    )
    parser.add_argument("--batches", type=int, default=1, help="validation batches (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    return parser.parse_args(argv)


def spreads(features: Tensor, logits: Tensor) -> tuple[float, float, float]:
    """``(feature spread, logit spread, logit margin spread)`` of (M, F) features, (M, C) logits."""
    f = features.double()
    shared = f.mean(0).abs().mean().clamp(min=1e-30)
    feature = (f.std(0).mean() / shared).item()
    z = logits.double()
    margin = z[:, 1] - z[:, 0] if z.shape[1] == 2 else z.max(1).values  # (M,)
    return feature, z.std(0).mean().item(), margin.std().item()


def head_spread(head: torch.nn.Module, features: Tensor) -> tuple[float, float, int] | None:
    """``(head spread, head offset, live head units)`` of ``head`` on (M, F) pooled features.

    None when ``head`` has no hidden ``dense`` layer (see the module docstring).
    """
    dense = getattr(head, "dense", None)
    if not isinstance(dense, torch.nn.Linear):
        return None
    with torch.no_grad():
        h = dense(features.to(dense.weight.dtype)).double()  # (M, H)
    return h.std(0).median().item(), h.mean(0).abs().median().item(), int((h > 0).any(0).sum())


def measure(
    overrides: list[str], batches: int
) -> tuple[float, float, float, tuple[float, float, int] | None]:
    """Build the arm's model and datamodule; the spreads over ``batches`` validation batches."""
    from experiments.train import build_datamodule, build_model

    exp = compose_experiment(overrides)
    torch.manual_seed(exp.seed)
    dm = build_datamodule(exp)
    if dm.is_pair:
        raise SystemExit("error: init_signal reads single-sequence tasks; retrieval is a pair task")
    dm.prepare_data()
    dm.setup("fit")
    model = build_model(exp, dm).eval()
    pooled: list[Tensor] = []
    hook = model.head.register_forward_hook(lambda _m, args, _out: pooled.append(args[0]))
    logits: list[Tensor] = []
    with torch.no_grad():
        for i, batch in enumerate(dm.val_dataloader()):
            if i >= batches:
                break
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            logits.append(model(**inputs).float())  # (B, C)
    hook.remove()
    features = torch.cat(pooled).float()  # (M, F)
    return (*spreads(features, torch.cat(logits)), head_spread(model.head, features))


def main(argv: list[str] | None = None) -> int:
    """Measure every arm and print the table."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    arms = args.arm if args.arm is not None else [""]
    rows = []
    for arm in arms:
        feature, logit, margin, head = measure([*args.overrides, *shlex.split(arm)], args.batches)
        spread, offset, live = (
            (f"{head[0]:.3g}", f"{head[1]:.3g}", str(head[2])) if head else ("-", "-", "-")
        )
        rows.append(
            f"| {arm or '(as composed)'} | {feature:.3g} | {logit:.3g} | {margin:.3g} "
            f"| {spread} | {offset} | {live} |"
        )
        print(rows[-1], file=sys.stderr, flush=True)
    command = command_line("experiments.init_signal", argv)
    emit(
        [
            "# Input signal at initialisation",
            "",
            f"Command: `{command}`; commit `{git_commit()}`, {utc_stamp()}, "
            f"torch {torch.__version__}, CPU, eval mode (no dropout).",
            "",
            "| arm | feature spread | logit spread | logit margin spread | head spread "
            "| head offset | live head units |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
        ],
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
