"""LightningModule for LRA: single-sequence classification and dual-encoder retrieval.

The module wraps any ``spectrans`` classifier (see docs/interfaces.md §2) and owns the loss,
the accuracies, the optimizer and the learning-rate schedule. Batches are the dicts of §3.

Schedules (``s`` = optimizer steps taken + 1, ``w`` = warmup steps, ``T`` = max steps), as
multipliers of ``optimizer.lr``:

- ``rsqrt`` (LRA): ``min(1, s/w) / sqrt(max(s, w))``; ``optimizer.lr`` is the LRA factor.
- ``cosine``: ``s/w`` for ``s < w``, else ``r + (1 - r) (1 + cos(pi (s - w)/(T - w))) / 2``.
- ``constant``: ``min(1, s/w)`` (1 when ``w = 0``).
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Iterable
from contextlib import nullcontext
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torchmetrics import MaxMetric

from experiments.config import OptimizerConfig, SchedulerConfig
from experiments.metrics import RunningAccuracy, WeightedMean
from spectrans.models.heads import ClassifierHead

_NO_DECAY_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.RMSNorm)


def lr_multiplier(step: int, scheduler: SchedulerConfig, max_steps: int) -> float:
    """Schedule multiplier of ``optimizer.lr`` at optimizer step ``step`` (0-based).

    Args:
        step: Optimizer steps already taken.
        scheduler: Which schedule and its warmup.
        max_steps: Total optimizer steps (cosine only).

    Returns:
        The factor ``lr(step) / optimizer.lr`` (see the module docstring).
    """
    s = step + 1
    w = scheduler.warmup_steps
    warm = min(1.0, s / w) if w > 0 else 1.0
    if scheduler.name == "rsqrt":
        return warm / math.sqrt(max(s, w, 1))
    if scheduler.name == "cosine":
        if s < w:
            return warm
        progress = min(1.0, (s - w) / max(1, max_steps - w))
        r = scheduler.min_lr_ratio
        return r + (1.0 - r) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return warm


def make_optimizer(groups: list[dict[str, Any]], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over ``groups``; the fused CUDA kernel when every parameter is on CUDA.

    The fused kernel updates all parameters in a few launches (the same update rule as the
    per-tensor loop, up to rounding).
    """
    params = [p for group in groups for p in group["params"]]
    fused = bool(params) and all(p.is_cuda for p in params)
    cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return cls(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, fused=fused or None)


def parameter_groups(
    model: nn.Module, weight_decay: float, decay_all: bool = False
) -> list[dict[str, Any]]:
    """Split parameters into a decayed group (weight matrices) and an undecayed one.

    Biases, every parameter of a normalisation layer and any parameter with fewer than two
    dimensions (scales, spectral filters of one axis) get no weight decay, unless
    ``decay_all`` (the LRA code's Adam decays every parameter): then one group holds all.
    """
    if decay_all:
        return [
            {
                "params": [p for p in model.parameters() if p.requires_grad],
                "weight_decay": weight_decay,
            }
        ]
    no_decay_ids: set[int] = set()
    for module in model.modules():
        if isinstance(module, _NO_DECAY_TYPES):
            no_decay_ids.update(id(p) for p in module.parameters(recurse=False))
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if id(param) in no_decay_ids or param.ndim < 2 or name.endswith("bias"):
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


