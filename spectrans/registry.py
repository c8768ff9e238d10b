"""One table from a token-mixer name to its layer class, config class and facts.

A mixer is declared once, at its definition, with :func:`register_mixer` (after xformers'
``register_attention(name, Config)``)::

    @register_mixer("afno", AFNOMixingConfig, family="mixing", complexity="O(n log n)",
                    paper="Guibas et al. 2022, AFNO")
    class AFNOMixing(AttentionLayer): ...

Everything else derives from this table: the discriminated config union
(:data:`spectrans.config.layers.TokenMixerConfigUnion`), :func:`names`, the generated
``conf/attention/<name>.yaml`` files and README's mixer table (``scripts/make_presets.py``).
Whether a mixer can be causal is the layer class's ``supports_causal``.

The table fills when the layer modules are imported; every module under
``spectrans.layers.attention`` and ``spectrans.layers.mixing`` is imported on the first query,
so a new mixer is one new module there and nothing else.

Examples:
    >>> from spectrans.registry import build_layer, names
    >>> "performer" in names()
    True
    >>> layer = build_layer({"name": "lst", "hidden_dim": 64, "num_heads": 4})
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from torch import nn

from spectrans.config.core import TokenMixerConfig
from spectrans.declarations import (
    check_name_free,
    check_name_literal,
    class_path,
    import_package_modules,
)

Family = Literal["attention", "mixing"]
Complexity = Literal["O(n)", "O(n log n)", "O(n^2)"]
LAYER_PACKAGES = ("spectrans.layers.attention", "spectrans.layers.mixing")
"""Packages whose every module is imported to fill the table."""

LayerT = TypeVar("LayerT", bound=type[nn.Module])


@dataclass(frozen=True)
class RegistryEntry:
    """A registered token mixer.

    Attributes:
        name: Registry name (``attention=<name>`` on the command line).
        family: ``attention`` (queries/keys or an attention-shaped spectral layer) or
            ``mixing`` (spectral or state-space mixing, no heads).
        complexity: Time in the sequence length N (the layer benchmark measures it).
        config_class: The pydantic config class whose ``name`` literal is ``name``.
        cls: The layer class.
        description: One line for listings.
        paper: The paper the layer follows (README's mixer table).
    """

    name: str
    family: Family
    complexity: Complexity
    config_class: type[TokenMixerConfig]
    cls: type[nn.Module]
    description: str
    paper: str

    def layer_class(self) -> type[nn.Module]:
        """The layer class."""
        return self.cls

    @property
    def layer_path(self) -> str:
        """``module:ClassName`` of the layer."""
        return class_path(self.cls)

    @property
    def causal(self) -> bool:
        """Whether the layer implements ``causal=True``."""
        return bool(getattr(self.cls, "supports_causal", False))


_FAMILY_ORDER = {"attention": 0, "mixing": 1}
_COMPLEXITY_ORDER = {"O(n^2)": 0, "O(n)": 1, "O(n log n)": 2}
_TABLE: dict[str, RegistryEntry] = {}
_loaded = False


def register_mixer(
    name: str,
    config_class: type[TokenMixerConfig],
    *,
    family: Family,
    complexity: Complexity,
    description: str,
    paper: str,
) -> Callable[[LayerT], LayerT]:
    """Class decorator that adds a layer to the table under ``name``.

    Raises:
        ValueError: ``name`` is taken by another class, or the config's ``name`` literal is
            not ``name``.
    """
    check_name_literal(config_class, name)

    def decorate(cls: LayerT) -> LayerT:
        old = _TABLE.get(name)
        check_name_free("token mixer", name, old.layer_path if old else None, cls)
        _TABLE[name] = RegistryEntry(
            name, family, complexity, config_class, cls, description, paper
        )
        return cls

    return decorate


def _load() -> dict[str, RegistryEntry]:
    """Import every layer module once (their decorators fill the table); return the table."""
    global _loaded
    if not _loaded:
        _loaded = True
        import_package_modules(LAYER_PACKAGES)
    return _TABLE


class _Registry(Mapping[str, RegistryEntry]):
    """The table as a read-only mapping that loads the layer modules on first access."""

    def __getitem__(self, key: str) -> RegistryEntry:
        return _load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(names())

    def __len__(self) -> int:
        return len(_load())


REGISTRY: Mapping[str, RegistryEntry] = _Registry()
"""Name -> :class:`RegistryEntry` (filled on first access)."""


def entries(family: Family | None = None) -> list[RegistryEntry]:
    """Registered entries, optionally of one family.

    Attention first, then mixing; within a family by complexity (``O(n^2)``, ``O(n)``,
    ``O(n log n)``), then by name: the order never depends on which module was imported first.
    """
    found = [e for e in _load().values() if family is None or e.family == family]
    return sorted(
        found, key=lambda e: (_FAMILY_ORDER[e.family], _COMPLEXITY_ORDER[e.complexity], e.name)
    )


def names(family: Family | None = None) -> list[str]:
    """Registered names, optionally of one family."""
    return [e.name for e in entries(family)]


def config_classes() -> tuple[type[TokenMixerConfig], ...]:
    """Every registered config class, in :func:`names` order."""
    return tuple(e.config_class for e in entries())


def get_entry(name: str) -> RegistryEntry:
    """Look up one entry.

    Raises:
        KeyError: with a sentence listing the valid names.
    """
    table = _load()
    if name not in table:
        raise KeyError(f"unknown token mixer '{name}'; choose one of: {', '.join(names())}")
    return table[name]


def build_layer(config: TokenMixerConfig | Mapping[str, Any]) -> nn.Module:
    """Build a layer from its config object (or, as a convenience, a mapping with ``name``).

    A mapping is validated once, by the config class its ``name`` selects; an object is used
    as it is.

    Raises:
        KeyError: no or an unknown ``name`` (one sentence listing the valid names).
        pydantic.ValidationError: the mapping is not a valid config of that mixer.
    """
    if not isinstance(config, TokenMixerConfig):
        entry = get_entry(str(config.get("name")))
        return entry.layer_class().from_config(entry.config_class.model_validate(dict(config)))
    return get_entry(config.name).layer_class().from_config(config)
