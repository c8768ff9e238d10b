"""Token groups and attention patterns: who attends to whom.

A sequence is a concatenation of named token groups (:class:`TokenSpec`, in order). An
:class:`AttentionPattern` says that the queries of some groups attend to the keys and values of
some groups. A *pattern set* is valid when every group appears as a query in exactly one
pattern and every name it lists is a known group.

Examples:
    >>> tokens = [TokenSpec(name="doc_a", size=4), TokenSpec(name="doc_b", size=3)]
    >>> independent = [
    ...     AttentionPattern(query_tokens=["doc_a"], key_value_tokens=["doc_a"]),
    ...     AttentionPattern(query_tokens=["doc_b"], key_value_tokens=["doc_b"]),
    ... ]
    >>> validate_attention_patterns(tokens, independent)
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, model_validator

from spectrans.config.core import StrictModel


class TokenSpec(StrictModel):
    """A named group of consecutive tokens.

    Attributes:
        name: Group name, e.g. ``"doc_a"`` or ``"surface_anchors"`` (``<domain>_<type>``).
        size: Number of tokens of the group in the input; None means the group is not in the
            input (its keys and values would come from a cache, which spectrans does not use).
    """

    name: str = Field(min_length=1)
    size: int | None = Field(None, ge=0)

    @classmethod
    def from_dict(cls, token_dict: dict[str, int | None]) -> TokenSpec:
        """Build from a one-item dict ``{name: size}``."""
        if len(token_dict) != 1:
            raise ValueError(
                f"TokenSpec.from_dict needs exactly one {{name: size}} item, got {token_dict!r}"
            )
        ((name, size),) = token_dict.items()
        return cls(name=name, size=size)

    def to_dict(self) -> dict[str, int | None]:
        """Return ``{name: size}``."""
        return {self.name: self.size}

    @property
    def domain(self) -> str:
        """Part of the name before the first underscore (``surface`` of ``surface_anchors``)."""
        return self.name.split("_", 1)[0]

    @property
    def attn_type(self) -> str:
        """Part of the name after the first underscore (``anchors`` of ``surface_anchors``)."""
        parts = self.name.split("_", 1)
        return parts[1] if len(parts) == 2 else parts[0]


class AttentionPattern(StrictModel):
    """Queries of ``query_tokens`` attend to the keys/values of ``key_value_tokens``.

    Attributes:
        query_tokens: Names of the query groups.
        key_value_tokens: Names of the key/value groups those queries see.
    """

    query_tokens: Sequence[str] = Field(min_length=1)
    key_value_tokens: Sequence[str] = Field(min_length=1)


def validate_attention_patterns(
    tokens: Sequence[TokenSpec], patterns: Sequence[AttentionPattern]
) -> None:
    """Check that a pattern set is complete and unambiguous.

    Rules: group names are unique; every name a pattern lists is a group; every group is a
    query in exactly one pattern.

    Raises:
        ValueError: one sentence naming the offending group.
    """
    names = [t.name for t in tokens]
    if len(set(names)) != len(names):
        raise ValueError(f"token group names must be unique, got {names}")
    known = set(names)
    query_count = dict.fromkeys(names, 0)
    for pattern in patterns:
        for group in [*pattern.query_tokens, *pattern.key_value_tokens]:
            if group not in known:
                raise ValueError(
                    f"attention pattern lists unknown token group '{group}'; "
                    f"known groups are {names}"
                )
        for group in pattern.query_tokens:
            query_count[group] += 1
    for group, count in query_count.items():
        if count == 0:
            raise ValueError(
                f"token group '{group}' is not a query in any attention pattern; "
                f"add a pattern whose query_tokens include it"
            )
        if count > 1:
            raise ValueError(
                f"token group '{group}' is a query in {count} attention patterns; "
                f"list each group as a query exactly once"
            )


class AttentionPatternSet(StrictModel):
    """Token groups plus the patterns over them, validated together.

    Attributes:
        tokens: The groups, in sequence order.
        patterns: Who attends to whom; every group is a query exactly once.
    """

    tokens: list[TokenSpec] = Field(min_length=1)
    patterns: list[AttentionPattern] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> AttentionPatternSet:
        validate_attention_patterns(self.tokens, self.patterns)
        return self


def independent_patterns(groups: Sequence[str]) -> list[AttentionPattern]:
    """Each group attends only to itself (block-diagonal attention)."""
    return [AttentionPattern(query_tokens=[g], key_value_tokens=[g]) for g in groups]


def joint_patterns(groups: Sequence[str]) -> list[AttentionPattern]:
    """Every group attends to every group (full attention over the concatenation)."""
    return [AttentionPattern(query_tokens=list(groups), key_value_tokens=list(groups))]
