"""Mixers the scaling benchmark times, and the layer / small model built around each.

A :class:`MixerSpec` names one mixer (a registry config, or a factory); :func:`build` turns it
into the module a scope times: the bare mixer (``layer``) or a two-block model (``model``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from experiments.bench_report import ANCHOR
from spectrans.layers.blocks import PreNormBlock

LST_TRANSFORMS: tuple[str, ...] = ("dct", "dst", "hadamard", "wavelet", "mixed")


@dataclass(frozen=True)
class MixerSpec:
    """One benchmarked mixer.

    Attributes:
        label: Name in the tables (registry name, or ``lst-<transform>``).
        config: Registry config dict (``name`` plus options); ``max_sequence_length`` is set
            to N at build time where the config has it.
        factory: Optional ``N -> nn.Module`` that replaces the registry (tests, custom mixers).
        claim: The complexity the registry claims (``O(n)``, ``O(n log n)``, ``O(n^2)``).
    """

    label: str
    config: dict[str, Any] = field(default_factory=dict)
    factory: Callable[[int], nn.Module] | None = None
    claim: str = ""


class SDPAAnchor(nn.Module):
    r"""Plain-PyTorch multi-head attention: the four projections around one SDPA call.

    .. math::

        y = \big[\mathrm{softmax}(Q_h K_h^\top / \sqrt{d})\, V_h\big]_{h=1..H} W_o,
        \qquad [Q, K, V] = x\,[W_q, W_k, W_v],

    with the q, k and v projections as one fused linear layer, no mask and no dropout: the
    floor that the library's softmax layer (the same projections and SDPA call, plus its
    masking and head-width padding) is measured against, and the attention of the step
    benchmark's anchor encoder.

    Args:
        hidden: Model width D.
        heads: Number of heads H.
        head_dim: Head width d (default ``hidden // heads``, which H must then divide).
    """

    def __init__(self, hidden: int, heads: int, head_dim: int | None = None) -> None:
        super().__init__()
        if head_dim is None:
            if hidden % heads:
                raise ValueError(f"heads ({heads}) must divide hidden ({hidden})")
            head_dim = hidden // heads
        self.heads, self.head_dim = heads, head_dim
        self.qkv = nn.Linear(hidden, 3 * heads * head_dim)
        self.out = nn.Linear(heads * head_dim, hidden)

    def forward(self, x: Tensor) -> Tensor:  # x: (B, N, D)
        """Attend over all N tokens; returns (B, N, D)."""
        batch, n, _ = x.shape
        qkv = self.qkv(x).view(batch, n, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # (B, H, N, d) each
        y = nn.functional.scaled_dot_product_attention(q, k, v)  # (B, H, N, d)
        return self.out(y.transpose(1, 2).reshape(batch, n, -1))  # (B, N, D)


def anchor_spec(hidden: int, heads: int) -> MixerSpec:
    """The :class:`SDPAAnchor` as a benchmarked mixer (label :data:`ANCHOR`)."""
    return MixerSpec(ANCHOR, factory=lambda n: SDPAAnchor(hidden, heads), claim="O(n^2)")


def default_specs(hidden: int, heads: int) -> list[MixerSpec]:
    """The SDPA anchor, then every registered mixer (``lst`` once per transform).

    Heads are set only where the mixer's config has them.
    """
    from spectrans import registry

    specs: list[MixerSpec] = [anchor_spec(hidden, heads)]
    for name in registry.names():
        entry = registry.get_entry(name)
        fields = entry.config_class.model_fields
        claim = entry.complexity
        config: dict[str, Any] = {"name": name, "hidden_dim": hidden}
        if "num_heads" in fields:
            config["num_heads"] = heads
        if name == "lst":
            specs += [
                MixerSpec(f"lst-{t}", {**config, "transform_type": t}, claim=claim)
                for t in LST_TRANSFORMS
            ]
        else:
            specs.append(MixerSpec(name, config, claim=claim))
    return specs


def _config_at(spec: MixerSpec, n: int) -> dict[str, Any]:
    """The spec's registry config with ``max_sequence_length = n`` where the config has it."""
    from spectrans import registry

    config = dict(spec.config)
    if "max_sequence_length" in registry.get_entry(config["name"]).config_class.model_fields:
        config["max_sequence_length"] = n
    return config


def build_mixer(spec: MixerSpec, n: int) -> nn.Module:
    """Build the mixer for sequence length ``n`` (registry, or the spec's factory)."""
    if spec.factory is not None:
        return spec.factory(n)
    from spectrans import registry

    return registry.build_layer(_config_at(spec, n))


class _MixerOut(nn.Module):
    """Calls a mixer and drops the attention weights if it returns a tuple."""

    def __init__(self, mixer: nn.Module) -> None:
        super().__init__()
        self.mixer = mixer

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # x: (B, N, D)
        """The mixer's output without weights (a factory's mixer may take no mask)."""
        out = self.mixer(x) if mask is None else self.mixer(x, mask)
        return out[0] if isinstance(out, tuple) else out  # (B, N, D)


def build_small_model(
    spec: MixerSpec, n: int, hidden: int, num_blocks: int = 2
) -> tuple[nn.Module, str]:
    """The "whole small model" and a description of what it is.

    ``spectrans.models.build_classifier`` (encoder, ``num_blocks`` layers, no dropout, mean
    pooling, 10 classes, input ``(B, N, D)`` fed through an adapter that maps it to token ids)
    when it exists and accepts the mixer, else ``num_blocks`` pre-norm blocks of this module.
    """
    if spec.factory is None:
        try:
            return _classifier(spec, n, hidden, num_blocks), "build_classifier"
        except ImportError:
            pass
    blocks = [
        PreNormBlock(_MixerOut(build_mixer(spec, n)), hidden, 4 * hidden) for _ in range(num_blocks)
    ]
    return nn.Sequential(*blocks, nn.LayerNorm(hidden)), "pre-norm stack"


class _TokenAdapter(nn.Module):
    """Feeds fixed random token ids to a classifier; the float input only sets the shape."""

    def __init__(self, model: nn.Module, vocab_size: int) -> None:
        super().__init__()
        self.model, self.vocab_size = model, vocab_size
        self._ids: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:  # x: (B, N, D)
        """Logits of the wrapped classifier on fixed token ids (drawn once per shape)."""
        if self._ids is None or self._ids.shape != x.shape[:2] or self._ids.device != x.device:
            gen = torch.Generator(device="cpu").manual_seed(0)
            self._ids = torch.randint(0, self.vocab_size, x.shape[:2], generator=gen).to(
                x.device
            )  # (B, N)
        return self.model(input_ids=self._ids)  # (B, C)


def _classifier(spec: MixerSpec, n: int, hidden: int, num_blocks: int) -> nn.Module:
    from spectrans.config.layers import parse_layer_config
    from spectrans.config.models import EncoderModelConfig
    from spectrans.models import build_classifier

    mixer_config = _config_at(spec, n)
    model_cfg = EncoderModelConfig(
        hidden_dim=hidden, num_layers=num_blocks, dropout=0.0, max_sequence_length=n, pooling="mean"
    )
    model = build_classifier(
        model_cfg,
        parse_layer_config(mixer_config),
        vocab_size=256,
        num_classes=10,
        max_length=n,
        pair=False,
    )
    return _TokenAdapter(model, 256)


def build(spec: MixerSpec, scope: str, n: int, hidden: int) -> tuple[nn.Module, str]:
    """The module a scope times (``layer``: the bare mixer; ``model``: a small model)."""
    if scope == "layer":
        return _MixerOut(build_mixer(spec, n)), ""
    return build_small_model(spec, n, hidden)


RECOMPUTE_CHOICES = ("auto", "on", "off")
"""Values of the benchmarks' ``--recompute`` option (alias ``--lst-recompute``)."""


def set_recompute(choice: str) -> None:
    """Set ``recompute_mixing`` of the LST, feature-map and S4D layers of this process.

    ``auto`` is the layers' default (None: keep the intermediates). The LST layers' backward
    either keeps the gated mixing's intermediates or rebuilds them from q, k and v
    (:mod:`spectrans.layers.attention.lst_recompute`); the feature-map layers (Performer,
    random features, kernels) either keep their ``(B, H, N, m)`` features or rebuild them
    (:mod:`spectrans.layers.attention.chunked_recompute`), and S4D keeps its float32
    convolution's intermediates or rebuilds them. The benchmarks time and measure both with
    ``on`` and ``off``.
    """
    from spectrans.layers.attention.lst import _LSTFilterAttention
    from spectrans.layers.attention.spectral import _FeatureAttention
    from spectrans.layers.mixing.s4d import S4DMixing

    value = {"auto": None, "on": True, "off": False}[choice]
    for cls in (_LSTFilterAttention, _FeatureAttention, S4DMixing):
        cls.recompute_mixing = value


def add_hashed_dropout_option(parser: argparse.ArgumentParser) -> None:
    """``--hashed-dropout`` of the step benchmarks: see :func:`use_hashed_dropout`."""
    parser.add_argument(
        "--hashed-dropout",
        action="store_true",
        help="in compiled steps, draw dropout masks from an integer hash instead of Philox "
        "(spectrans.layers.dropout.HASHED_MASKS_WHEN_COMPILED)",
    )


def use_hashed_dropout(on: bool = True) -> None:
    """Set :data:`spectrans.layers.dropout.HASHED_MASKS_WHEN_COMPILED` for this process."""
    from spectrans.layers import dropout

    dropout.HASHED_MASKS_WHEN_COMPILED = on


def add_pad_segments_option(parser: argparse.ArgumentParser) -> None:
    """``--pad-segments`` of the step benchmarks: see :func:`set_pad_segments`."""
    parser.add_argument(
        "--pad-segments",
        type=int,
        default=None,
        help="segments of each row's padding on the key-padding softmax path "
        "(spectrans.layers.attention.key_padding.PAD_SEGMENTS; 0: padded queries attend to no "
        "key; default: the library's)",
    )


def set_pad_segments(pieces: int | None) -> None:
    """Set :data:`spectrans.layers.attention.key_padding.PAD_SEGMENTS` for this process."""
    if pieces is None:
        return
    if pieces < 0:
        raise SystemExit(f"--pad-segments must be at least 0, got {pieces}")
    from spectrans.layers.attention import key_padding

    key_padding.PAD_SEGMENTS = pieces


def add_logit_unroll_option(parser: argparse.ArgumentParser) -> None:
    """``--logit-unroll`` of the step benchmarks: see :func:`set_logit_unroll`."""
    parser.add_argument(
        "--logit-unroll",
        type=int,
        default=None,
        metavar="WIDTH",
        help="head widths up to WIDTH form the FAVOR+ feature logits as broadcast products in "
        "compiled steps (spectrans.layers.attention.favor_contract.UNROLLED_LOGITS_MAX_WIDTH; "
        "default: the library's)",
    )


def set_logit_unroll(width: int | None) -> None:
    """Set :data:`~spectrans.layers.attention.favor_contract.UNROLLED_LOGITS_MAX_WIDTH`."""
    if width is None:
        return
    if width < 0:
        raise SystemExit(f"--logit-unroll must be at least 0, got {width}")
    from spectrans.layers.attention import favor_contract

    favor_contract.UNROLLED_LOGITS_MAX_WIDTH = width


def add_recompute_option(parser: argparse.ArgumentParser) -> None:
    """``--recompute`` (alias ``--lst-recompute``) of the benchmarks: see :func:`set_recompute`."""
    parser.add_argument(
        "--recompute",
        "--lst-recompute",
        choices=RECOMPUTE_CHOICES,
        default="auto",
        help="backward of the LST, feature-map and S4D layers: auto (the layers' default: keep "
        "the intermediates), on (keep q, k, v and rebuild the mixing, in eager code only) or "
        "off (keep the intermediates)",
    )


def add_backward_options(parser: argparse.ArgumentParser) -> None:
    """``--lst-path`` and ``--recompute`` (alias ``--lst-recompute``) of the CPU memory tools."""
    parser.add_argument(
        "--lst-path",
        choices=("auto", "gemm", "folded", "factored", "dense", "fast"),
        default="auto",
        help="mixing path of the LST layers (auto is fast on the CPU)",
    )
    add_recompute_option(parser)


def set_lst_path(layer: nn.Module, path: str) -> None:
    """Force ``mixing_path`` of an LST layer (``auto`` and other layers: unchanged)."""
    if path != "auto" and hasattr(layer, "mixing_path"):
        layer.mixing_path = path  # type: ignore[assignment]


def unknown_mixers(wanted: list[str], specs: list[MixerSpec]) -> str | None:
    """The error sentence for labels in ``wanted`` that no spec has, or None."""
    labels = [spec.label for spec in specs]
    unknown = sorted(set(wanted) - set(labels))
    return f"error: unknown mixers {unknown}; choose from {labels}" if unknown else None
