"""The two target snakes of a Pathfinder image, many attempts in lockstep (``two_snakes``).

An attempt places the first target dash, the second ``seed_distance`` away, then grows the two
targets alternately by ``contour_length - 1`` dashes each; it dies where the original would
start the image again. ``target_batch`` runs ``B`` independent attempts in lockstep, one
NumPy operation per step for all attempts alive, and returns the first survivor (by index):
a draw from the original's accepted distribution.

Every attempt keeps only its occupancy canvas (uint8 codes, see
:mod:`experiments.data.pathfinder_tables`) and the list of its dashes; the image of the
survivor alone is drawn at the end (``max`` of pasted dashes does not depend on the order).
The random draws, their sizes and their order do not depend on how the steps are computed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from experiments.data.pathfinder_tables import FREE, Table, dash_patch, table

if TYPE_CHECKING:
    from experiments.data.pathfinder_generator import PathfinderParams

# Columns of the per-attempt state matrix: attempt index, flat index of its canvas pixel
# (-off, -off) (``pivot_flat = base + (r + off) n + (c + off)``), per snake (0, 1) its pivot
# row and column shifted by ``off``, then from _DASH on the history: dash ``seg`` of snake
# ``s`` has its orientation in column ``_dash(s, seg)`` and its flat anchor pixel next to it.
_ID, _BASE, _PR, _PC, _DASH = 0, 1, 2, 4, 6


def _dash(s: int, seg: int, length: int) -> int:
    """State column of the orientation of dash ``seg`` of snake ``s`` (anchor: the next)."""
    return _DASH + 2 * (s * length + seg)


class Targets(NamedTuple):
    """The accepted pair of target snakes: canvases after them and their dash tips."""

    img: np.ndarray  # (n, n) float64 canvas holding the two targets
    occ: np.ndarray  # (n, n) uint8 occupancy codes after them
    tips: np.ndarray  # (2, contour_length, 2) start pixel, then each dash's end pixel
    attempt: int  # index of the accepted attempt within the batch (0-based)


def _contrast_draw(
    p: PathfinderParams, rng: np.random.Generator, batch: int
) -> Callable[[], np.ndarray]:
    """A function drawing one dash contrast per attempt, ``(B,)``.

    With one dash contrast ``rng.integers(1)`` draws nothing from the bit stream, so the
    constant is returned without calling it.
    """
    values = np.asarray(p.dash_contrasts)
    if len(values) == 1:
        const = np.full(batch, values[0])
        return lambda: const
    return lambda: values[rng.integers(len(values), size=batch)]


def target_batch(
    p: PathfinderParams, margin: int, rng: np.random.Generator, batch: int
) -> Targets | None:
    """``batch`` independent attempts at the two targets; the first survivor or None.

    Args:
        p: Parameters of the image.
        margin: The image's margin ``m``.
        rng: The image's generator (advanced by every attempt's draws).
        batch: Number of attempts ``B``.

    Returns:
        The first surviving attempt, or None when all die.
    """
    tab = table(p, margin)
    B, C, n = batch, p.contour_length, tab.n
    nn = n * n
    occ = np.empty(B * nn, dtype=np.uint8)  # attempt b's canvas at [b nn, (b + 1) nn)
    occ.reshape(B, nn)[:] = tab.occ0.reshape(-1)
    snake_c = np.array(p.snake_contrasts * 2)[None].repeat(B, 0)  # (B, 2 S) each row the list
    mu = rng.permuted(snake_c, axis=1)[:, :2]  # (B, 2) contrast of each target
    dash_c = _contrast_draw(p, rng, B)
    state, seed_c = _seeds(p, tab, rng, dash_c, B)
    contrasts = [seed_c]  # dash contrast factors of seg 0 (B, 2), then one (B,) per seg
    for seg in range(1, C):
        contrasts.append(dash_c())
        for s in (0, 1):
            if state.shape[0] == 0:
                return None
            state = _grow(tab, p.max_dash_tries, occ, state, s, _dash(s, seg, C), rng)
    if state.shape[0] == 0:
        return None
    b, last = int(state[0, _ID]), _dash(1, C - 1, C)
    k = state[:1, last]
    _paste_codes(occ, state[:1, last + 1], tab.paste_off[k], tab.paste_code[k])
    kinds = state[0, _DASH::2].reshape(2, C)  # (2, C) orientation of every dash
    at = state[0, _DASH + 1 :: 2].reshape(2, C) - b * nn  # (2, C) flat canvas pixels
    tips = np.stack(np.divmod(at, n), -1)  # (2, C, 2) canvas pixels
    img = _draw(tab, kinds, tips, _dash_factors(mu[b], contrasts, b))
    return Targets(img, occ[b * nn : (b + 1) * nn].reshape(n, n), tips - tab.g, b)


def _seeds(
    p: PathfinderParams,
    tab: Table,
    rng: np.random.Generator,
    dash_c: Callable[[], np.ndarray],
    B: int,
) -> tuple[np.ndarray, np.ndarray]:
    """First and second target dashes of every attempt.

    The first starts at a draw from ``tab.first``; the second at
    ``round(s1 + d (sin a, cos a))`` with a whole-degree orientation and angle, redrawn up to
    ``max_dash_tries`` times while its head or pivot leaves the image.

    Returns:
        The state matrix of the attempts that placed both, and the ``(B, 2)`` contrast
        factors of the two seed dashes.
    """
    C, n = p.contour_length, tab.n
    first, second = _dash(0, 0, C), _dash(1, 0, C)
    cum = tab.first[3]
    j = np.minimum(cum.searchsorted(rng.random(B), side="right"), len(cum) - 1)
    state, row = _blank_state(tab, B, C)
    seed = tab.first_state.take(j, 0)  # (B, 5) orientation, pivot + off, tail flat, tail
    state[:, first], state[:, _PR], state[:, _PC] = seed[:, 0], seed[:, 1], seed[:, 2]
    state[:, first + 1] = row + seed[:, 3]
    seed_c = np.empty((B, 2))  # contrast of the two seed dashes
    seed_c[:, 0] = dash_c()
    seed_c[:, 1] = dash_c()

    start_r, start_c, ok_r, ok_c, piv_r, piv_c = tab.second
    first_r, first_c = seed[:, 4] // tab.res, seed[:, 4] % tab.res  # (B,) first tail
    placed = np.zeros(B, dtype=bool)
    pending = np.arange(B)
    for _ in range(p.max_dash_tries):
        if pending.size == 0:
            break
        k = rng.integers(360, size=pending.size)  # orientation (whole degrees)
        a = rng.integers(360, size=pending.size)  # angle from the first start (whole degrees)
        tr, tc = start_r[a, first_r.take(pending)], start_c[a, first_c.take(pending)]  # + off
        ok = ok_r[k, tr] & ok_c[k, tc]
        done, k, tr, tc = pending[ok], k[ok], tr[ok], tc[ok]
        state[done, second] = k
        state[done, _PR + 1], state[done, _PC + 1] = piv_r[k, tr], piv_c[k, tc]
        state[done, second + 1] = state[done, _BASE] + tr * n + tc
        placed[done] = True
        pending = pending[~ok]
    return state[placed], seed_c


def _blank_state(tab: Table, B: int, C: int) -> tuple[np.ndarray, np.ndarray]:
    """A zero ``(B, _DASH + 4 C)`` state with attempt index and canvas base set; row starts.

    Built once per ``(B, C)`` and copied.
    """
    key = ("state", B, C)
    if key not in tab.patches:
        n, g, off = tab.n, tab.g, tab.off
        state = np.zeros((B, _DASH + 4 * C), dtype=np.int64)
        row = np.arange(B) * (n * n)  # (B,) first pixel of each attempt's canvas
        state[:, _ID] = np.arange(B)
        state[:, _BASE] = row + (g - off) * (n + 1)
        tab.patches[key] = (state, row)
    state, row = tab.patches[key]
    return state.copy(), row


def _grow(
    tab: Table,
    tries: int,
    occ: np.ndarray,
    state: np.ndarray,
    s: int,
    col: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """One dash more on snake ``s`` of every attempt (``extend_snake``); the survivors' state.

    The pivot moves to ``p' = ceil(p + (L + 2m) u(theta))``; ring pixel ``k`` of ``p'`` gets the
    weight ``(1 - D[q_k]) turn[theta, k]`` (zero off the image), ``D`` the occupancy dilated by
    the margin disk; up to ``tries`` ring pixels are drawn from the normalised cumulative
    weights until one's dash mask stays off the occupancy. The snake's previous dash then joins
    the occupancy. Attempts without a fitting dash die. The new dash goes to state columns
    ``col`` (orientation) and ``col + 1`` (anchor); the previous one is in the two before.
    """
    o = state[:, col - 2]  # (A,) orientation of the newest dash
    pr = tab.next_r[o, state[:, _PR + s]]  # (A,) shifted by off
    pc = tab.next_c[o, state[:, _PC + s]]
    base = state[:, _BASE] + pr * tab.n + pc  # (A,) flat pivot pixel
    cmf, pend = _ring_cmf(tab, occ, o, pr, pc, base)  # (A, K), (A',)
    chosen, some_die = _draw_ring_pixels(tab, tries, occ, base, cmf, pend, rng)  # (A,)
    if some_die:  # the attempts left without a dash die
        ok = chosen >= 0
        state, chosen, base, pr, pc, o = (x[ok] for x in (state, chosen, base, pr, pc, o))
    _paste_codes(occ, state[:, col - 1], tab.paste_off.take(o, 0), tab.paste_code.take(o, 0))
    state[:, col] = chosen + 360
    state[:, col + 1] = base + tab.ring_flat.take(chosen)
    state[:, _PR + s] = pr
    state[:, _PC + s] = pc
    return state


def _ring_cmf(
    tab: Table, occ: np.ndarray, o: np.ndarray, pr: np.ndarray, pc: np.ndarray, base: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative normalised ring pixel weights, and the attempts whose total allows a draw.

    Ring pixel ``k`` weighs ``(1 - D[q_k]) turn[o, k] [q_k in the image]``, ``D[q_k]`` the
    maximum occupancy code over the margin disk around it (the occupancy dilated by the
    disk). Attempts whose total weight is below ``1e-4`` draw nothing.

    Args:
        tab: The table.
        occ: Flat occupancy codes of all attempts.
        o: ``(A,)`` orientation of each attempt's newest dash.
        pr: ``(A,)`` new pivot row, shifted by ``off``.
        pc: ``(A,)`` new pivot column, shifted by ``off``.
        base: ``(A,)`` flat pixel of the new pivot.

    Returns:
        ``(cmf, pend)``: ``(A, K)`` cumulative weights over the ring, ``(A',)`` the attempts
        that draw.
    """
    disk = occ.take(tab.ring_disk[:, None, :] + base[None, :, None])  # (D, A, K) codes
    dil = np.maximum.reduce(disk, 0)  # (A, K) dilated occupancy codes
    weight = FREE.take(dil) * tab.turn.take(o, 0) * tab.inside[pr, pc]  # (A, K)
    total = np.add.reduce(weight, 1)  # (A,)
    pend = (total >= 1e-4).nonzero()[0]  # (A',) the attempts that draw
    # rows below 1e-4 draw nothing, so any positive floor keeps 0 / 0 away from them
    norm = total if pend.size == o.size else np.maximum(total, 1e-300)  # (A,)
    return np.add.accumulate(weight / norm[:, None], 1), pend  # (A, K), (A',)


