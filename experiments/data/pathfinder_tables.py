"""Per-parameter tables of the Pathfinder generator: dash patches, occupancy codes, geometry.

Everything here depends on the parameter set and the margin only, so it is built once per
process (``table`` is cached) and looked up while drawing.

Occupancy codes. Every occupancy value the generator meets is a dash mask value or the
padding's 1, and a mask value is ``v(c) = float32(c / 255)`` for an integer ``c`` in
``[0, 255]`` (the original resizes masks to 8 bits and keeps them in float32 images). ``v`` is
strictly increasing, so the occupancy is stored as the code ``c`` (uint8) and every test on
values becomes a test on codes with the same outcome:

* ``max`` of values is ``v`` of the ``max`` of codes (pasting, dilating);
* a dash of mask code ``m`` meets a pixel of code ``c`` when ``v(c) + v(m) >= 1.8``; that holds
  exactly when ``c > blocks[m]``, ``blocks[m] = max{c : v(c) + v(m) < 1.8}`` (255: never), so
  only the few mask pixels with ``blocks < 255`` are read;
* ``1 - v(c)`` is read from a 256-entry table (``FREE``), ``v(c) <= 0.3`` is ``c <= LOW_CODE``.

Geometry. A pivot at integer ``p`` with heading ``o`` moves to ``ceil(p + (L + 2m) u(o))``;
``next_r[o, p_r + off]`` (and ``next_c``) hold that value for every pivot coordinate a snake
can reach, computed with the same floating-point operations; the seed tables (``second``) do
the same for a seed dash's head and pivot.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from experiments.data.pathfinder_draw import dash_patches, dilate, disk_footprint, flip_by_pi, place

if TYPE_CHECKING:
    from experiments.data.pathfinder_generator import PathfinderParams

CODE_VALUE = (np.arange(256) / 255).astype(np.float32).astype(np.float64)  # (256,) v(c)
FREE = 1.0 - CODE_VALUE  # (256,) 1 - v(c)
LOW_CODE = int(np.flatnonzero(CODE_VALUE <= 0.3)[-1])  # largest code with v(c) <= 0.3


class Table(NamedTuple):
    """Everything about one parameter set and margin that does not depend on the image.

    Orientation ``i < 360`` is the seed orientation of ``i - 180`` whole degrees, drawn from
    the dash's start pixel; orientation ``360 + k`` points at pixel ``k`` of the circle of
    radius ``L + m`` around a pivot, its dash drawn back from that end pixel. Canvases are
    ``(n, n)`` with a guard band of ``g`` pixels around the image, flattened row-major.
    """

    theta: np.ndarray  # (360 + K,) radians
    line: np.ndarray  # (360 + K, P, P) dash patch around its anchor pixel
    mask: np.ndarray  # (360 + K, P, P) its occupancy mask (values)
    mask_code: np.ndarray  # (360 + K, P * P) uint8 occupancy codes of the mask
    blocks: np.ndarray  # (360 + K, P * P) uint8: a canvas code above it blocks the dash
    paste_off: np.ndarray  # (360 + K, Tp) flat offsets of the mask's non-zero pixels
    paste_code: np.ndarray  # (360 + K, Tp) uint8 their codes
    turn: np.ndarray  # (360 + K, K) max(cos(min(delta c, pi / 2)), 0)^2 from i to ring pixel k
    ring: np.ndarray  # (K, 2) ring offsets from the pivot
    ring_flat: np.ndarray  # (K,) the same as flat canvas offsets
    ring_disk: np.ndarray  # (D, K) flat canvas offsets of the radius-m disk around ring pixels
    kernel: list[np.ndarray]  # 360 bool seed kernels (the original's head-centred struct)
    taps: list[list[tuple[int, int]]]  # per seed kernel its set pixels (row, col)
    usable: list[bool]  # (360,) every image pixel's kernel window meets the image
    first: tuple[np.ndarray, ...]  # first seeds: orientation, tail, pivot, cumulative prob.
    win: np.ndarray  # (P * P,) flat canvas offsets of a patch window around its centre
    occ0: np.ndarray  # (n, n) uint8 empty occupancy codes: the padding border, guard band 0
    g: int  # guard band width
    n: int  # canvas side
    sin: list[float]  # (360 + K,) sin(theta)
    cos: list[float]  # (360 + K,) cos(theta)
    ring_hit_off: np.ndarray  # (K, Tb) flat offsets of the pixels that can block dash 360 + k
    ring_hit_thr: np.ndarray  # (K, Tb) uint8 their blocks (a canvas code above it blocks)
    off: int  # coordinate shift of the next_* and inside tables: they index p + off
    next_r: np.ndarray  # (360 + K, W) int64: ceil(p + (L + 2m) sin(theta)) + off at p + off
    next_c: np.ndarray  # (360 + K, W) int64: the same with cos
    inside: np.ndarray  # (W, W, K) bool: ring pixel k of a pivot at (r, c) + off is inside
    second: tuple[np.ndarray, ...]  # second seed: start, validity and pivot (see _second_seed)
    first_state: np.ndarray  # (F, 5) per first seed: orientation, pivot + off, tail flat, tail
    res: int  # image side R
    patches: dict  # cache of dash_patch and of blank target states


def blocks_of(mask_code: np.ndarray) -> np.ndarray:
    """``blocks[m] = max{c : v(c) + v(m) < 1.8}`` for every code of ``mask_code`` (uint8)."""
    fits = CODE_VALUE[:, None] + CODE_VALUE[None, :] < 1.8  # (256 canvas, 256 mask)
    per_mask = (fits.sum(0) - 1).astype(np.uint8)  # fits is a prefix in the canvas code
    return per_mask[mask_code]


def compact(win: np.ndarray, values: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row the window offsets and values where ``keep`` holds, as equal-length rows.

    Short rows repeat their first kept entry (a row with none keeps entry 0), so reading or
    pasting the padded rows gives the same result as the kept entries alone.

    Args:
        win: ``(P * P,)`` flat window offsets.
        values: ``(N, P * P)`` values per row.
        keep: ``(N, P * P)`` bool, the entries that matter.

    Returns:
        ``(offsets, values)``, each ``(N, T)`` with ``T`` the most entries kept in a row.
    """
    width = max(int(keep.sum(1).max()), 1)
    cols = np.zeros((len(values), width), dtype=np.int64)  # (N, T) window positions
    for i, row in enumerate(keep):
        idx = np.flatnonzero(row)
        idx = idx if idx.size else np.zeros(1, dtype=np.int64)
        cols[i] = np.concatenate([idx, np.full(width - idx.size, idx[0])])
    return win[cols], np.take_along_axis(values, cols, 1)


