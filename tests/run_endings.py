"""Callbacks that end a test run the way a user or a machine would."""

from __future__ import annotations

import lightning.pytorch as pl


class CtrlCAt(pl.Callback):
    """Ctrl-C (``KeyboardInterrupt``) right after optimizer step ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step == self.at:
            raise KeyboardInterrupt
