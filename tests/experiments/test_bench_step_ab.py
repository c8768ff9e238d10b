"""experiments/bench_step_ab.py: interleaved windows of a switch's two sides in one process."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from experiments import bench_step_ab
from spectrans.layers import dropout

CPU = torch.device("cpu")


def _compiled_step(module: torch.nn.Module, calls: list[bool]) -> Callable[[], None]:
    run = torch.compile(module)
    x = torch.randn(4, 8, requires_grad=True)

    def step() -> None:
        calls.append(dropout.HASHED_MASKS_WHEN_COMPILED)
        run(x).sum().backward()

    return step


def test_windows_of_the_two_sides_alternate_after_both_compile() -> None:
    torch._dynamo.reset()
    calls: list[bool] = []
    before = dropout.HASHED_MASKS_WHEN_COMPILED
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), dropout.Dropout(0.5))
    step = _compiled_step(net, calls)
    figures, peak = bench_step_ab.time_ab(step, CPU, "hashed-dropout", 1, 2, 3)
    assert len(figures[False]) == len(figures[True]) == 3 and peak is None
    # warm-up off, warm-up on, then off, on windows of 2 steps, three rounds
    assert calls == [False, True] + [False, False, True, True] * 3
    assert dropout.HASHED_MASKS_WHEN_COMPILED == before  # restored


def test_a_switch_that_does_not_reach_the_step_is_an_error() -> None:
    torch._dynamo.reset()
    before = dropout.HASHED_MASKS_WHEN_COMPILED
    step = _compiled_step(torch.nn.Linear(8, 8), [])  # no dropout: hashing changes nothing
    with pytest.raises(bench_step_ab.ABError, match="compiled no new graph"):
        bench_step_ab.time_ab(step, CPU, "hashed-dropout", 1, 1, 1)
    assert dropout.HASHED_MASKS_WHEN_COMPILED == before


@pytest.mark.parametrize("name", sorted(bench_step_ab.AB_SWITCHES))
def test_each_switch_is_set_and_restored(name: str) -> None:
    switch = bench_step_ab.AB_SWITCHES[name]
    before = switch.is_on()
    with bench_step_ab.restored(name) as set_switch:
        set_switch(not before)
        assert switch.is_on() is (not before)
    assert switch.is_on() is before


def test_a_constant_found_at_another_on_value_is_given_back_as_it_was() -> None:
    from spectrans.layers.attention import favor_contract

    saved = favor_contract.UNROLLED_LOGITS_MAX_WIDTH
    favor_contract.UNROLLED_LOGITS_MAX_WIDTH = 16  # as --logit-unroll 16 leaves it
    try:
        with bench_step_ab.restored("logit-unroll") as set_switch:
            set_switch(True)
            assert favor_contract.UNROLLED_LOGITS_MAX_WIDTH == bench_step_ab.LOGIT_UNROLL_WIDTH
            set_switch(False)
            assert favor_contract.UNROLLED_LOGITS_MAX_WIDTH == 0
        assert favor_contract.UNROLLED_LOGITS_MAX_WIDTH == 16
    finally:
        favor_contract.UNROLLED_LOGITS_MAX_WIDTH = saved