def to_codes(values: np.ndarray) -> np.ndarray:
    """Occupancy values ``v(c)`` as their codes ``c`` (uint8); raises if one is not a code."""
    codes = np.rint(values * 255).astype(np.uint8)
    if not np.array_equal(CODE_VALUE[codes], values):
        raise ValueError("occupancy values must be float32(c / 255) for integers c")
    return codes


@functools.lru_cache(maxsize=16)
def table(p: PathfinderParams, margin: int) -> Table:
    """The :class:`Table` of parameter set ``p`` and margin ``margin`` (cached).

    Orientations are the 360 whole-degree seed headings, then the ``K`` ring pixels at radius
    ``r = L + m``. The canvas has a guard band ``g = P // 2 + L + 2 m + 2`` so that a dash
    pasted at any reachable pivot stays on it, and the step tables cover pivot coordinates in
    ``[-off, R + off)``.
    """
    L, R = p.dash_length, p.resolution
    r = L + margin
    seed_theta = np.arange(-180, 180) * np.pi / 180  # (360,)
    ring = _ring(r)  # (K, 2)
    ring_theta = np.arctan2(ring[:, 0], ring[:, 1]).astype(np.float64)  # (K,)
    theta = np.concatenate([seed_theta, ring_theta])  # (360 + K,)
    draw = functools.partial(
        dash_patches, length=L, thickness=p.thickness, margin=margin, aa=p.antialias
    )
    patches = [draw(th) for th in seed_theta] + [draw(flip_by_pi(th)) for th in ring_theta]
    half = patches[0][0].shape[0] // 2
    g = half + L + 2 * margin + 2
    n = R + 2 * g
    # pivots stay within r of the image, ring pixels 2 r; second seeds d of the first
    off = max(2 * (r + L + 2 * margin) + 2, p.seed_distance + 1)
    seed_masks = [m for _, m in patches[:360]]
    return Table(
        **_dash_fields(patches, theta, ring_theta, p.continuity, n),
        **_ring_fields(ring, margin, n),
        **_seed_fields(p, margin, seed_masks, seed_theta, g, n, off),
        **_step_fields(theta, ring, R, off, float(L + 2 * margin)),
        g=g,
        n=n,
        res=R,
        patches={},
    )