class CompileChooser:
    """``compile=auto``: time eager and compiled steps in alternating windows, keep the faster.

    The trial is a list of windows, each ``warmup`` untimed steps then ``timed`` timed ones:
    eager, compiled (its first ``warmup`` steps compile), then ``rounds - 1`` more pairs of
    eager and compiled windows with one untimed step after each switch. A mode's time is the
    median of its windows, so a slow spell of the device (another run sharing the GPU
    starting, compiling or evaluating) that falls in one window does not decide alone, and
    alternating puts both modes under the same conditions. Timing uses device events: one
    synchronisation per window. The faster mode stays for the rest of the run. Runs shorter
    than twice the trial stay eager.
    """

    def __init__(self, steps_left: int, warmup: int = 3, timed: int = 10, rounds: int = 3) -> None:
        first = [("eager", warmup, timed), ("compiled", warmup, timed)]
        again = [("eager", 1, timed), ("compiled", 1, timed)] * (rounds - 1)
        self.windows: list[tuple[str, int, int]] = first + again
        trial = sum(w + t for _, w, t in self.windows)
        self.phase = "trial" if steps_left >= 2 * trial else "done"
        self.count = 0
        self.times: dict[str, list[float]] = {"eager": [], "compiled": []}
        self.ms: dict[str, float] = {}
        self._start: Any = None

    def batch_start(self, module: LRAModule) -> None:
        """Open the timed window at its first step."""
        if self.phase != "done" and self.count == self.windows[0][1]:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()

    def batch_end(self, module: LRAModule) -> None:
        """Close the window after its timed steps; switch to the next window's mode."""
        if self.phase == "done":
            return
        mode, warmup, timed = self.windows[0]
        self.count += 1
        if self.count < warmup + timed:
            return
        end = torch.cuda.Event(enable_timing=True)
        end.record()
        end.synchronize()
        self.times[mode].append(self._start.elapsed_time(end) / timed)
        self.count = 0
        self.windows.pop(0)
        if self.windows:
            module.use_compiled = self.windows[0][0] == "compiled"
            return
        self.phase = "done"
        self.ms = {m: statistics.median(t) for m, t in self.times.items()}
        module.use_compiled = self.ms["compiled"] < self.ms["eager"]
        chosen = "compiled" if module.use_compiled else "eager"
        graphs = compiled_graph_count()
        windows = "; ".join(
            f"{m} " + ", ".join(f"{t:.2f}" for t in ts) for m, ts in self.times.items()
        )
        print(
            f"compile=auto: eager {self.ms['eager']:.2f} ms/step, compiled "
            f"{self.ms['compiled']:.2f} ms/step ({graphs} graph(s) compiled; medians of the "
            f"windows {windows}); using {chosen}",
            file=sys.stderr,
        )
        if graphs > 1:
            print(
                f"compile=auto: the model compiled into {graphs} graphs, not one: graph breaks "
                "split the step into pieces run in between by Python, or changed guards "
                "compiled it again (all of them: TORCH_LOGS=graph_breaks,recompiles)",
                file=sys.stderr,
            )
            for line in compile_diagnosis():
                print(f"compile=auto:   {line}", file=sys.stderr)


def compile_diagnosis(limit: int = 4) -> list[str]:
    """Why TorchDynamo made more than one graph in this process.

    Up to ``limit`` distinct graph-break reasons and up to ``limit`` distinct recompilation
    reasons (the first line of each failed guard), each prefixed by its kind.
    """
    from torch._dynamo.utils import counters, guard_failures

    def distinct_first_lines(reasons: Iterable[object]) -> list[str]:
        out: list[str] = []
        for reason in reasons:
            lines = str(reason).splitlines()
            first = " ".join(lines[0].split()) if lines else ""
            if first and first not in out:
                out.append(first)
        return out[:limit]

    breaks = distinct_first_lines(counters["graph_break"])
    guards = distinct_first_lines(r for rs in guard_failures.values() for r in rs)
    return [f"graph break: {b}" for b in breaks] + [f"recompiled: {g}" for g in guards]


