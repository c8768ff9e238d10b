"""Base pydantic configs shared by every token mixer.

Every layer config is a pydantic v2 model with ``extra="forbid"`` (a misspelled key is an
error, never a silent default) and a ``name`` literal that is its registry name; the union of
all of them is discriminated on ``name`` (see :mod:`spectrans.config.layers`).
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

HEAD_DIM_HINT = "change one of them or set head_dim explicitly"

InitWeightsMode = Literal[
    "truncnormal002", "truncnormal", "xavier", "torch", "truncnormal002-identity"
]
"""Weight initialisation strategies.

- ``truncnormal002``: truncated normal, std 0.02, biases zero.
- ``truncnormal``: truncated normal with std ``1/sqrt(fan_in)``, biases zero.
- ``xavier``: the LRA code's init. Mixer and feed-forward kernels Xavier-uniform,
  ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))`` (variance ``2 / (fan_in + fan_out)``;
  flax initialises a multi-head ``DenseGeneral`` kernel flattened to ``(fan_in, fan_out)``, so
  the fans are the projection's input and output widths), biases zero (LRA: N(0, 1e-6)). The
  classifier head's linears get flax's ``Dense`` default, LeCun normal: truncated normal with
  std ``1/sqrt(fan_in)``.
- ``torch``: leave PyTorch's default initialisation untouched.
- ``truncnormal002-identity``: as ``truncnormal002`` but the output projection starts at zero,
  so a residual block starts as the identity map.
"""


def check_divides(hidden_dim: int, count: int, name: str, hint: str = "change one of them") -> None:
    """Require ``hidden_dim % count == 0``; else one ``ValueError`` sentence.

    Args:
        hidden_dim: The width to split.
        count: The number of equal parts (heads, blocks).
        name: The name of ``count`` in the message (``num_heads``, ``num_blocks``).
        hint: What the user can change, appended to the message.
    """
    if hidden_dim % count != 0:
        raise ValueError(f"hidden_dim ({hidden_dim}) must be divisible by {name} ({count}); {hint}")


ModelT = TypeVar("ModelT", bound=BaseModel)


def with_fields(config: ModelT, **values: Any) -> ModelT:
    """``config`` with ``values`` set on the fields its class has; other keys are ignored.

    The changed config is checked by its own class (field constraints and model validators,
    e.g. ``hidden_dim % num_heads == 0``); the class itself is kept, so no union dispatch
    happens again. Returns ``config`` itself when no value changes.

    Raises:
        pydantic.ValidationError: the changed config is invalid.
    """
    fields = type(config).model_fields
    changed = {
        key: value
        for key, value in values.items()
        if key in fields and getattr(config, key) != value
    }
    if not changed:
        return config
    return type(config).model_validate({**config.model_dump(), **changed})


class StrictModel(BaseModel):
    """Base model: unknown keys are rejected, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TokenMixerConfig(StrictModel):
    """Fields every token mixer (attention or spectral mixing) takes.

    Attributes:
        name: Registry name of the layer; the discriminator of the config union.
        hidden_dim: Model width D of the input and output ``(B, N, D)``.
        dropout: Dropout probability inside the layer.
        causal: Whether output ``t`` may depend only on inputs ``<= t``. Layers that cannot
            be causal refuse ``causal=True`` at construction.
        init_weights: Weight initialisation strategy.
    """

    name: str
    hidden_dim: int = Field(512, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    causal: bool = False
    init_weights: InitWeightsMode = "truncnormal002"

    def layer_kwargs(self) -> dict[str, Any]:
        """Constructor keyword arguments of the matching layer (all fields but ``name``)."""
        return self.model_dump(exclude={"name"})


class AttentionLayerConfig(TokenMixerConfig):
    """Fields of every attention layer.

    The inner width is ``num_heads * head_dim``; it may differ from ``hidden_dim`` (the LRA
    Pathfinder config has width 32 and qkv width 16). When ``head_dim`` is None it is
    ``hidden_dim // num_heads`` and ``hidden_dim`` must be divisible by ``num_heads``.

    Attributes:
        num_heads: Number of attention heads H.
        head_dim: Width of each head; None means ``hidden_dim // num_heads``.
        bias: Whether the linear projections have biases.
        use_rope: Rotate queries and keys by rotary position embeddings (layers that have
            queries and keys only; others reject it).
        qk_norm: LayerNorm on each head's queries and keys before scoring (layers that have
            queries and keys only; others reject it).
    """

    num_heads: int = Field(8, gt=0)
    head_dim: int | None = Field(None, gt=0)
    bias: bool = True
    use_rope: bool = False
    qk_norm: bool = False

    @model_validator(mode="after")
    def validate_hidden_dim_and_num_heads(self) -> AttentionLayerConfig:
        """Require ``hidden_dim % num_heads == 0`` when ``head_dim`` is not given."""
        if self.head_dim is None:
            check_divides(self.hidden_dim, self.num_heads, "num_heads", HEAD_DIM_HINT)
        return self

    @property
    def resolved_head_dim(self) -> int:
        """Head width actually used."""
        return self.head_dim if self.head_dim is not None else self.hidden_dim // self.num_heads