def _ring(r: int) -> np.ndarray:
    """The ``(K, 2)`` integer offsets ``floor(r (sin, cos))`` of the circle of radius ``r``.

    Angles are sampled ``360 / (2 pi r)`` degrees apart (about one pixel of arc) and the
    offsets deduplicated (sorted row-major by :func:`numpy.unique`).
    """
    deg = np.arange(0, 360, 360.0 / (2 * r * np.pi)) * np.pi / 180  # (S,) radians
    offs = np.stack([np.floor(r * np.sin(deg)), np.floor(r * np.cos(deg))], 1)  # (S, 2)
    return np.unique(offs.astype(np.int64), axis=0)  # (K, 2)


def _dash_fields(
    patches: list[tuple[np.ndarray, np.ndarray]],
    theta: np.ndarray,
    ring_theta: np.ndarray,
    continuity: float,
    n: int,
) -> dict[str, Any]:
    """The :class:`Table` fields of the dash patches: images, codes, paste and hit lists, turns.

    The turn weight from orientation ``i`` to ring pixel ``k`` is
    ``max(cos(min(delta c, pi / 2)), 0)^2`` with ``delta`` the wrapped angle between them.

    Args:
        patches: Per orientation ``(line, mask)``, each ``(P, P)``.
        theta: ``(360 + K,)`` orientations (radians).
        ring_theta: ``(K,)`` headings of the ring pixels (radians).
        continuity: The continuity ``c``.
        n: Canvas side.

    Returns:
        The fields ``theta``, ``line``, ``mask``, ``mask_code``, ``blocks``, ``paste_off``,
        ``paste_code``, ``turn``, ``win``, ``ring_hit_off`` and ``ring_hit_thr``.
    """
    delta = np.abs(ring_theta[None, :] - theta[:, None])  # (360 + K, K)
    delta = np.minimum(np.minimum(delta, 2 * np.pi - delta) * continuity, np.pi / 2)
    half = patches[0][0].shape[0] // 2
    w = np.arange(-half, half + 1)  # (P,)
    win = (w[:, None] * n + w[None, :]).reshape(-1)  # (P * P,)
    mask = np.stack([b for _, b in patches])  # (360 + K, P, P)
    mask_code = to_codes(mask).reshape(len(theta), -1)  # (360 + K, P * P)
    blocks = blocks_of(mask_code)  # (360 + K, P * P)
    paste_off, paste_code = compact(win, mask_code, mask_code > 0)  # (360 + K, Tp) each
    hit_off, hit_thr = compact(win, blocks, blocks < 255)  # (360 + K, Tb) each
    return {
        "theta": theta,
        "line": np.stack([a for a, _ in patches]),  # (360 + K, P, P)
        "mask": mask,
        "mask_code": mask_code,
        "blocks": blocks,
        "paste_off": paste_off,
        "paste_code": paste_code,
        "turn": np.maximum(np.cos(delta), 0) ** 2,  # (360 + K, K)
        "win": win,
        "ring_hit_off": hit_off[360:],  # (K, Tb)
        "ring_hit_thr": hit_thr[360:],  # (K, Tb)
    }


def _ring_fields(ring: np.ndarray, margin: int, n: int) -> dict[str, Any]:
    """The :class:`Table` fields ``ring``, ``ring_flat`` and ``ring_disk`` (flat offsets).

    ``ring_disk[j, k]`` is the flat canvas offset of pixel ``j`` of the radius-``m`` disk
    around ring pixel ``k``: the pixels whose maximum is the dilated occupancy there.
    """
    disk = np.argwhere(disk_footprint(margin)) - margin  # (D, 2)
    return {
        "ring": ring,  # (K, 2)
        "ring_flat": ring @ np.array([n, 1]),  # (K,)
        "ring_disk": (disk[:, None, :] + ring[None, :, :]) @ np.array([n, 1]),  # (D, K)
    }