def compiled_graph_count() -> int:
    """Graphs TorchDynamo has compiled in this process (one per frame, guard set, graph break)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class LRAModule(pl.LightningModule):
    """Cross-entropy training of an LRA classifier.

    Logs ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``val/acc_best``,
    ``test/loss`` and ``test/acc`` (accuracies are fractions in [0, 1]).

    Args:
        model: Classifier; ``(B, C)`` logits from the batch tensors.
        num_classes: C.
        is_pair: Retrieval (dual encoder): the batch holds two documents.
        optimizer: Optimizer settings.
        scheduler: Schedule settings.
        max_steps: Total optimizer steps (for cosine).
        compile: ``torch.compile`` the model (True), or ``auto``: :class:`CompileChooser`
            times eager and compiled steps on CUDA and keeps the faster. The compiled
            callable shares the model's parameters and is kept outside the module tree, so
            checkpoints have the same keys either way.
        compile_mode: ``torch.compile`` mode: ``default`` or ``reduce-overhead`` (CUDA graphs;
            every step then marks a new graph iteration before the forward).
        batch_size: The loaders' batch size. When set, the compiled model runs only batches of
            this many rows and a shorter one (the last batch of an epoch or of an evaluation
            split) runs on the eager model, which computes the same function. A compiled
            graph is specialised to the batch size it first saw; a second size would make
            Dynamo recompile with a symbolic batch dimension and then run every later full
            batch on that dynamic graph (slower kernels, a second compilation mid-run). None:
            every batch runs compiled.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        num_classes: int,
        is_pair: bool,
        optimizer: OptimizerConfig,
        scheduler: SchedulerConfig,
        max_steps: int,
        compile: bool | str = False,
        compile_mode: str = "default",
        batch_size: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.batch_size = batch_size
        self.compile_mode = compile
        self.torch_compile_mode = compile_mode
        self.__dict__["_compiled"] = None  # not a submodule: state-dict keys stay the same
        self.use_compiled = compile is True
        self.chooser: CompileChooser | None = None
        self.num_classes, self.is_pair = num_classes, is_pair
        self.optimizer_cfg = optimizer
        self.scheduler_cfg = scheduler
        self.max_steps = max_steps
        self.criterion = nn.CrossEntropyLoss()
        self.train_acc = RunningAccuracy()  # per step: no device read, two device operations
        # Running sums read once per evaluation: no per-batch validation of labels or NaN check
        # (each a wait for the device; experiments/metrics.py).
        self.val_acc = RunningAccuracy()
        self.test_acc = RunningAccuracy()
        self.val_loss = WeightedMean()
        self.test_loss = WeightedMean()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # survives resume through the checkpoint
        self.last_head_live_units: int | None = None  # at the latest validation
        self.progress_values: dict[str, torch.Tensor] = {}  # train/* of the latest logging step

    @property
    def runner(self) -> nn.Module:
        """The callable model: compiled (built on first use) or eager."""
        if not self.use_compiled:
            return self.model
        if self.__dict__["_compiled"] is None:
            mode = None if self.torch_compile_mode == "default" else self.torch_compile_mode
            self.__dict__["_compiled"] = torch.compile(self.model, mode=mode)
        if self.torch_compile_mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # outputs of earlier replays are done
        return self.__dict__["_compiled"]

    def runner_for(self, rows: int) -> nn.Module:
        """The callable for a batch of ``rows`` rows.

        :attr:`runner`, or the eager model when the model is compiled and ``rows`` differs
        from ``batch_size`` (see the class).
        """
        if self.use_compiled and self.batch_size is not None and rows != self.batch_size:
            return self.model
        return self.runner

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits ``(B, C)`` of one batch dict."""
        rows = next(v.shape[0] for v in batch.values() if isinstance(v, torch.Tensor))
        return self._call(self.runner_for(rows), batch)  # (B, C)

    def _call(self, fn: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``fn`` (the model, or its ``features``) on one batch dict, single or pair."""
        if self.is_pair:
            return fn(
                batch["input_ids_a"],
                batch["attention_mask_a"],
                batch["input_ids_b"],
                batch["attention_mask_b"],
            )
        return fn(
            input_ids=batch.get("input_ids"),
            input_values=batch.get("input_values"),
            attention_mask=batch.get("attention_mask"),
        )

    def head_live_units(self, batch: dict[str, torch.Tensor]) -> int | None:
        """Units of the classifier head's first hidden layer positive for some row of ``batch``.

        Computed on the eager model (the compiled one is left as it is), under the trainer's
        precision. 0 means that no gradient reaches any weight but the output layer's bias,
        and the run is stuck on constant logits (:meth:`ClassifierHead.live_units`). None for
        models without a :class:`ClassifierHead` and a ``features`` method.
        """
        head, features = getattr(self.model, "head", None), getattr(self.model, "features", None)
        if not isinstance(head, ClassifierHead) or features is None:
            return None
        context = (
            self.trainer.precision_plugin.forward_context() if self._trainer else nullcontext()
        )
        with torch.no_grad(), context:
            return int(head.live_units(self._call(features, batch)))

    def _step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch).float()  # (B, C)
        loss = self.criterion(logits, batch["labels"])  # ()
        return loss, logits.argmax(dim=-1)  # (), (B,)

    def on_train_start(self) -> None:
        """Forget the sanity-check validation (but keep a resumed best); set up ``auto``."""
        if self.global_step == 0:
            self.val_acc_best.reset()
        if self.compile_mode == "auto" and self.device.type == "cuda":
            self.chooser = CompileChooser(self.max_steps - self.global_step)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Let the compile chooser time this step."""
        if self.chooser is not None:
            self.chooser.batch_start(self)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Let the compile chooser time this step and switch modes."""
        if self.chooser is not None:
            self.chooser.batch_end(self)
            if self.chooser.phase == "done":
                self.chooser = None

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One optimizer step's loss."""
        loss, preds = self._step(batch)
        self.train_acc.update(preds, batch["labels"])  # accumulates on the device
        if self._is_logging_step():
            # Not prog_bar: Lightning converts every progress-bar value it holds to a Python
            # number after every batch, a device read (and wait) per value per step; the bar
            # reads ``progress_values`` after this step only (StepProgressBar).
            acc = self.train_acc.compute()
            self.log("train/loss", loss, on_step=True, on_epoch=False)
            self.log("train/acc", acc, on_step=True)
            self.progress_values = {"train/loss": loss.detach(), "train/acc": acc}
            self.train_acc.reset()
        return loss

    def _is_logging_step(self) -> bool:
        """True on the steps whose metrics reach the logger (every ``log_every_n_steps``).

        Logging (and the progress bar reading the logged values) copies them to the host,
        which waits for the device; on the other steps nothing leaves the device.
        ``train/acc`` is the accuracy over the batches since the previous logging step.
        """
        trainer = self._trainer
        if trainer is None:
            return True
        every = max(1, int(getattr(trainer, "log_every_n_steps", 1) or 1))
        return (trainer.global_step + 1) % every == 0 or trainer.global_step == 0

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Accumulate validation loss and accuracy; keep the first batch for the head probe."""
        if batch_idx == 0:
            self.__dict__["_probe_batch"] = batch
        loss, preds = self._step(batch)
        self.val_loss(loss, weight=batch["labels"].numel())
        self.val_acc(preds, batch["labels"])
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        """Track the best validation accuracy so far and the head's live units."""
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True, prog_bar=True)
        batch = self.__dict__.pop("_probe_batch", None)
        live = self.head_live_units(batch) if batch is not None else None
        if live is not None:
            self.last_head_live_units = live
            self.log("val/head_live_units", float(live), sync_dist=True)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Accumulate test loss and accuracy."""
        loss, preds = self._step(batch)
        self.test_loss(loss, weight=batch["labels"].numel())
        self.test_acc(preds, batch["labels"])
        self.log("test/loss", self.test_loss, on_step=False, on_epoch=True)
        self.log("test/acc", self.test_acc, on_step=False, on_epoch=True)

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip gradients by global norm (or value) before the optimizer step.

        Lightning's mixed-precision plugin refuses to clip for a fused optimizer, because with
        fp16 loss scaling the fused kernel unscales gradients inside its step. Without a
        loss scaler (bf16-mixed, 32-true) the gradients are already unscaled, so clipping is
        ``g <- g * min(1, c / ||g||_2)`` over all parameters, done here directly.
        """
        if not gradient_clip_val:
            return
        if getattr(self.trainer.precision_plugin, "scaler", None) is not None:
            super().configure_gradient_clipping(
                optimizer, gradient_clip_val, gradient_clip_algorithm
            )
            return
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if gradient_clip_algorithm == "value":
            nn.utils.clip_grad_value_(params, gradient_clip_val)
        else:
            nn.utils.clip_grad_norm_(params, gradient_clip_val, foreach=True)

    def configure_optimizers(self) -> dict[str, Any]:
        """Adam/AdamW over decayed and undecayed groups, with a per-step LambdaLR."""
        cfg = self.optimizer_cfg
        groups = parameter_groups(self.model, cfg.weight_decay, cfg.decay_all)
        optimizer = make_optimizer(groups, cfg)
        scheduler_cfg, max_steps = self.scheduler_cfg, self.max_steps
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_multiplier(step, scheduler_cfg, max_steps)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "step", "frequency": 1},
        }
