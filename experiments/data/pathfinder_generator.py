"""Seeded, parallel Pathfinder generator: the rules of drewlinsley/pathfinder ``snakes2.py``.

One image (``render_sample``), following the original step by step (``L`` dash length, ``m``
margin, ``d`` seed distance, ``R`` resolution, occupancy values in ``[0, 1]``):

1. ``label ~ U{0, 1}``; ``m`` is drawn from the resolution's margin list.
2. Two target seeds: dash 1 starts at a pixel drawn uniformly among those at least ``2 d`` from
   every edge whose dash (the seed kernel of its orientation, drawn from whole degrees) stays
   off that border; dash 2 starts at ``round(s1 + d (sin a, cos a))``, ``a`` a whole degree.
3. The two targets then grow ALTERNATELY, ``contour_length - 1`` more dashes each. A snake at
   pivot ``p`` with heading ``theta`` moves its pivot to ``p' = ceil(p + (L + 2m) u(theta))``;
   the next dash ends at a pixel ``q`` of the circle of radius ``L + m`` around ``p'`` drawn with
   weight ``(1 - D[q]) max(cos(min(delta c, pi/2)), 0)^2`` (``D`` the occupancy dilated by a
   disk of radius ``m``, ``delta`` the turn, ``c`` the continuity) and runs ``L`` pixels back
   towards ``p'``: dash starts are ``L + 2m`` apart. A dash whose mask meets the occupancy
   (``max(occupancy + mask) >= 1.8``) is redrawn, ``max_dash_tries`` draws in all; then the
   image's targets start again. A snake's dash joins the occupancy when its next dash is placed.
4. ``distractor_budget // (contour_length // 3)`` distractor snakes of ``contour_length // 3``
   dashes start at pixels whose first dash stays off the occupancy (``max_distractor_tries``
   each, then skipped; none once less than 1% of the pixels is free).
5. Target dashes have intensity ``snake_contrast * dash_contrast`` times the Lanczos-rendered
   dash, distractors ``snake_contrast``; images combine by ``max``. Two Lanczos-rendered disks
   (intensity 1) mark the start of target ``o ~ U{0, 1}`` and the end of target ``o`` (label 1)
   or ``1 - o`` (label 0). The image is bytescaled (old ``scipy.misc.bytescale``) to ``[0, 255]``.

Dash patches depend only on the orientation (whole degrees for seeds, the circle's pixels for
the rest), so they are drawn once per parameter set and pasted; that is where the speed comes
from. Each image ``i`` draws from its own generator ``SeedSequence(seed, spawn_key=(i,))``, so
serial and parallel runs write identical bytes.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, model_validator

from experiments.data.manifest import MANIFEST, read_manifest, write_manifest
from experiments.data.pathfinder_draw import (
    bytescale,
    dash_patches,
    dilate,
    disk_footprint,
    flip_by_pi,
    marker,
    place,
    translate,
)
from experiments.data.pathfinder_folder import (
    GENERATOR,
    GENERATOR_VERSION,
    data_files,
    folder_state,
    leftovers,
)

DIFFICULTIES: dict[str, int] = {
    "curv_baseline": 6,
    "curv_contour_length_9": 9,
    "curv_contour_length_14": 14,
}
RESOLUTIONS: tuple[int, ...] = (32, 64, 128, 256)


class PathfinderParams(BaseModel):
    """Generator parameters of one resolution and difficulty (the LRA.md table).

    ``max_dash_tries`` is the original ``max_paddle_retrial + 1`` and ``max_distractor_tries``
    its ``max_distractor_contour_retrial + 1``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    resolution: int
    contour_length: int
    dash_length: int
    thickness: float
    margins: tuple[int, ...]
    antialias: int
    padding: int
    seed_distance: int
    marker_radius: float
    continuity: float
    snake_contrasts: tuple[float, ...]
    dash_contrasts: tuple[float, ...]
    distractor_budget: int
    max_dash_tries: int = 3
    max_distractor_tries: int = 5
    max_image_tries: int = 100_000
    target_batch: int = 8
    stop_free_fraction: float = 0.01

    @model_validator(mode="after")
    def _thickness_fits_the_grid(self) -> PathfinderParams:
        if round(self.thickness * self.antialias) != self.thickness * self.antialias:
            raise ValueError(
                f"Pathfinder thickness={self.thickness} times antialias={self.antialias} must "
                "be a whole number of supersampled pixels."
            )
        return self

    @classmethod
    def for_resolution(
        cls, resolution: int, difficulty: str = "curv_contour_length_14", **overrides: Any
    ) -> PathfinderParams:
        """The table parameters of ``resolution`` (32, 64, 128, 256) and ``difficulty``.

        ``overrides`` replace table entries by field name (e.g. ``antialias=4``).
        """
        if resolution not in _TABLE:
            raise ValueError(
                f"Pathfinder resolution={resolution!r} is not supported; use one of {RESOLUTIONS}."
            )
        if difficulty not in DIFFICULTIES:
            raise ValueError(
                f"Pathfinder difficulty={difficulty!r} is unknown; use one of {list(DIFFICULTIES)}."
            )
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            raise ValueError(
                f"Pathfinder parameter override {unknown[0]!r} is unknown; use one of "
                f"{sorted(cls.model_fields)}."
            )
        fields = {
            "resolution": resolution,
            "contour_length": DIFFICULTIES[difficulty],
            **_TABLE[resolution],
            **overrides,
        }
        return cls(**fields)

    @property
    def distractor_length(self) -> float:
        """``contour_length / 3`` as the metadata writes it (e.g. ``2.0``)."""
        return self.contour_length / 3

    @property
    def distractor_dashes(self) -> int:
        """Dashes per distractor snake: ``max(1, contour_length // 3)``."""
        return max(1, self.contour_length // 3)

    @property
    def n_distractors(self) -> int:
        """Distractor snakes per image: ``distractor_budget // distractor_dashes``."""
        return self.distractor_budget // self.distractor_dashes


# fmt: off
_TABLE: dict[int, dict[str, Any]] = {
    32: dict(dash_length=2, thickness=0.5, margins=(1,), antialias=2, padding=1,
             seed_distance=7, marker_radius=1.5, continuity=1.0, snake_contrasts=(2.0,),
             dash_contrasts=(0.75,), distractor_budget=20),
    64: dict(dash_length=5, thickness=1.0, margins=(1,), antialias=2, padding=1,
             seed_distance=12, marker_radius=2.5, continuity=1.8, snake_contrasts=(0.8,),
             dash_contrasts=(1.0,), distractor_budget=22),
    128: dict(dash_length=5, thickness=1.5, margins=(2, 3), antialias=2, padding=1,
              seed_distance=20, marker_radius=3.0, continuity=1.8, snake_contrasts=(0.9,),
              dash_contrasts=(1.0,), distractor_budget=35),
    256: dict(dash_length=5, thickness=2.0, margins=(3,), antialias=2, padding=22,
              seed_distance=27, marker_radius=5.0, continuity=1.8, snake_contrasts=(1.0,),
              dash_contrasts=(1.0,), distractor_budget=30),
}
# fmt: on


class _Table(NamedTuple):
    """Everything about one parameter set and margin that does not depend on the image.

    Orientation ``i < 360`` is the seed orientation of ``i - 180`` whole degrees, drawn from
    the dash's start pixel; orientation ``360 + k`` points at pixel ``k`` of the circle of
    radius ``L + m`` around a pivot, its dash drawn back from that end pixel.
    """

    theta: np.ndarray  # (360 + K,) radians
    line: np.ndarray  # (360 + K, P, P) dash patch around its anchor pixel
    mask: np.ndarray  # (360 + K, P, P) its occupancy mask
    turn: np.ndarray  # (360 + K, K) max(cos(min(delta c, pi / 2)), 0)^2 from i to ring pixel k
    ring: np.ndarray  # (K, 2) ring offsets from the pivot
    ring_disk: np.ndarray  # (K, D) flat canvas offsets of the radius-m disk around ring pixels
    kernel: list[np.ndarray]  # 360 bool seed kernels (the original's head-centred struct)
    usable: np.ndarray  # (360,) bool: every image pixel's kernel window meets the image
    first: tuple[np.ndarray, ...]  # first seeds: orientation, tail, pivot, cumulative prob.
    win: np.ndarray  # (P * P,) flat canvas offsets of a patch window around its centre
    occ0: np.ndarray  # (n, n) empty occupancy: the padding border, guard band of zeros
    g: int  # guard band width


@functools.lru_cache(maxsize=16)
def _table(p: PathfinderParams, margin: int) -> _Table:
    L, R = p.dash_length, p.resolution
    draw = functools.partial(
        dash_patches, length=L, thickness=p.thickness, margin=margin, aa=p.antialias
    )
    seed_theta = np.arange(-180, 180) * np.pi / 180  # (360,)
    r = L + margin
    deg = np.arange(0, 360, 360.0 / (2 * r * np.pi)) * np.pi / 180
    offs = np.stack([np.floor(r * np.sin(deg)), np.floor(r * np.cos(deg))], 1).astype(np.int64)
    ring = np.unique(offs, axis=0)  # (K, 2)
    ring_theta = np.arctan2(ring[:, 0], ring[:, 1]).astype(np.float64)  # (K,)
    patches = [draw(th) for th in seed_theta] + [draw(flip_by_pi(th)) for th in ring_theta]
    theta = np.concatenate([seed_theta, ring_theta])  # (360 + K,)
    delta = np.abs(ring_theta[None, :] - theta[:, None])  # (360 + K, K)
    delta = np.minimum(np.minimum(delta, 2 * np.pi - delta) * p.continuity, np.pi / 2)
    turn = np.maximum(np.cos(delta), 0) ** 2
    half = patches[0][0].shape[0] // 2
    g = half + L + 2 * margin + 2
    n = R + 2 * g
    disk = np.argwhere(disk_footprint(margin)) - margin  # (D, 2)
    ring_disk = (ring[:, None, :] + disk[None, :, :]) @ np.array([n, 1])  # (K, D)
    k_size, k_head = 2 * r + 1, (r + 1, r + 1)
    kernel = [place((k_size, k_size), m, k_head) == 1.0 for _, m in patches[:360]]
    ones = np.ones((R, R))
    usable = np.array([dilate(ones, k).min() > 0 for k in kernel])
    occ0 = np.zeros((n, n))
    inner = occ0[g : g + R, g : g + R]
    pad = p.padding
    inner[:pad], inner[-pad:], inner[:, :pad], inner[:, -pad:] = 1, 1, 1, 1
    first = _first_seeds(p, margin, inner, kernel, usable, seed_theta)
    w = np.arange(-half, half + 1)
    win = (w[:, None] * n + w[None, :]).reshape(-1)  # (P * P,)
    return _Table(
        theta,
        np.stack([a for a, _ in patches]),
        np.stack([b for _, b in patches]),
        turn,
        ring,
        ring_disk,
        kernel,
        usable,
        first,
        win,
        occ0,
        g,
    )


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


class _Snake:
    """A growing snake: pivot, orientation index, its newest dash's mask, its dash tips."""

    def __init__(self, pivot: tuple[int, int], orient: int, tail: tuple[int, int]) -> None:
        self.pivot, self.orient, self.last = pivot, orient, (orient, tail)
        self.tips = [tail]  # seed start, then the end pixel of every grown dash


class _Scene:
    """Image and occupancy of one image on a canvas with a guard band of ``g`` zeros.

    Canvas pixel ``(r + g, c + g)`` is image pixel ``(r, c)``: pasting a patch that crosses the
    edge and cropping is the original's clipping, and zeros outside never block a dash.
    """

    def __init__(self, p: PathfinderParams, margin: int, rng: np.random.Generator) -> None:
        self.p, self.margin, self.rng = p, margin, rng
        self.tab = tab = _table(p, margin)
        self.g, self.n = tab.g, tab.occ0.shape[0]
        self.img = np.zeros_like(tab.occ0)  # (n, n)
        self.occ = tab.occ0.copy()  # (n, n) occupancy in [0, 1]
        self.occ_flat = self.occ.reshape(-1)  # (n * n,) view
        self.half = tab.line.shape[1] // 2
        self.radius = p.dash_length + margin
        self.step = float(p.dash_length + 2 * margin)
        self.sin, self.cos = np.sin(tab.theta).tolist(), np.cos(tab.theta).tolist()

    def reset(self) -> None:
        self.img.fill(0.0)
        self.occ[...] = self.tab.occ0

    def view(self, a: np.ndarray) -> np.ndarray:
        """The ``(R, R)`` image part of a canvas."""
        g, R = self.g, self.p.resolution
        return a[g : g + R, g : g + R]

    def paste(self, a: np.ndarray, patch: np.ndarray, at: tuple[int, int]) -> None:
        h = self.half
        r, c = at[0] + self.g, at[1] + self.g
        view = a[r - h : r + h + 1, c - h : c + h + 1]
        np.maximum(view, patch, out=view)

    def start(self, tail: tuple[int, int], k: int, contrast: float) -> _Snake | None:
        """A snake whose first dash starts at ``tail`` with orientation ``k`` (None: off-image)."""
        theta, L, R = float(self.tab.theta[k]), self.p.dash_length, self.p.resolution
        head = translate(tail, theta, L)
        pivot = translate(head, flip_by_pi(theta), L + self.margin)
        if not all(0 <= v < R for v in (*head, *pivot)):
            return None
        self.paste(self.img, _f32(self.tab.line[k] * contrast), tail)
        return _Snake(pivot, k, tail)

    def first_seed(self, contrast: float) -> _Snake:
        """The first target dash, drawn from its accepted distribution (``_first_seeds``)."""
        ks, tails, _, cum = self.tab.first
        j = min(int(np.searchsorted(cum, self.rng.random(), side="right")), len(cum) - 1)
        tail = (int(tails[j, 0]), int(tails[j, 1]))
        return self.start(tail, int(ks[j]), contrast)

    def second_seed(self, first: tuple[int, int], contrast: float) -> _Snake | None:
        """The second target's first dash, ``seed_distance`` from ``first`` (no occupancy test)."""
        p, rng = self.p, self.rng
        for _ in range(p.max_dash_tries):
            k = int(rng.integers(360))
            a = int(rng.integers(360)) * np.pi / 180
            tail = (
                int(np.round(first[0] + p.seed_distance * np.sin(a))),
                int(np.round(first[1] + p.seed_distance * np.cos(a))),
            )
            got = self.start(tail, k, contrast)
            if got is not None:
                return got
        return None

    def seed(self, contrast: float) -> _Snake | None:
        """A distractor's first dash at a start whose kernel window is free (``seed_snake``)."""
        p, tab, rng = self.p, self.tab, self.rng
        occ, lined = self.view(self.occ), None
        for _ in range(p.max_dash_tries):
            k = int(rng.integers(360))
            if not tab.usable[k]:
                return None  # the original fails here too (a window sees only -inf)
            if lined is None:
                if np.count_nonzero(occ <= 0.3) < p.stop_free_fraction * occ.size:
                    return None
                lined = occ.copy()
                lined[0], lined[-1], lined[:, 0], lined[:, -1] = 1, 1, 1, 1
            free = np.flatnonzero(dilate(lined, tab.kernel[k]) <= 0.3)
            if free.size == 0:
                return None
            tail = divmod(int(free[rng.integers(free.size)]), p.resolution)
            got = self.start(tail, k, contrast)
            if got is not None:
                return got
        return None

    def extend(self, s: _Snake, contrast: float) -> bool:
        """Grow ``s`` by one dash (``extend_snake``); False when no dash fits."""
        p, tab, g, n, R, r = self.p, self.tab, self.g, self.n, self.p.resolution, self.radius
        pr = math.ceil(s.pivot[0] + self.step * self.sin[s.orient])
        pc = math.ceil(s.pivot[1] + self.step * self.cos[s.orient])
        if r <= pr < R - r and r <= pc < R - r:
            idx = slice(None)
            ring = tab.ring
        else:
            rr, cc = tab.ring[:, 0] + pr, tab.ring[:, 1] + pc
            idx = np.flatnonzero((rr >= 0) & (rr < R) & (cc >= 0) & (cc < R))
            if idx.size == 0:
                return False
            ring = tab.ring[idx]
        base = (pr + g) * n + pc + g
        dil = self.occ_flat[base + tab.ring_disk[idx]].max(axis=1)  # (K',)
        weight = (1.0 - dil) * tab.turn[s.orient, idx]  # (K',)
        total = weight.sum()
        if total < 1e-4:
            return False
        cmf = np.cumsum(weight / total)
        h = self.half
        for _ in range(p.max_dash_tries):
            j = int(np.argmax(cmf - self.rng.random() > 0))
            hr, hc = pr + int(ring[j, 0]), pc + int(ring[j, 1])
            k = 360 + (j if isinstance(idx, slice) else int(idx[j]))
            window = self.occ[hr + g - h : hr + g + h + 1, hc + g - h : hc + g + h + 1]
            if (window + tab.mask[k]).max() < 1.8:
                break
        else:
            return False
        self.paste(self.img, _f32(tab.line[k] * contrast), (hr, hc))
        self.paste(self.occ, tab.mask[s.last[0]], s.last[1])
        s.pivot, s.orient, s.last = (pr, pc), k, (k, (hr, hc))
        s.tips.append((hr, hc))
        return True

    def commit(self, s: _Snake) -> None:
        """Add the snake's newest dash to the occupancy."""
        self.paste(self.occ, self.tab.mask[s.last[0]], s.last[1])

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        return self.img.copy(), self.occ.copy()

    def restore(self, state: tuple[np.ndarray, np.ndarray]) -> None:
        self.img[...], self.occ[...] = state


def _f32(x: np.ndarray) -> np.ndarray:
    """Round to float32 and back: the original stores dashes in float32 images."""
    return x.astype(np.float32).astype(np.float64)


def _pick(rng: np.random.Generator, values: tuple[Any, ...]) -> Any:
    return values[0] if len(values) == 1 else values[int(rng.integers(len(values)))]


class _Targets(NamedTuple):
    """The accepted pair of target snakes: canvases after them and their dash tips."""

    img: np.ndarray  # (n * n,) flat canvas
    occ: np.ndarray  # (n * n,)
    tips: np.ndarray  # (2, contour_length, 2) start pixel, then each dash's end pixel
    attempt: int  # index of the accepted attempt (0-based, over all batches)


def _paste_rows(
    a: np.ndarray, rows: np.ndarray, centre: np.ndarray, patch: np.ndarray, win: np.ndarray
) -> None:
    """``a[rows[i], centre[i] + win] = max(., patch[i])`` (flat canvases, one patch per row)."""
    idx = (rows[:, None], centre[:, None] + win[None, :])  # (A, 1), (A, P * P)
    a[idx] = np.maximum(a[idx], patch)


def _target_batch(
    p: PathfinderParams, margin: int, rng: np.random.Generator, batch: int
) -> _Targets | None:
    """``batch`` independent attempts at the two targets (``two_snakes``) run in lockstep.

    Every attempt follows the original: first seed, second seed ``seed_distance`` away, then
    ``contour_length - 1`` dashes per snake grown alternately; an attempt dies where the
    original would start again. The first surviving attempt (by index) is returned, so the
    result is a draw from the original's accepted distribution; None when all die.
    """
    tab = _table(p, margin)
    g, n, R, L, B = tab.g, tab.occ0.shape[0], p.resolution, p.dash_length, batch
    line = tab.line.reshape(len(tab.theta), -1)  # (360 + K, P * P)
    mask = tab.mask.reshape(len(tab.theta), -1)  # (360 + K, P * P)
    sin, cos = np.sin(tab.theta), np.cos(tab.theta)  # (360 + K,)
    img = np.zeros((B, n * n))
    occ = np.tile(tab.occ0.reshape(-1), (B, 1))  # (B, n * n)
    rows = np.arange(B)
    flat = lambda rc: (rc[..., 0] + g) * n + rc[..., 1] + g  # noqa: E731 (canvas index)
    mu = rng.permuted(np.tile(np.array(p.snake_contrasts * 2), (B, 1)), axis=1)[:, :2]  # (B, 2)
    dash_c = lambda: np.asarray(p.dash_contrasts)[rng.integers(len(p.dash_contrasts), size=B)]  # noqa: E731

    orient = np.zeros((B, 2), dtype=np.int64)  # orientation index of each snake's newest dash
    pivot = np.zeros((B, 2, 2), dtype=np.int64)
    last = np.zeros((B, 2, 2), dtype=np.int64)  # newest dash: anchor pixel (its mask is orient)
    tips = np.zeros((B, 2, p.contour_length, 2), dtype=np.int64)
    ks, tails, pivots, cum = tab.first
    j = np.minimum(np.searchsorted(cum, rng.random(B), side="right"), len(cum) - 1)
    orient[:, 0], pivot[:, 0], last[:, 0], tips[:, 0, 0] = ks[j], pivots[j], tails[j], tails[j]
    _paste_rows(
        img, rows, flat(tails[j]), _f32(line[ks[j]] * (mu[:, 0] * dash_c())[:, None]), tab.win
    )

    alive = np.ones(B, dtype=bool)
    pending = rows
    c2 = mu[:, 1] * dash_c()
    for _ in range(p.max_dash_tries):
        if pending.size == 0:
            break
        k = rng.integers(360, size=pending.size)
        a = rng.integers(360, size=pending.size) * np.pi / 180
        t = np.stack(
            [
                np.round(tails[j[pending], 0] + p.seed_distance * np.sin(a)),
                np.round(tails[j[pending], 1] + p.seed_distance * np.cos(a)),
            ],
            1,
        )
        t = t.astype(np.int64)  # (A, 2)
        th = tab.theta[k]
        head = np.stack(
            [np.ceil(t[:, 0] + float(L) * np.sin(th)), np.ceil(t[:, 1] + float(L) * np.cos(th))], 1
        ).astype(np.int64)
        rev = np.where(th < 0, th + np.pi, th - np.pi)
        piv = np.stack(
            [
                np.ceil(head[:, 0] + float(L + margin) * np.sin(rev)),
                np.ceil(head[:, 1] + float(L + margin) * np.cos(rev)),
            ],
            1,
        )
        piv = piv.astype(np.int64)
        ok = np.all((head >= 0) & (head < R) & (piv >= 0) & (piv < R), axis=1)
        done = pending[ok]
        orient[done, 1], pivot[done, 1], last[done, 1], tips[done, 1, 0] = (
            k[ok],
            piv[ok],
            t[ok],
            t[ok],
        )
        _paste_rows(img, done, flat(t[ok]), _f32(line[k[ok]] * c2[done, None]), tab.win)
        pending = pending[~ok]
    alive[pending] = False

    step = float(L + 2 * margin)
    for seg in range(1, p.contour_length):
        contrast = dash_c()
        for s in (0, 1):
            a = np.flatnonzero(alive)
            if a.size == 0:
                return None
            o = orient[a, s]
            pr = np.ceil(pivot[a, s, 0] + step * sin[o]).astype(np.int64)  # (A,)
            pc = np.ceil(pivot[a, s, 1] + step * cos[o]).astype(np.int64)
            cr, cc = pr[:, None] + tab.ring[:, 0], pc[:, None] + tab.ring[:, 1]  # (A, K)
            inside = (cr >= 0) & (cr < R) & (cc >= 0) & (cc < R)  # (A, K)
            base = (pr + g) * n + pc + g  # (A,)
            dil = occ[a[:, None, None], base[:, None, None] + tab.ring_disk[None]].max(-1)
            weight = (1.0 - dil) * tab.turn[o] * inside  # (A, K)
            total = weight.sum(1)  # (A,)
            cmf = np.cumsum(weight / np.where(total > 0, total, 1.0)[:, None], axis=1)
            chosen = np.full(a.size, -1)
            pend = np.flatnonzero(total >= 1e-4)
            for _ in range(p.max_dash_tries):
                if pend.size == 0:
                    break
                jj = np.argmax(cmf[pend] - rng.random(pend.size)[:, None] > 0, axis=1)
                head = base[pend] + tab.ring[jj] @ np.array([n, 1])  # (A',)
                hit = occ[a[pend, None], head[:, None] + tab.win[None]] + mask[360 + jj]
                fits = hit.max(1) < 1.8
                chosen[pend[fits]] = jj[fits]
                pend = pend[~fits]
            ok = chosen >= 0
            alive[a[~ok]] = False
            a, jj, pr, pc = a[ok], chosen[ok], pr[ok], pc[ok]
            hr, hc = pr + tab.ring[jj, 0], pc + tab.ring[jj, 1]
            head = np.stack([hr, hc], 1)  # (A, 2)
            c = (mu[a, s] * contrast[a])[:, None]
            _paste_rows(img, a, flat(head), _f32(line[360 + jj] * c), tab.win)
            _paste_rows(occ, a, flat(last[a, s]), mask[orient[a, s]], tab.win)
            pivot[a, s] = np.stack([pr, pc], 1)
            orient[a, s], last[a, s], tips[a, s, seg] = 360 + jj, head, head
    won = np.flatnonzero(alive)
    if won.size == 0:
        return None
    b = int(won[0])
    _paste_rows(occ, won[:1], flat(last[won[:1], 1]), mask[orient[won[:1], 1]], tab.win)
    return _Targets(img[b], occ[b], tips[b], b)


def _distractor(scene: _Scene) -> bool:
    """One distractor snake (``make_snake``); the scene is unchanged when it fails."""
    p, rng = scene.p, scene.rng
    state = scene.snapshot()
    snake = scene.seed(_pick(rng, p.snake_contrasts))
    ok = snake is not None
    for _ in range(p.distractor_dashes - 1):
        ok = ok and scene.extend(snake, _pick(rng, p.snake_contrasts))
    if not ok:
        scene.restore(state)
        return False
    scene.commit(snake)
    return True


def render_sample(
    rng: np.random.Generator, params: PathfinderParams
) -> tuple[np.ndarray, int, dict[str, Any]]:
    """Draw one Pathfinder image.

    Args:
        rng: The image's own random generator.
        params: Resolution and difficulty parameters.

    Returns:
        ``(image, label, meta)``: a ``(R, R)`` uint8 image, the label (1: the two markers lie on
        the same snake), and a dict with ``margin``, ``marker_snakes`` (target ids under the
        two markers), ``markers`` (their ``(row, col)`` pixels), ``target_tips`` (per target the
        start pixel of its first dash, then the end pixel of each further dash),
        ``n_distractors`` (drawn) and ``image_tries``, in image coordinates.
    """
    p = params
    label = int(rng.integers(2))
    margin = int(_pick(rng, p.margins))
    targets, tried = None, 0
    while targets is None:
        if tried >= p.max_image_tries:
            raise RuntimeError(
                f"Pathfinder could not place the two target snakes in {tried} tries at "
                f"resolution={p.resolution}; the parameters leave too little room."
            )
        batch = min(p.target_batch << (2 * (tried > 0) + 2 * (tried > p.target_batch)), 256)
        targets = _target_batch(p, margin, rng, batch)
        tried += batch
    attempt = tried - batch + targets.attempt + 1
    scene = _Scene(p, margin, rng)
    scene.img.reshape(-1)[:] = targets.img
    scene.occ.reshape(-1)[:] = targets.occ
    drawn = 0
    for _ in range(p.n_distractors):
        for _ in range(p.max_distractor_tries):
            if _distractor(scene):
                drawn += 1
                break

    o = int(rng.integers(2))
    other = o if label == 1 else 1 - o
    tips = targets.tips  # (2, contour_length, 2)
    markers = (tuple(int(v) for v in tips[o, 0]), tuple(int(v) for v in tips[other, -1]))
    image = scene.view(scene.img).copy()  # (R, R)
    for m in markers:
        np.maximum(image, marker(p.resolution, m, p.marker_radius, p.antialias), out=image)
    meta = {
        "margin": margin,
        "marker_snakes": (o, other),
        "markers": markers,
        "target_tips": [tips[0], tips[1]],
        "n_distractors": drawn,
        "image_tries": attempt,
    }
    return bytescale(image), label, meta


def image_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of image ``index``: child ``index`` of ``SeedSequence(seed).spawn``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def metadata_line(subdir: int, i: int, label: int, params: PathfinderParams, margin: int) -> str:
    """One official metadata row, e.g. ``imgs/43 sample_0.png 0 0 1.8 6 2.0 5 1.5 2 1``."""
    p = params
    fields = [
        f"imgs/{subdir}",
        f"sample_{i}.png",
        str(i),
        str(label),
        repr(float(p.continuity)),
        str(p.contour_length),
        repr(float(p.distractor_length)),
        str(p.dash_length),
        repr(float(p.thickness)),
        str(margin),
        str(len(p.dash_contrasts)),
    ]
    return " ".join(fields)


def _write_subdir(task: tuple[str, dict[str, Any], int, int, int, int]) -> int:
    """Render and write images ``start .. start + count - 1`` into ``imgs/<subdir>``."""
    out, params_dict, seed, subdir, start, count = task
    params = PathfinderParams(**params_dict)
    root = Path(out)
    final_imgs = root / "imgs" / str(subdir)
    final_meta = root / "metadata" / f"{subdir}.npy"
    if final_meta.exists() and final_imgs.is_dir():
        return count  # finished by an earlier run (metadata is renamed last)
    tmp_imgs = root / "imgs" / f".tmp-{subdir}"
    for stale in (tmp_imgs, final_imgs):
        if stale.exists():
            shutil.rmtree(stale)
    tmp_imgs.mkdir(parents=True)
    lines = []
    for i in range(count):
        image, label, meta = render_sample(image_rng(seed, start + i), params)
        Image.fromarray(image).save(tmp_imgs / f"sample_{i}.png")  # 2-D uint8: mode "L"
        lines.append(metadata_line(subdir, i, label, params, meta["margin"]))
    os.replace(tmp_imgs, final_imgs)
    tmp_meta = final_meta.with_name(f".{subdir}.npy.tmp")
    tmp_meta.write_text("\n".join(lines) + "\n")
    os.replace(tmp_meta, final_meta)
    return count


def generate_pathfinder(
    out_dir: str | os.PathLike[str],
    *,
    resolution: int = 32,
    difficulty: str = "curv_contour_length_14",
    num_images: int = 200_000,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    images_per_subdir: int = 1000,
    overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Write a Pathfinder data set in the official layout, complete or not at all.

    ``out_dir/imgs/<b>/sample_<i>.png`` (8-bit grayscale, ``resolution`` square) and
    ``out_dir/metadata/<b>.npy`` (a TEXT file, one row per image, see :func:`metadata_line`),
    with ``b = index // images_per_subdir`` and ``i = index % images_per_subdir``.
    ``generator.json`` (the settings) is written first and ``manifest.json`` (settings, counts,
    checksum) last; each image folder is built under a temporary name and renamed. A folder
    that was cut short with the same settings is finished (one sentence says so on stderr);
    one from other settings or another generator version is regenerated from scratch; a
    complete one with the same settings is left as it is.

    Args:
        out_dir: The difficulty folder, e.g. ``data/pathfinder32/curv_contour_length_14``.
        resolution: 32, 64, 128 (Path-X) or 256.
        difficulty: ``curv_baseline``, ``curv_contour_length_9`` or ``curv_contour_length_14``.
        num_images: Number of images (the LRA release has 200000).
        seed: Root seed; image ``k`` uses ``SeedSequence(seed, spawn_key=(k,))``.
        workers: Processes (default ``os.cpu_count()``); 1 runs in this process.
        progress: Show a tqdm progress bar.
        images_per_subdir: Images per ``imgs/<b>`` folder.
        overrides: Parameter table entries to replace (see :meth:`PathfinderParams.for_resolution`).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ValueError: On a bad argument, a folder of official (not generated) data, or a complete
            folder made with other settings (one sentence naming the fix).
    """
    params = PathfinderParams.for_resolution(resolution, difficulty, **(overrides or {}))
    for name, value in (("num_images", num_images), ("images_per_subdir", images_per_subdir)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"generate_pathfinder {name}={value!r} must be a positive integer.")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"generate_pathfinder workers={workers!r} must be at least 1.")
    root = Path(out_dir)
    spec = {
        "generator": GENERATOR,
        "version": GENERATOR_VERSION,
        "params": params.model_dump(mode="json"),
        "seed": seed,
        "num_images": num_images,
        "images_per_subdir": images_per_subdir,
    }
    if _prepare_folder(root, spec):
        return root
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    (root / "generator.json").write_text(json.dumps(spec, indent=1) + "\n")

    tasks = [
        (str(root), params.model_dump(), seed, b, start, min(images_per_subdir, num_images - start))
        for b, start in enumerate(range(0, num_images, images_per_subdir))
    ]
    from tqdm.auto import tqdm

    desc = f"pathfinder{resolution}/{difficulty}"
    with tqdm(total=num_images, desc=desc, unit="img", disable=not progress) as bar:
        if workers == 1 or len(tasks) == 1:
            for task in tasks:
                bar.update(_write_subdir(task))
        else:
            # fork: the workers need no re-import of the (heavy) experiments.data package
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            with mp.get_context(method).Pool(min(workers, len(tasks))) as pool:
                for done in pool.imap_unordered(_write_subdir, tasks):
                    bar.update(done)
    write_manifest(root, {**spec, "num_subdirs": len(tasks)}, data_files(root))
    return root


def _prepare_folder(root: Path, spec: dict[str, Any]) -> bool:
    """Make ``root`` ready for writing ``spec``; True when it already holds that data set."""
    state, why = folder_state(root)
    if state == "official":
        raise ValueError(
            f"{root} holds Pathfinder data this generator did not write (no generator.json or "
            f"{MANIFEST}); write to an empty --out instead."
        )
    if state == "complete":
        manifest = read_manifest(root) or {}
        diff = [k for k in spec if manifest.get(k) != spec[k]]
        if not diff:
            return True
        k = diff[0]
        raise ValueError(
            f"{root} already holds a complete Pathfinder set made with {k}="
            f"{manifest.get(k)!r} (asked {k}={spec[k]!r}); delete it or write to another --out."
        )
    if state == "absent":
        return False
    old = root / "generator.json"
    same = old.is_file() and json.loads(old.read_text() or "null") == spec
    if state == "incomplete" and same:
        print(
            f"{root} is incomplete ({why}); finishing the missing image folders.", file=sys.stderr
        )
    else:
        print(f"{root} is {state} ({why}); regenerating it from scratch.", file=sys.stderr)
        for sub in ("imgs", "metadata"):
            shutil.rmtree(root / sub, ignore_errors=True)
    for left in leftovers(root):
        shutil.rmtree(left) if left.is_dir() else left.unlink()
    for name in ("generator.json", MANIFEST):
        (root / name).unlink(missing_ok=True)
    return False