def _draw_ring_pixels(
    tab: Table,
    tries: int,
    occ: np.ndarray,
    base: np.ndarray,
    cmf: np.ndarray,
    pend: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, bool]:
    """Per attempt a ring pixel whose dash fits, drawn up to ``tries`` times from ``cmf``.

    A draw takes the first ``k`` with ``cmf[k] > u``, ``u ~ U[0, 1)``; the dash ending at ring
    pixel ``k`` fits when no pixel that can block it holds a code above its threshold. One
    ``rng.random`` call per round, sized by the attempts still drawing.

    Args:
        tab: The table.
        tries: Draws per attempt at most.
        occ: Flat occupancy codes of all attempts.
        base: ``(A,)`` flat pixel of each attempt's pivot.
        cmf: ``(A, K)`` cumulative ring pixel weights.
        pend: ``(A',)`` the attempts that draw.
        rng: The image's generator.

    Returns:
        ``(chosen, some_die)``: ``(A,)`` each attempt's ring pixel (``-1`` where none fits)
        and whether any attempt is left without one.
    """
    every = pend.size == base.size  # every attempt draws (no attempt is dead yet)
    chosen = None if every else np.full(base.size, -1)  # None: every draw so far fits
    jj = None
    for _ in range(tries):
        if pend.size == 0:
            break
        u = rng.random(pend.size)[:, None]  # (A', 1)
        jj = ((cmf if chosen is None else cmf[pend]) > u).argmax(1)  # first cmf above u
        head = (base if chosen is None else base.take(pend)) + tab.ring_flat.take(jj)  # (A',)
        near = occ.take(head[:, None] + tab.ring_hit_off.take(jj, 0))  # (A', Tb)
        hit = np.logical_or.reduce(near > tab.ring_hit_thr.take(jj, 0), 1)  # (A',)
        if chosen is None:  # the first draw of every attempt
            pend = hit.nonzero()[0]
            if pend.size == 0:
                break
            chosen = jj.copy()
            chosen[pend] = -1
        else:
            fit = ~hit
            chosen[pend[fit]] = jj[fit]
            pend = pend[hit]
    if chosen is None:  # every attempt fit at its first draw (or no draw was allowed)
        chosen = jj if pend.size == 0 else np.full(base.size, -1)
    return chosen, bool(pend.size or not every)


