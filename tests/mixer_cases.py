"""Every benchmarked mixer on each of its mixing paths, as pytest cases (shared by tests)."""

from __future__ import annotations

import pytest

from experiments.bench_specs import build_mixer, default_specs
from experiments.bench_step_setup import path_choices


def mixer_path_cases(
    hidden: int, heads: int, length: int, default: set[tuple[str, str | None]] | None = None
) -> list[object]:
    """``pytest.param(spec, path)`` for each library mixer of the benchmarks and each path.

    The paths are the values of the layer's ``mixing_path`` annotation except ``auto`` (None
    for layers without paths); the plain-PyTorch anchor is left out. With ``default``, the
    cases not in it (by ``(label, path)``) are marked ``slow``.
    """
    cases = []
    for spec in default_specs(hidden, heads):
        if spec.config.get("name") is None:  # the anchor
            continue
        paths = [p for p in path_choices(build_mixer(spec, length)) if p != "auto"] or [None]
        for path in paths:
            slow = default is not None and (spec.label, path) not in default
            marks = (pytest.mark.slow,) if slow else ()
            cases.append(pytest.param(spec, path, id=f"{spec.label}-{path}", marks=marks))
    return cases
