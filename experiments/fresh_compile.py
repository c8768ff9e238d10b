"""``torch.compile`` for benchmarks that compile many models in one process.

Dynamo keeps compiled code per Python code object and recompiles when a guard fails. Every
model of a benchmark run shares some code objects (the encoder's ``forward``, a closure that
calls the layer), so each new model adds one entry there; past ``recompile_limit`` entries (8
by default) Dynamo stops compiling that code and runs it eagerly, with a warning, and the
"compiled" figure of every later row is an eager one. A run of nine ListOps mixers showed it
on its ninth: lra-performer at 46.35 ms "compiled" against 45.51 ms eager
(``results/train_step.md``, commit ``0e4a081``).

:func:`compile_fresh` resets Dynamo before each compile, which also drops the CUDA-graph
trees of earlier models (their private memory pools included), so each row starts as a fresh
process would and one failed recording does not fail the rows after it.
:func:`fail_on_recompile_limit` turns the silent eager fallback into an error while it is
entered (the benchmarks' ``main``), so a row that still reaches the limit is reported as
failed, not timed eager.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])


def compile_fresh(fn: F, mode: str | None = None, backend: Any = "inductor") -> F:
    """``torch.compile(fn, mode=mode, backend=backend)`` after ``torch._dynamo.reset()``.

    Args:
        fn: The module or function to compile.
        mode: ``torch.compile`` mode (None: the default mode).
        backend: ``torch.compile`` backend.

    Returns:
        The compiled module or function; it compiles on its first call.
    """
    torch._dynamo.reset()
    return torch.compile(fn, mode=mode, backend=backend)  # type: ignore[return-value]


@contextlib.contextmanager
def fail_on_recompile_limit() -> Iterator[None]:
    """Inside: Dynamo raises where it would fall back to eager at the recompile limit.

    Without effect on PyTorch releases that lack the setting.
    """
    config = torch._dynamo.config
    if "fail_on_recompile_limit_hit" not in getattr(config, "_config", {}):
        yield
        return
    with config.patch(fail_on_recompile_limit_hit=True):
        yield
