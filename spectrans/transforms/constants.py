"""Constant tensors (transform matrices, index maps, filter taps): cached in eager code.

Inside compiled graphs they are built again (:func:`eager_cached`) or held as constants
(:func:`graph_constant`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import torch

P = ParamSpec("P")
R = TypeVar("R")

_CACHES: list[functools._lru_cache_wrapper] = []
"""The caches of every decorated builder (:func:`clear_caches`)."""


def clear_caches() -> None:
    """Drop the results held by every :func:`eager_cached` and :func:`graph_constant` builder."""
    for cache in _CACHES:
        cache.cache_clear()


def _cached_builder(build: Callable[P, R], maxsize: int, *, traced: bool) -> Callable[P, R]:
    """``build`` behind an LRU cache listed for :func:`clear_caches`, with ``cache_clear``.

    Cached calls run outside inference mode and without autograd, so autograd can save the
    results for a backward. With ``traced``, calls inside a ``torch.compile`` trace bypass the
    cache and call ``build``. The cache sits inside a plain function: Dynamo traces through an
    ``lru_cache`` wrapper even when it is marked a constant result.
    """

    @functools.lru_cache(maxsize=maxsize)
    def cached(*args: P.args, **kwargs: P.kwargs) -> R:
        with torch.inference_mode(False), torch.no_grad():
            return build(*args, **kwargs)

    @functools.wraps(build)
    def get(*args: P.args, **kwargs: P.kwargs) -> R:
        if traced and torch.compiler.is_compiling():
            return build(*args, **kwargs)
        return cached(*args, **kwargs)

    get.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    _CACHES.append(cached)
    return get


def eager_cached(maxsize: int = 8) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a builder of constant tensors so eager callers share one result per arguments.

    Eager code gets the result built once per argument tuple (``functools.lru_cache``), built
    outside inference mode and without autograd, so autograd can save it for a backward even
    when the first call came from an evaluation under ``torch.inference_mode``. Inside a
    ``torch.compile`` trace the builder is called as it is: the construction becomes part of
    the graph (elementwise, fused into one kernel) and nothing is held between calls. The
    decorated function has ``cache_clear``.

    Not for code inside a custom op (``torch.library.custom_op``): a compiled graph runs the
    op's implementation eagerly during CUDA-graph warm-up, so the first result would be
    allocated from the graph's private memory pool and stay alive there, which the next
    recording rejects. Such ops build their constants per call or avoid them (flips instead
    of index maps).

    Args:
        maxsize: Results kept (least recently used dropped).
    """

    def decorate(build: Callable[P, R]) -> Callable[P, R]:
        return _cached_builder(build, maxsize, traced=True)

    return decorate


def graph_constant(maxsize: int = 16) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a builder of constant tensors whose compiled graphs hold the result as constants.

    Every caller, eager or compiled, gets the result built once per argument tuple
    (``functools.lru_cache``), outside inference mode and without autograd (as
    :func:`eager_cached`). The decorated function is marked
    ``torch.compiler.assume_constant_result``: a ``torch.compile`` trace calls it once and
    keeps the tensors it returns as constants of the graph, on their device, instead of
    recording their construction. For builders that start on the host (Python lists, a
    pywt-style construction) and copy to the device: a recorded host-to-device copy is refused
    by CUDA-graph capture. The arguments must be hashable and fixed per graph (Dynamo guards on
    them). The decorated function has ``cache_clear``.

    Args:
        maxsize: Results kept (least recently used dropped).
    """

    def decorate(build: Callable[P, R]) -> Callable[P, R]:
        return torch.compiler.assume_constant_result(_cached_builder(build, maxsize, traced=False))

    return decorate
