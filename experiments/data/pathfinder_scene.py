"""The distractor snakes of a Pathfinder image (``make_snake`` of the original), one at a time.

The scene holds the image (float64) and the occupancy (uint8 codes, see
:mod:`experiments.data.pathfinder_tables`) on canvases with a guard band of ``g`` zeros:
canvas pixel ``(r + g, c + g)`` is image pixel ``(r, c)``, so pasting a patch that crosses the
edge and cropping is the original's clipping. A snake that fails leaves the scene as it was:
its dashes reach the image only when it is complete, and the occupancy windows it changed are
put back.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.data.pathfinder_tables import FREE, LOW_CODE, dash_patch, table
from experiments.data.pathfinder_targets import Targets

if TYPE_CHECKING:
    from experiments.data.pathfinder_generator import PathfinderParams


def pick(rng: np.random.Generator, values: tuple[Any, ...]) -> Any:
    """One of ``values`` (no draw when there is only one)."""
    return values[0] if len(values) == 1 else values[int(rng.integers(len(values)))]


class Snake:
    """A growing snake: pivot, orientation index, newest dash, and the dashes to draw."""

    def __init__(self, pivot: tuple[int, int], orient: int, tail: int, contrast: float) -> None:
        self.pivot, self.orient, self.last = pivot, orient, tail  # last: its flat anchor pixel
        self.dashes = [(orient, tail, contrast)]  # (orientation, flat anchor, contrast)
        self.undo: list[tuple[np.ndarray, np.ndarray]] = []  # occupancy windows it changed


class Scene:
    """Image and occupancy of one image after its targets; adds distractor snakes."""

    def __init__(self, p: PathfinderParams, margin: int, rng: np.random.Generator, t: Targets):
        self.p, self.margin, self.rng = p, margin, rng
        self.tab = tab = table(p, margin)
        self.g, self.n, self.R = tab.g, tab.n, p.resolution
        self.img = t.img  # (n, n) float64
        self.occ = t.occ  # (n, n) uint8 occupancy codes
        self.occ_flat = self.occ.reshape(-1)  # (n * n,) view
        self.step = float(p.dash_length + 2 * margin)
        self.pad = tab.kernel[0].shape[0] // 2  # kernel half: padding of the busy map
        self.busy = np.zeros((self.R + 2 * self.pad,) * 2, dtype=bool)  # see _busy

    def view(self, a: np.ndarray) -> np.ndarray:
        """The ``(R, R)`` image part of a canvas."""
        g, R = self.g, self.R
        return a[g : g + R, g : g + R]

    def add_distractors(self) -> int:
        """Up to ``n_distractors`` snakes, ``max_distractor_tries`` tries each; how many drawn.

        A try whose first orientation has an unusable kernel fails before anything else is
        drawn (most tries at 32 px), so that test is made here, before any other work.
        """
        p, rng, usable, contrasts = self.p, self.rng, self.tab.usable, self.p.snake_contrasts
        single = len(contrasts) == 1
        drawn = 0
        for _ in range(p.n_distractors):
            for _ in range(p.max_distractor_tries):
                contrast = contrasts[0] if single else pick(rng, contrasts)
                k = int(rng.integers(360))
                if usable[k] and self.distractor(k, contrast):
                    drawn += 1
                    break
        return drawn

    def distractor(self, k: int, contrast: float) -> bool:
        """One distractor snake, first orientation ``k``; False (scene unchanged) if it fails."""
        p, rng = self.p, self.rng
        snake = self.seed(contrast, k)
        if snake is None:
            return False
        for _ in range(p.distractor_dashes - 1):
            if not self.extend(snake, pick(rng, p.snake_contrasts)):
                for idx, old in reversed(snake.undo):
                    self.occ_flat[idx] = old
                return False
        self._paste_occ(snake.last, snake.orient, None)
        n, h = self.n, self.tab.line.shape[1] // 2
        for kind, at, c in snake.dashes:
            r, q = divmod(at, n)
            view = self.img[r - h : r + h + 1, q - h : q + h + 1]
            np.maximum(view, dash_patch(self.tab, kind, c), out=view)
        return True

    def _paste_occ(self, at: int, k: int, undo: list | None) -> None:
        """Add the mask of orientation ``k`` anchored at flat pixel ``at`` to the occupancy."""
        idx = at + self.tab.paste_off[k]
        old = self.occ_flat.take(idx)
        if undo is not None:
            undo.append((idx, old))
        self.occ_flat[idx] = np.maximum(old, self.tab.paste_code[k])

    def start(self, tail: tuple[int, int], k: int, contrast: float) -> Snake | None:
        """A snake whose first dash starts at ``tail`` with orientation ``k`` (None: off-image).

        Head ``ceil(tail + L u(theta))`` and pivot ``ceil(head + (L + m) u(theta - pi))`` must
        lie inside the image; both are read from the seed tables (``Table.second``).
        """
        _, _, ok_r, ok_c, piv_r, piv_c = self.tab.second
        off = self.tab.off
        tr, tc = tail[0] + off, tail[1] + off
        if not (ok_r[k, tr] and ok_c[k, tc]):
            return None
        pivot = (int(piv_r[k, tr]) - off, int(piv_c[k, tc]) - off)
        return Snake(pivot, k, (tail[0] + self.g) * self.n + tail[1] + self.g, contrast)

    def seed(self, contrast: float, first: int) -> Snake | None:
        """A distractor's first dash at a start whose kernel window is free (``seed_snake``).

        ``first`` is the orientation of the first try (drawn by the caller). A start ``q`` is
        free when no pixel of orientation ``k``'s kernel placed at ``q`` (the cv2 dilation of
        the occupancy, image border included, by the kernel) is above 0.3.
        """
        p, tab, rng, R = self.p, self.tab, self.rng, self.R
        busy = None
        for i in range(p.max_dash_tries):
            k = first if i == 0 else int(rng.integers(360))
            if not tab.usable[k]:
                return None  # the original fails here too (a window sees only -inf)
            if busy is None:
                busy = self._busy()
                if busy is None:
                    return None
            blocked = _dilate_taps(busy, tab.taps[k], R)
            free = np.logical_not(blocked, out=blocked).reshape(-1).nonzero()[0]
            if free.size == 0:
                return None
            tail = divmod(int(free[rng.integers(free.size)]), R)
            got = self.start(tail, k, contrast)
            if got is not None:
                return got
        return None

    def _busy(self) -> np.ndarray | None:
        """Pixels above 0.3 or on the image border, padded by the kernel half with False.

        None when less than ``stop_free_fraction`` of the image is at most 0.3.
        """
        R, h = self.R, self.pad
        inner = self.busy[h : h + R, h : h + R]
        np.greater(self.view(self.occ), LOW_CODE, out=inner)
        if R * R - np.count_nonzero(inner) < self.p.stop_free_fraction * R * R:
            return None
        if self.p.padding < 1:  # with padding the border is occupied already
            inner[0], inner[-1], inner[:, 0], inner[:, -1] = True, True, True, True
        return self.busy

    def extend(self, s: Snake, contrast: float) -> bool:
        """Grow ``s`` by one dash (``extend_snake``); False when no dash fits."""
        p, tab, g, n, R = self.p, self.tab, self.g, self.n, self.R
        r = p.dash_length + self.margin
        pr = math.ceil(s.pivot[0] + self.step * tab.sin[s.orient])
        pc = math.ceil(s.pivot[1] + self.step * tab.cos[s.orient])
        if r <= pr < R - r and r <= pc < R - r:
            idx = slice(None)
            ring = tab.ring_flat
        else:
            rr, cc = tab.ring[:, 0] + pr, tab.ring[:, 1] + pc
            idx = np.flatnonzero((rr >= 0) & (rr < R) & (cc >= 0) & (cc < R))
            if idx.size == 0:
                return False
            ring = tab.ring_flat[idx]
        base = (pr + g) * n + pc + g
        dil = np.maximum.reduce(self.occ_flat.take(base + tab.ring_disk[:, idx]), 0)  # (K',)
        weight = FREE.take(dil) * tab.turn[s.orient, idx]  # (K',)
        total = np.add.reduce(weight)
        if total < 1e-4:
            return False
        cmf = np.add.accumulate(weight / total)  # cumulative sum
        for _ in range(p.max_dash_tries):
            j = int((cmf > self.rng.random()).argmax())  # first cmf above the draw
            head = base + int(ring[j])
            j = j if isinstance(idx, slice) else int(idx[j])
            near = self.occ_flat.take(head + tab.ring_hit_off[j])
            if not np.logical_or.reduce(near > tab.ring_hit_thr[j]):
                break
        else:
            return False
        self._paste_occ(s.last, s.orient, s.undo)
        s.pivot, s.orient, s.last = (pr, pc), 360 + j, head
        s.dashes.append((360 + j, head, contrast))
        return True


def _dilate_taps(busy: np.ndarray, taps: list[tuple[int, int]], size: int) -> np.ndarray:
    """``out[q] = any(busy[q + d])`` over the kernel taps ``d`` (a padded binary dilation)."""
    if not taps:
        return np.zeros((size, size), dtype=bool)
    (r0, c0), *rest = taps
    out = busy[r0 : r0 + size, c0 : c0 + size].copy()
    for dr, dc in rest:
        out |= busy[dr : dr + size, dc : dc + size]
    return out
