import math

import numpy as np
import pytest

from experiments.data.pathfinder_draw import flip_by_pi, translate
from experiments.data.pathfinder_generator import PathfinderParams
from experiments.data.pathfinder_tables import CODE_VALUE, FREE, LOW_CODE, table, to_codes

CASES = [(32, 1), (128, 3)]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}px-m{c[1]}")
def tab_params(request):
    resolution, margin = request.param
    p = PathfinderParams.for_resolution(resolution)
    return table(p, margin), p, margin


def test_codes_hold_every_mask_value_exactly(tab_params):
    tab, _, _ = tab_params
    values = tab.mask.reshape(len(tab.theta), -1)
    np.testing.assert_array_equal(CODE_VALUE[tab.mask_code], values)
    assert np.all(np.diff(CODE_VALUE) > 0) and CODE_VALUE[255] == 1.0
    np.testing.assert_array_equal(FREE, 1.0 - CODE_VALUE)
    assert CODE_VALUE[LOW_CODE] <= 0.3 < CODE_VALUE[LOW_CODE + 1]
    with pytest.raises(ValueError, match="float32"):
        to_codes(np.array([0.5]))


def test_blocks_decide_the_float_sum_test():
    c = np.arange(256)[:, None]  # canvas codes
    m = np.arange(256)[None, :]  # mask codes
    from experiments.data.pathfinder_tables import blocks_of

    oracle = CODE_VALUE[c] + CODE_VALUE[m] >= 1.8  # (256, 256)
    blocks = blocks_of(np.arange(256, dtype=np.uint8))  # (256,)
    np.testing.assert_array_equal(c > blocks[m], oracle)


def test_compact_hit_test_and_paste_equal_the_whole_window(tab_params):
    tab, _, _ = tab_params
    rng = np.random.default_rng(0)
    n, h = tab.n, tab.line.shape[1] // 2
    K = len(tab.ring)
    mask = tab.mask.reshape(len(tab.theta), -1)
    outcomes = set()
    for _ in range(80):
        occ = (rng.integers(0, 256, n * n) * (rng.random(n * n) < 0.04)).astype(np.uint8)
        at = int(rng.integers(h, n - h)) * n + int(rng.integers(h, n - h))
        j = int(rng.integers(K))
        window = CODE_VALUE[occ[at + tab.win]]  # the float test on the whole window
        oracle = (window + mask[360 + j]).max() >= 1.8
        hit = (occ[at + tab.ring_hit_off[j]] > tab.ring_hit_thr[j]).any()
        assert hit == oracle
        outcomes.add(bool(hit))
        k = int(rng.integers(len(tab.theta)))
        full = occ.copy()
        full[at + tab.win] = np.maximum(full[at + tab.win], tab.mask_code[k])
        idx = at + tab.paste_off[k]
        occ[idx] = np.maximum(occ[idx], tab.paste_code[k])
        np.testing.assert_array_equal(occ, full)
    assert outcomes == {True, False}


def test_step_and_inside_tables_follow_the_formulas(tab_params):
    tab, p, margin = tab_params
    step, R, off = float(p.dash_length + 2 * margin), p.resolution, tab.off
    rng = np.random.default_rng(1)
    for _ in range(300):
        o = int(rng.integers(len(tab.theta)))
        v, w = (int(x) for x in rng.integers(-p.dash_length - margin, R + 8, size=2))
        assert tab.next_r[o, v + off] - off == math.ceil(v + step * np.sin(tab.theta[o]))
        assert tab.next_c[o, w + off] - off == math.ceil(w + step * np.cos(tab.theta[o]))
        inside = [0 <= v + dr < R and 0 <= w + dc < R for dr, dc in tab.ring]
        assert tab.inside[v + off, w + off].tolist() == inside


def test_seed_tables_follow_translate(tab_params):
    tab, p, margin = tab_params
    start_r, start_c, ok_r, ok_c, piv_r, piv_c = tab.second
    R, off, L, d = p.resolution, tab.off, p.dash_length, p.seed_distance
    rng = np.random.default_rng(2)
    for _ in range(300):
        k, a = (int(x) for x in rng.integers(360, size=2))
        s = tuple(int(x) for x in rng.integers(R, size=2))
        ang = a * np.pi / 180
        t = (int(np.round(s[0] + d * np.sin(ang))), int(np.round(s[1] + d * np.cos(ang))))
        assert (start_r[a, s[0]] - off, start_c[a, s[1]] - off) == t
        theta = float(tab.theta[k])
        head = translate(t, theta, L)
        pivot = translate(head, flip_by_pi(theta), L + margin)
        valid = all(0 <= x < R for x in (*head, *pivot))
        assert bool(ok_r[k, t[0] + off] and ok_c[k, t[1] + off]) == valid
        if valid:
            assert (piv_r[k, t[0] + off] - off, piv_c[k, t[1] + off] - off) == pivot
