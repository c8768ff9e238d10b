"""What a training step of the step benchmark runs on: the LRA preset's model and a batch.

:func:`load_setup` composes a mixer's LRA preset with Hydra and builds its model as
``train.py`` does; :class:`AnchorEncoder` is the plain-PyTorch SDPA encoder each mixer is
compared with; :func:`random_batch` draws tokens and labels of the task's shape.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn

from experiments.bench_specs import SDPAAnchor
from experiments.config.compose import compose_experiment
from spectrans.layers.attention.softmax import SoftmaxAttention
from spectrans.layers.mixing.fourier import FourierMixing

BENCH_TASKS: tuple[str, ...] = ("listops", "text", "image", "pathfinder")
"""Tasks the step benchmark times (registered task names)."""
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Setup:
    """What a timed step needs: the model, its optimizer config, and the batch shape."""

    model: nn.Module
    optimizer: Any
    batch: int
    seq_len: int
    vocab_size: int
    num_classes: int
    input_type: str
    shape: dict[str, Any]
    padded: bool = False
    ink_fraction: float | None = None


INK_FRACTION = {"pathfinder": 0.341, "pathx": 0.137}
"""Share of non-zero pixels in generated Pathfinder-32 and Path-X images
(``curv_contour_length_14``, ``results/pathfinder_fidelity.md``): the tokens that
``task.mask=lra_nonzero`` leaves unmasked. The image task (CIFAR-10 in grayscale, whose
share of black pixels is not measured here) is timed on uniform tokens without a mask,
although its training batches carry one whenever an image holds a black pixel."""


@functools.cache
def _presets() -> ModuleType:
    """``scripts/make_presets.py``, the table of preset variants."""
    spec = importlib.util.spec_from_file_location("make_presets", ROOT / "scripts/make_presets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def default_mixers() -> tuple[str, ...]:
    """Every preset variant, then every other registered mixer.

    A registered mixer that is the attention group of a variant is timed as its variants
    (``lst`` as ``lst-dct``, ``lst-dst``, ...).
    """
    from spectrans import registry

    variants = _presets().VARIANTS
    groups = {group for group, _, _ in variants.values()}
    rest = [n for n in registry.names() if n not in variants and n not in groups]
    return (*variants, *rest)


def _hydra_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def preset_overrides(mixer: str, task: str) -> list[str]:
    """Hydra overrides of a mixer's LRA preset for ``task``.

    A preset variant is its own file; another registered mixer takes a preset whose attention
    node sets only keys the mixer's own node sets too (all else is shared by every variant),
    with ``attention=<mixer>`` and the keys :func:`make_presets.attention_node` gives it.
    """
    presets = _presets()
    if mixer in presets.VARIANTS:
        return [f"experiment=lra/{mixer}-{task}"]
    node = presets.attention_node(mixer, task)
    base = next(v for v in presets.VARIANTS if set(presets.attention_node(v, task)) <= set(node))
    keys = [f"attention.{k}={_hydra_value(v)}" for k, v in node.items()]
    return [f"experiment=lra/{base}-{task}", f"attention={mixer}", *keys]


def load_setup(
    mixer: str,
    task: str,
    batch: int | None,
    max_len: int | None,
    overrides: Sequence[str] = (),
) -> Setup:
    """Compose and validate the preset, then build its model as ``train.py`` does.

    Args:
        mixer: Mixer preset name (see :func:`default_mixers`).
        task: LRA task (see :data:`BENCH_TASKS`).
        batch: Batch size override (default: the preset's).
        max_len: Cap on the sequence length (default: the task's).
        overrides: Hydra overrides applied after the preset's (``model.dropout=0``, ...).
    """
    from experiments.data import build_datamodule
    from spectrans.models import build_classifier

    exp = compose_experiment([*preset_overrides(mixer, task), *overrides])
    dm = build_datamodule(exp.task, data_dir="unused", batch_size=exp.data.batch_size)
    seq_len = min(dm.max_length, max_len) if max_len else dm.max_length
    model = build_classifier(
        exp.model,
        exp.attention,
        vocab_size=dm.vocab_size,
        num_classes=dm.num_classes,
        max_length=seq_len,
        pair=False,
        input_type=dm.input_type,
    )
    heads = getattr(exp.attention, "num_heads", None) or 4
    head_dim = getattr(exp.attention, "head_dim", None) or exp.model.hidden_dim // heads
    shape = {
        "hidden": exp.model.hidden_dim,
        "layers": exp.model.num_layers,
        "ffn": exp.model.ffn_hidden_dim,
        "heads": heads,
        "head_dim": head_dim,
    }
    return Setup(
        model=model,
        optimizer=exp.optimizer,
        batch=batch or exp.data.batch_size,
        seq_len=seq_len,
        vocab_size=dm.vocab_size,
        num_classes=dm.num_classes,
        input_type=dm.input_type,
        shape=shape,
        padded=not dm.fixed_length,
        ink_fraction=INK_FRACTION.get(exp.task.name) if exp.task.mask == "lra_nonzero" else None,
    )


class AnchorEncoder(nn.Module):
    """Plain pre-norm SDPA encoder classifier (the reference a user would write).

    Args:
        vocab_size: Token vocabulary.
        num_classes: Logits.
        seq_len: Learned positions.
        hidden: Model width D.
        layers: Blocks L.
        ffn: MLP width.
        heads: Heads H; the head width is ``max(8, 8 ceil(head_dim / 8))``.
        head_dim: Head width of the mixer being compared.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        seq_len: int,
        hidden: int,
        layers: int,
        ffn: int,
        heads: int,
        head_dim: int,
    ) -> None:
        super().__init__()
        self.head_dim = 8 * math.ceil(head_dim / 8)
        self.embed = nn.Embedding(vocab_size, hidden)
        self.pos = nn.Parameter(torch.randn(seq_len, hidden) * 0.02)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            block = nn.ModuleDict(
                {
                    "ln1": nn.LayerNorm(hidden),
                    "attn": SDPAAnchor(hidden, heads, self.head_dim),
                    "ln2": nn.LayerNorm(hidden),
                    "mlp": nn.Sequential(nn.Linear(hidden, ffn), nn.GELU(), nn.Linear(ffn, hidden)),
                }
            )
            self.blocks.append(block)
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, input_ids: Tensor) -> Tensor:
        """Logits (B, C) of token ids (B, N)."""
        batch, n = input_ids.shape
        x = self.embed(input_ids) + self.pos[:n]  # (B, N, D)
        for block in self.blocks:
            x = x + block["attn"](block["ln1"](x))  # (B, N, D)
            x = x + block["mlp"](block["ln2"](x))
        return self.head(self.norm(x).mean(dim=1))  # (B, C)