def _seed_fields(
    p: PathfinderParams,
    margin: int,
    seed_masks: list[np.ndarray],
    seed_theta: np.ndarray,
    g: int,
    n: int,
    off: int,
) -> dict[str, Any]:
    """The :class:`Table` fields of the seeds: kernels, empty occupancy, first and second seeds.

    The seed kernel of orientation ``i`` is its dash mask's full-value pixels placed with the
    head at ``(r + 1, r + 1)`` of a ``(2 r + 1)`` square; it is usable when dilating the
    ``(R, R)`` ones image by it leaves no pixel empty. The empty occupancy is 1 on the
    ``padding``-wide border of the image and 0 elsewhere (guard band included).

    Args:
        p: Parameter set.
        margin: Margin ``m``.
        seed_masks: The 360 seed dash masks, each ``(P, P)``.
        seed_theta: ``(360,)`` seed orientations (radians).
        g: Guard band width.
        n: Canvas side.
        off: Coordinate shift of the step tables.

    Returns:
        The fields ``kernel``, ``taps``, ``usable``, ``first``, ``first_state``, ``second`` and
        ``occ0``.
    """
    R, r = p.resolution, p.dash_length + margin
    k_size, k_head = 2 * r + 1, (r + 1, r + 1)
    kernel = [place((k_size, k_size), m, k_head) == 1.0 for m in seed_masks]
    ones = np.ones((R, R))
    usable = np.array([dilate(ones, k).min() > 0 for k in kernel])  # (360,)
    occ0 = _empty_occupancy(R, g, n, p.padding)  # (n, n)
    first = _first_seeds(p, margin, occ0[g : g + R, g : g + R], kernel, usable, seed_theta)
    return {
        "kernel": kernel,
        "taps": [[(int(a), int(b)) for a, b in np.argwhere(k)] for k in kernel],
        "usable": usable.tolist(),
        "first": first,
        "first_state": _first_state(first, R, g, n, off),  # (F, 5)
        "second": _second_seed(p, margin, seed_theta, off),
        "occ0": to_codes(occ0),  # (n, n)
    }


def _first_state(first: tuple[np.ndarray, ...], R: int, g: int, n: int, off: int) -> np.ndarray:
    """``(F, 5)`` per first seed: orientation, pivot row and column ``+ off``, tail pixel.

    The tail pixel comes twice: as a flat canvas offset ``(r + g) n + c + g`` and as a flat
    image offset ``r R + c``.
    """
    orient, tail, pivot = first[0], first[1], first[2]  # (F,), (F, 2), (F, 2)
    return np.stack(
        [
            orient,
            pivot[:, 0] + off,
            pivot[:, 1] + off,
            (tail[:, 0] + g) * n + tail[:, 1] + g,
            tail[:, 0] * R + tail[:, 1],
        ],
        1,
    )  # (F, 5)


def _empty_occupancy(R: int, g: int, n: int, pad: int) -> np.ndarray:
    """The ``(n, n)`` empty occupancy values: 1 on the image's ``pad``-wide border, else 0."""
    occ0 = np.zeros((n, n))
    inner = occ0[g : g + R, g : g + R]  # (R, R) view of the image
    inner[:pad], inner[-pad:], inner[:, :pad], inner[:, -pad:] = 1, 1, 1, 1
    return occ0


def _step_fields(
    theta: np.ndarray, ring: np.ndarray, R: int, off: int, step: float
) -> dict[str, Any]:
    """The :class:`Table` fields of the pivot steps: ``next_r``, ``next_c``, ``inside``, trig.

    ``next_r[o, p + off] = ceil(p + step sin(theta_o)) + off`` (``cos`` for ``next_c``) for
    every coordinate ``p`` in ``[-off, R + off)``; ``inside[r + off, c + off, k]`` says ring
    pixel ``k`` of a pivot at ``(r, c)`` lies in the image.
    """
    coord = np.arange(-off, R + off)  # (W,) W = R + 2 off
    sin, cos = np.sin(theta), np.cos(theta)  # (360 + K,)
    next_r = np.ceil(coord[None, :] + step * sin[:, None]).astype(np.int64) + off  # (360 + K, W)
    next_c = np.ceil(coord[None, :] + step * cos[:, None]).astype(np.int64) + off
    in_r = (coord[:, None] + ring[None, :, 0] >= 0) & (coord[:, None] + ring[None, :, 0] < R)
    in_c = (coord[:, None] + ring[None, :, 1] >= 0) & (coord[:, None] + ring[None, :, 1] < R)
    return {
        "off": off,
        "sin": sin.tolist(),
        "cos": cos.tolist(),
        "next_r": next_r,
        "next_c": next_c,
        "inside": in_r[:, None, :] & in_c[None, :, :],  # (W, W, K)
    }