def _paste_codes(occ: np.ndarray, at: np.ndarray, off: np.ndarray, codes: np.ndarray) -> None:
    """``occ[at[i] + off[i]] = max(., codes[i])`` for every row ``i`` (flat canvases)."""
    idx = at[:, None] + off  # (A, Tp)
    occ[idx] = np.maximum(occ.take(idx), codes)


def _dash_factors(mu: np.ndarray, contrasts: list[np.ndarray], b: int) -> np.ndarray:
    """``(2, C)`` contrast factors ``mu_s c`` of attempt ``b``'s dashes."""
    out = np.empty((2, len(contrasts)))
    out[:, 0] = contrasts[0][b]
    for seg in range(1, len(contrasts)):
        out[:, seg] = contrasts[seg][b]
    return mu[:, None] * out


def _draw(tab: Table, kinds: np.ndarray, at: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """The ``(n, n)`` canvas of the dashes ``kinds`` anchored at canvas pixels ``at`` (``max``).

    Args:
        tab: The table.
        kinds: ``(2, C)`` orientation of every dash.
        at: ``(2, C, 2)`` its anchor pixel on the canvas.
        factors: ``(2, C)`` its contrast factor.
    """
    img = np.zeros((tab.n, tab.n))
    h = tab.line.shape[1] // 2
    for k, (r, c), f in zip(
        kinds.reshape(-1).tolist(), at.reshape(-1, 2).tolist(), factors.reshape(-1).tolist()
    ):
        view = img[r - h : r + h + 1, c - h : c + h + 1]
        np.maximum(view, dash_patch(tab, k, f), out=view)
    return img
