"""Train one LRA configuration: ``python train.py attention=performer task=listops``.

Thin Hydra entry; everything happens in :func:`experiments.train.main`. Before Hydra runs,
the command-line overrides are checked so that a wrong group option or an unknown key ends
with one sentence and exit code 2 (see :mod:`experiments.cli`).
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from experiments.cli import answer_ctrl_c, precheck_or_exit
from experiments.config import register_resolvers

register_resolvers()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Compose -> validate -> fit -> test -> metrics.json."""
    from experiments.train import main as train_main  # heavy imports after the precheck

    return train_main(cfg)


if __name__ == "__main__":
    answer_ctrl_c()
    precheck_or_exit(sys.argv[1:])
    main()
    from experiments.train import FAILED_JOBS

    if FAILED_JOBS:  # a -m sweep in which some job failed
        print(f"error: {len(FAILED_JOBS)} sweep job(s) failed: {FAILED_JOBS[0]}", file=sys.stderr)
        sys.exit(1)