def dash_patch(tab: Table, k: int, contrast: float) -> np.ndarray:
    """``float32(line[k] contrast)`` as float64 (cached per table).

    The dash as the original's float32 image holds it.
    """
    key = (k, float(contrast))
    patch = tab.patches.get(key)
    if patch is None:
        patch = tab.line[k] * contrast
        patch = tab.patches[key] = patch.astype(np.float32).astype(np.float64)
    return patch


def _second_seed(
    p: PathfinderParams, margin: int, seed_theta: np.ndarray, off: int
) -> tuple[np.ndarray, ...]:
    """Per axis, the second target dash of orientation ``k`` at angle ``a`` from the first.

    Its start is ``t = round(s + d sin a)`` (``cos`` for columns) for a first start ``s``, its
    head ``h = ceil(t + L sin theta_k)`` and its pivot ``ceil(h + (L + m) sin(theta_k - pi))``;
    the dash is valid when head and pivot are inside the image on both axes.

    Returns:
        ``(start_r, start_c, ok_r, ok_c, pivot_r, pivot_c)``: ``start_*[a, s]`` is ``t + off``
        (``(360, R)``), ``ok_*[k, t + off]`` bool and ``pivot_*[k, t + off]`` the pivot
        ``+ off`` (``(360, R + 2 off)``).
    """
    L, R, d = p.dash_length, p.resolution, p.seed_distance
    a = np.arange(360) * np.pi / 180  # (360,) whole-degree angles
    first = np.arange(R)  # (R,) start coordinate of the first dash
    coord = np.arange(-off, R + off)  # (W,) start coordinate of the second dash
    rev = np.where(seed_theta < 0, seed_theta + np.pi, seed_theta - np.pi)  # (360,)
    out: list[np.ndarray] = []
    for trig in (np.sin, np.cos):
        out.append(np.round(first[None, :] + d * trig(a)[:, None]).astype(np.int64) + off)
    for trig in (np.sin, np.cos):
        head = np.ceil(coord[None, :] + float(L) * trig(seed_theta)[:, None]).astype(np.int64)
        pivot = np.ceil(head + float(L + margin) * trig(rev)[:, None]).astype(np.int64)
        out.append((head >= 0) & (head < R) & (pivot >= 0) & (pivot < R))  # (360, W)
        out.append(pivot + off)
    start_r, start_c, ok_r, piv_r, ok_c, piv_c = out
    return start_r, start_c, ok_r, ok_c, piv_r, piv_c


def _first_seeds(
    p: PathfinderParams,
    margin: int,
    occ: np.ndarray,
    kernel: list[np.ndarray],
    usable: np.ndarray,
    seed_theta: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Where the first target dash can start, with the probability the original gives it.

    The original draws an orientation ``k`` (whole degrees) and a start uniformly among the
    ``|F_k|`` free pixels, restarting the image when ``F_k`` is empty or the kernel unusable and
    drawing again when head or pivot leave the image. The scene is empty then, so ``F_k`` is
    fixed and the accepted pair ``(k, s)`` has probability proportional to ``1 / |F_k|``.
    """
    b = 2 * p.seed_distance
    lined = occ.copy()
    lined[:b], lined[-b:], lined[:, :b], lined[:, -b:] = 1, 1, 1, 1
    ks, tails, pivots, weights = [], [], [], []
    L, m, R = p.dash_length, margin, p.resolution
    for k in np.flatnonzero(usable):
        free = np.argwhere(dilate(lined, kernel[k]) <= 0.3)  # (F, 2)
        th = seed_theta[k]
        rev = flip_by_pi(th)
        head = np.ceil(free + float(L) * np.array([np.sin(th), np.cos(th)])).astype(np.int64)
        pivot = np.ceil(head + float(L + m) * np.array([np.sin(rev), np.cos(rev)]))
        pivot = pivot.astype(np.int64)  # (F, 2)
        ok = np.all((head >= 0) & (head < R) & (pivot >= 0) & (pivot < R), axis=1)
        ks.append(np.full(ok.sum(), k))
        tails.append(free[ok])
        pivots.append(pivot[ok])
        weights.append(np.full(ok.sum(), 1.0 / max(len(free), 1)))
    ks, tails, pivots = np.concatenate(ks), np.concatenate(tails), np.concatenate(pivots)
    if not len(ks):
        raise ValueError(
            f"Pathfinder resolution={p.resolution} leaves no room for the first target dash "
            f"{b} pixels from the edges; lower seed_distance."
        )
    cum = np.cumsum(np.concatenate(weights))
    return ks, tails, pivots, cum / cum[-1]