def random_batch(setup: Setup, device: torch.device, seed: int = 0) -> dict[str, Tensor]:
    """Random tokens (or pixel values) and labels of the task's shape, padded as in training.

    Fixed-length tasks (images) get no mask, as their collated batches carry none. Tasks of
    variable length are padded to ``N`` in training, so their batch gets lengths drawn
    uniformly from ``[N/4, N]`` (the first item full), the key mask of those lengths, and
    token 0 at every padded position as the collator writes there (a compiled embedding's
    backward adds the gradients of every position of a token to one row, so how often a
    token repeats shows in its time).
    Under ``task.mask=lra_nonzero`` on Pathfinder and Path-X (``setup.ink_fraction``), each
    pixel is non-zero with the images' ink share and the mask also drops every zero token,
    as the collated batches of those presets do.
    """
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, setup.vocab_size, (setup.batch, setup.seq_len), generator=gen)
    batch = {"labels": torch.randint(0, setup.num_classes, (setup.batch,), generator=gen)}
    mask = torch.ones(setup.batch, setup.seq_len, dtype=torch.bool)  # (B, N)
    if setup.padded:
        n = setup.seq_len
        lengths = torch.randint(max(1, n // 4), n + 1, (setup.batch,), generator=gen)
        lengths[0] = n
        mask = torch.arange(n)[None, :] < lengths[:, None]  # (B, N)
        ids = torch.where(mask, ids.clamp(min=1), 0)  # (B, N): padded with id 0, as collated
    if setup.ink_fraction is not None:
        ink = torch.rand(ids.shape, generator=gen) < setup.ink_fraction  # (B, N)
        ids = torch.where(ink, ids.clamp(min=1), 0)  # (B, N)
        mask = mask & ink
    if not bool(mask.all()):
        batch["attention_mask"] = mask
    if setup.input_type == "values":
        batch["input_values"] = ids.float() / max(1, setup.vocab_size - 1)
    else:
        batch["input_ids"] = ids
    return {k: v.to(device) for k, v in batch.items()}


def path_choices(layer: nn.Module) -> tuple[str, ...]:
    """The values the ``mixing_path`` annotation of ``layer``'s class allows (empty: none)."""
    if not hasattr(layer, "mixing_path"):
        return ()
    hint = typing.get_type_hints(type(layer)).get("mixing_path")
    return tuple(typing.get_args(hint)) if hint is not None else ()


def force_mixing_path(model: nn.Module, path: str) -> int:
    """Set ``mixing_path = path`` on every layer whose paths include it; returns how many.

    Raises:
        ValueError: No layer of ``model`` has a path of that name.
    """
    layers = [m for m in model.modules() if path in path_choices(m)]
    if not layers:
        offered = sorted({c for m in model.modules() for c in path_choices(m)})
        raise ValueError(
            f"no mixing layer of this model has the path {path!r}"
            + (f" (its paths: {', '.join(offered)})" if offered else " (it has no paths)")
        )
    for layer in layers:
        layer.mixing_path = path  # type: ignore[assignment]
    return len(layers)


def mixer_length(model: nn.Module, seq_len: int) -> int:
    """The sequence length the mixers of ``model`` see: ``seq_len`` and the CLS token if any."""
    cls = any(getattr(m, "cls_token", None) is not None for m in model.modules())
    return seq_len + int(cls)


def mixing_path(
    model: nn.Module,
    seq_len: int,
    device: torch.device,
    masked: bool = False,
    dtype: str = "bf16",
    compiled: bool = False,
) -> str:
    """The mixing paths the layers take on inputs of ``seq_len`` tokens, or ``""``.

    Each layer with a ``chosen_path`` is asked at the length it sees (:func:`mixer_length`);
    FNet layers are told whether ``torch.compile`` traces them (``compiled``). LST layers:
    ``gemm``, ``folded``, ``factored``, ``dense`` or ``fast``. Softmax layers given a key mask:
    ``segments`` where they attend on flash's variable-length kernel
    (:mod:`spectrans.layers.attention.key_padding`), else ``masked sdpa``.
    """
    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    n = mixer_length(model, seq_len)
    paths = set()
    for m in model.modules():
        if isinstance(m, FourierMixing):
            paths.add(m.chosen_path(n, device, compiled=compiled))
        elif hasattr(m, "chosen_path"):
            paths.add(m.chosen_path(n, device))
        if masked and isinstance(m, SoftmaxAttention) and not (m.causal or m.alibi):
            paths.add("segments" if m.uses_segments(device, torch_dtype) else "masked sdpa")
    return "/".join(sorted(paths))


def anchor_for(setup: Setup) -> AnchorEncoder:
    """The anchor encoder of ``setup``'s shape (fresh parameters)."""
    s = setup.shape
    return AnchorEncoder(
        setup.vocab_size, setup.num_classes, setup.seq_len, s["hidden"], s["layers"],
        s["ffn"], s["heads"], s["head_dim"],
    )  # fmt: skip


def anchor_ids(setup: Setup, batch: dict[str, Tensor]) -> Tensor:
    """The token ids ``(B, N)`` the anchor reads: pixel values are read back as their tokens."""
    if "input_ids" in batch:
        return batch["input_ids"]
    return (batch["input_values"] * (setup.vocab_size - 1)).round().long()  # (B, N)


def train_step(
    model: nn.Module,
    forward: Callable[[nn.Module], Tensor],
    labels: Tensor,
    optimizer_cfg: Any,
    dtype: str,
    compile_mode: str | None,
) -> Callable[[], None]:
    """One training step of ``model`` (on ``labels``' device) with a fresh optimizer.

    ``compile_mode`` None runs eager; otherwise the model is ``torch.compile``d in that mode
    (``default`` or ``reduce-overhead``; with CUDA graphs each step first marks a new graph
    iteration, as the training module does).
    """
    from experiments.fresh_compile import compile_fresh
    from experiments.module import make_optimizer, parameter_groups
    from experiments.timing import make_train_step

    device = labels.device
    model = model.to(device).train()
    optimizer = make_optimizer(
        parameter_groups(model, optimizer_cfg.weight_decay, optimizer_cfg.decay_all),
        optimizer_cfg,
    )
    run = model
    if compile_mode is not None:  # each model compiled from a reset Dynamo (fresh_compile doc)
        run = compile_fresh(model, None if compile_mode == "default" else compile_mode)

    def forward_once() -> Tensor:
        if compile_mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        return forward(run)

    return make_train_step(model, forward_once, labels, optimizer, dtype, device)
