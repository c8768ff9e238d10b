"""Seeded, vectorised, parallel Pathfinder generator (drewlinsley/pathfinder rules, LRA parameters).

One image (``render_sample``):

1. ``label ~ U{0, 1}``; the margin ``m`` is drawn from the resolution's margin list.
2. Target snake 0 starts at a free pixel ``s0``; target snake 1 at a free pixel ``s1`` with
   ``round(|s1 - s0|) = seed_distance``. Each has ``contour_length`` dashes.
3. ``n_distractors`` distractor snakes of ``int(contour_length / 3)`` dashes start at random free
   pixels (``max_distractor_tries`` each, then skipped).
4. A snake grows dash by dash from pivot ``p`` with heading ``theta``: the next pivot ``q`` is
   drawn among free pixels of the digital circle ``round(|q - p|) = L + m`` with weight
   ``max(cos(min(delta c, pi / 2)), 0)^2`` (``delta`` the turn angle, ``c`` the continuity);
   the dash runs from ``p`` for ``L`` pixels towards ``q``. A dash whose core (pixels within
   ``max(t / 2, 0.5)`` of it) hits the occupancy (every earlier dash dilated to ``t / 2 + m``,
   the snake's own previous dash excepted, and the padding border) is redrawn; after
   ``max_dash_tries`` draws the snake fails and is retried (a target failing
   ``max_target_tries`` times restarts the image).
5. Dashes are rendered antialiased (hard line at ``aa``x, Lanczos down, 8-bit rounding) with
   intensity ``min(1, snake_contrast * dash_contrast * D)`` and combined by ``max``; two disk
   markers of intensity 1 go on the start of target ``o ~ U{0, 1}`` and on the end of target
   ``o`` (label 1) or of target ``1 - o`` (label 0); the image is bytescaled to ``[0, 255]``.

Each image ``i`` draws from its own generator ``SeedSequence(seed, spawn_key=(i,))`` (the ``i``-th
child of ``SeedSequence(seed).spawn``), so serial and parallel runs write identical bytes.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing as mp
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict

from experiments.data.pathfinder_draw import (
    bytescale,
    paste_max,
    render_dashes,
    render_disk,
    ring_offsets,
    segment_distance,
)

DIFFICULTIES: dict[str, int] = {
    "curv_baseline": 6,
    "curv_contour_length_9": 9,
    "curv_contour_length_14": 14,
}
RESOLUTIONS: tuple[int, ...] = (32, 64, 128, 256)


class PathfinderParams(BaseModel):
    """Generator parameters of one resolution and difficulty (the LRA.md table).

    One deliberate difference from LRA.md: ``antialias`` is 4, not 2 (the original wrapper's
    ``antialias_scale``). With 2, 32-px hard images have a non-zero pixel fraction of ~0.46,
    above the released data's ~0.35-0.40; with 4 it is ~0.43. Pass ``antialias=2`` to
    :meth:`for_resolution` for the table value.

    The number of distractor snakes is ``floor(k / dl)`` when ``distractor_floor_div`` else
    ``ceil(k / dl)``, with ``k = distractor_numerator`` and ``dl = contour_length / 3``.
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
    distractor_numerator: int
    distractor_floor_div: bool
    max_dash_tries: int = 3
    max_target_tries: int = 4
    max_distractor_tries: int = 4
    max_image_tries: int = 100

    @classmethod
    def for_resolution(
        cls, resolution: int, difficulty: str = "curv_contour_length_14", **overrides: Any
    ) -> PathfinderParams:
        """The table parameters of ``resolution`` (32, 64, 128, 256) and ``difficulty``.

        ``overrides`` replace table entries by field name (e.g. ``antialias=2``).
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
        fields = {"resolution": resolution, "contour_length": DIFFICULTIES[difficulty],
                  **_TABLE[resolution], **overrides}
        return cls(**fields)

    @property
    def distractor_length(self) -> float:
        """``contour_length / 3`` (written to the metadata as a float, e.g. ``2.0``)."""
        return self.contour_length / 3

    @property
    def distractor_dashes(self) -> int:
        """Dashes per distractor snake: ``max(1, int(contour_length / 3))``."""
        return max(1, int(self.distractor_length))

    @property
    def n_distractors(self) -> int:
        """Distractor snakes per image (see the class docstring)."""
        ratio = self.distractor_numerator / self.distractor_length
        return int(ratio // 1) if self.distractor_floor_div else math.ceil(ratio)


_TABLE: dict[int, dict[str, Any]] = {
    32: dict(dash_length=2, thickness=0.5, margins=(1,), antialias=4, padding=1,
             seed_distance=7, marker_radius=1.5, continuity=1.0, snake_contrasts=(2.0,),
             dash_contrasts=(0.75,), distractor_numerator=20, distractor_floor_div=True),
    64: dict(dash_length=5, thickness=1.0, margins=(1,), antialias=4, padding=1,
             seed_distance=12, marker_radius=2.5, continuity=1.8, snake_contrasts=(0.8,),
             dash_contrasts=(1.0,), distractor_numerator=22, distractor_floor_div=False),
    128: dict(dash_length=5, thickness=1.5, margins=(2, 3), antialias=4, padding=1,
              seed_distance=20, marker_radius=3.0, continuity=1.8, snake_contrasts=(0.9,),
              dash_contrasts=(1.0,), distractor_numerator=35, distractor_floor_div=False),
    256: dict(dash_length=5, thickness=2.0, margins=(3,), antialias=4, padding=22,
              seed_distance=27, marker_radius=5.0, continuity=1.8, snake_contrasts=(1.0,),
              dash_contrasts=(1.0,), distractor_numerator=30, distractor_floor_div=False),
}

Dash = tuple[np.ndarray, int]  # (start pixel (2,) int64, index of its direction on the ring)


class _DashTable(NamedTuple):
    """Everything about a dash that depends only on its direction ``k`` on the ring.

    A dash starts at an integer pivot and points at one of the ``K`` ring pixels, so its
    footprints and its rendered patch are functions of ``k`` alone: computed once, then gathered.
    """

    ring: np.ndarray  # (K, 2) int64 offsets to the next pivot
    vec: np.ndarray  # (K, 2) float64 dash vectors (length L)
    turn_weight: np.ndarray  # (K, K) weight of going k -> k': cos(min(delta c, pi/2))^2
    core: np.ndarray  # (K, 2f+1, 2f+1) bool, pixels within core_r of the dash
    mask: np.ndarray  # (K, 2f+1, 2f+1) bool, pixels within mask_r of the dash
    patch: np.ndarray  # (K, 2h+1, 2h+1) float64 rendered dash in [0, 1]


@functools.lru_cache(maxsize=16)
def _dash_table(p: PathfinderParams, margin: int) -> _DashTable:
    ring, angles = ring_offsets(p.dash_length + margin)
    vec = ring * (p.dash_length / np.hypot(ring[:, 0], ring[:, 1]))[:, None]  # (K, 2)
    turn = np.abs(np.angle(np.exp(1j * (angles[None, :] - angles[:, None]))))  # (K, K)
    bent = turn * p.continuity
    turn_weight = np.where(bent < np.pi / 2, np.cos(bent) ** 2, 0.0)  # (K, K)
    foot_half = _foot_half(p, margin)
    dist = np.stack([segment_distance(v, foot_half) for v in vec])  # (K, 2f+1, 2f+1)
    patch = render_dashes(np.zeros_like(vec), vec, p.thickness, p.antialias,
                          _render_half(p))  # (K, 2h+1, 2h+1)
    return _DashTable(ring, vec, turn_weight, dist <= _core_radius(p),
                      dist <= _mask_radius(p, margin), patch)


def _core_radius(p: PathfinderParams) -> float:
    return max(p.thickness / 2, 0.5)


def _mask_radius(p: PathfinderParams, margin: int) -> float:
    return p.thickness / 2 + margin


def _foot_half(p: PathfinderParams, margin: int) -> int:
    return math.ceil(p.dash_length + _mask_radius(p, margin))


def _render_half(p: PathfinderParams) -> int:
    return math.ceil(p.dash_length + p.thickness / 2) + 3  # + the Lanczos-3 support


class _Scene:
    """Occupancy of one image on a canvas with a guard band of ``g`` pixels on each side."""

    def __init__(self, params: PathfinderParams, margin: int, rng: np.random.Generator) -> None:
        p = params
        self.p, self.rng, self.margin = p, rng, margin
        self.table = _dash_table(p, margin)
        self.foot_half = _foot_half(p, margin)
        self.marker_half = math.ceil(p.marker_radius) + 1
        self.g = max(self.foot_half, _render_half(p), self.marker_half,
                     p.dash_length + margin + 2)
        n = p.resolution + 2 * self.g
        self.lo, self.hi = self.g + p.padding, self.g + p.resolution - p.padding  # valid [lo, hi)
        self.occ = np.ones((n, n), dtype=bool)  # (n, n) True = occupied or outside
        self.occ[self.lo : self.hi, self.lo : self.hi] = False

    def random_free_pixel(self) -> np.ndarray | None:
        """A uniformly drawn free pixel of the valid area, or None when there is none."""
        free = np.flatnonzero(~self.occ)  # (F,)
        if free.size == 0:
            return None
        k = int(free[self.rng.integers(free.size)])
        return np.array(divmod(k, self.occ.shape[1]), dtype=np.int64)

    def free_on_circle(self, centre: np.ndarray, radius: float) -> np.ndarray | None:
        """A uniformly drawn free pixel with ``round(|q - centre|) = radius``, or None."""
        offsets, _ = ring_offsets(float(radius))
        cand = centre[None, :] + offsets  # (K, 2)
        inside = np.all((cand >= self.lo) & (cand < self.hi), axis=1)  # (K,)
        cand = cand[inside]
        cand = cand[~self.occ[cand[:, 0], cand[:, 1]]]
        if len(cand) == 0:
            return None
        return cand[self.rng.integers(len(cand))]

    def grow(self, start: np.ndarray, n_dashes: int) -> list[Dash] | None:
        """Grow one snake of ``n_dashes`` from ``start``; on failure restore the occupancy."""
        rng, occ, tab, h = self.rng, self.occ, self.table, self.foot_half
        snapshot = occ.copy()
        pivot, last, prev = start, None, None
        dashes: list[Dash] = []
        for _ in range(n_dashes):
            cand = pivot[None, :] + tab.ring  # (K, 2)
            weight = ~occ[cand[:, 0], cand[:, 1]]  # (K,) free pixels
            weight = weight * tab.turn_weight[last] if last is not None else weight
            cum = weight.cumsum(dtype=np.float64)  # (K,)
            r, c = int(pivot[0]), int(pivot[1])
            window = occ[r - h : r + h + 1, c - h : c + h + 1]  # (2h+1, 2h+1) view
            placed = None
            for _ in range(self.p.max_dash_tries):
                if cum[-1] <= 0:
                    break
                k = int(cum.searchsorted(rng.random() * cum[-1], side="right"))
                k = min(k, len(cum) - 1)
                if not (window & tab.core[k]).any():
                    placed = k
                    break
            if placed is None:
                occ[...] = snapshot
                return None
            if prev is not None:
                _or_window(occ, prev[0], tab.mask[prev[1]], h)
            prev = (pivot, placed)
            dashes.append(prev)
            last, pivot = placed, cand[placed]
        if prev is not None:
            _or_window(occ, prev[0], tab.mask[prev[1]], h)
        return dashes


def _or_window(occ: np.ndarray, centre: np.ndarray, mask: np.ndarray, h: int) -> None:
    r, c = int(centre[0]), int(centre[1])
    occ[r - h : r + h + 1, c - h : c + h + 1] |= mask


def _pick(rng: np.random.Generator, values: tuple[Any, ...]) -> Any:
    return values[0] if len(values) == 1 else values[int(rng.integers(len(values)))]


def _targets(scene: _Scene) -> tuple[list[Dash], list[Dash]] | None:
    p = scene.p
    for _ in range(p.max_target_tries):
        s0 = scene.random_free_pixel()
        snake0 = scene.grow(s0, p.contour_length) if s0 is not None else None
        if snake0 is not None:
            break
    else:
        return None
    for _ in range(p.max_target_tries):
        s1 = scene.free_on_circle(s0, p.seed_distance)
        snake1 = scene.grow(s1, p.contour_length) if s1 is not None else None
        if snake1 is not None:
            return snake0, snake1
    return None


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
        two markers), ``markers`` (their ``(row, col)`` pixels), ``target_starts``,
        ``target_ends``, ``target_dashes`` (per target a ``(n, 2, 2)`` array of dash start and
        end points), ``n_distractors`` (drawn) and ``image_tries``, all in image coordinates.
    """
    p = params
    label = int(rng.integers(2))
    for attempt in range(1, p.max_image_tries + 1):  # noqa: B007 (reported in meta)
        margin = int(_pick(rng, p.margins))
        scene = _Scene(p, margin, rng)
        targets = _targets(scene)
        if targets is not None:
            break
    else:
        raise RuntimeError(
            f"Pathfinder could not place the two target snakes in {p.max_image_tries} tries "
            f"at resolution={p.resolution}; the parameters leave too little room."
        )
    snakes: list[list[Dash]] = list(targets)
    for _ in range(p.n_distractors):
        for _ in range(p.max_distractor_tries):
            start = scene.random_free_pixel()
            snake = scene.grow(start, p.distractor_dashes) if start is not None else None
            if snake is not None:
                snakes.append(snake)
                break

    g, res, tab = scene.g, p.resolution, scene.table
    canvas = np.zeros(scene.occ.shape, dtype=np.float64)  # (R + 2g, R + 2g)
    for snake in snakes:
        snake_gain = float(_pick(rng, p.snake_contrasts))
        for pivot, k in snake:
            gain = snake_gain * float(_pick(rng, p.dash_contrasts))
            paste_max(canvas, np.minimum(tab.patch[k] * gain, 1.0), (int(pivot[0]), int(pivot[1])))

    o = int(rng.integers(2))
    other = o if label == 1 else 1 - o
    t_starts = [tuple(int(v) for v in s[0][0]) for s in targets]
    t_ends = [tuple(int(v) for v in np.rint(s[-1][0] + tab.vec[s[-1][1]])) for s in targets]
    markers = (t_starts[o], t_ends[other])
    disk = render_disk(p.marker_radius, p.antialias, scene.marker_half)
    for m in markers:
        paste_max(canvas, disk, m)
    image = bytescale(canvas[g : g + res, g : g + res])  # (R, R)

    def shift(t: tuple[int, int]) -> tuple[int, int]:
        return (t[0] - g, t[1] - g)

    meta = {
        "margin": margin,
        "marker_snakes": (o, other),
        "markers": tuple(shift(m) for m in markers),
        "target_starts": [shift(t) for t in t_starts],
        "target_ends": [shift(t) for t in t_ends],
        "target_dashes": [np.array([[a, a + tab.vec[k]] for a, k in s]) - g for s in targets],
        "n_distractors": len(snakes) - 2,
        "image_tries": attempt,
    }
    return image, label, meta


def image_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of image ``index``: child ``index`` of ``SeedSequence(seed).spawn``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def metadata_line(subdir: int, i: int, label: int, params: PathfinderParams, margin: int) -> str:
    """One official metadata row, e.g. ``imgs/43 sample_0.png 0 0 1.8 6 2.0 5 1.5 2 1``."""
    p = params
    fields = [f"imgs/{subdir}", f"sample_{i}.png", str(i), str(label), repr(float(p.continuity)),
              str(p.contour_length), repr(float(p.distractor_length)), str(p.dash_length),
              repr(float(p.thickness)), str(margin), str(len(p.dash_contrasts))]
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
    """Write a Pathfinder data set in the official layout.

    ``out_dir/imgs/<b>/sample_<i>.png`` (8-bit grayscale, ``resolution`` square) and
    ``out_dir/metadata/<b>.npy`` (a TEXT file, one row per image, see :func:`metadata_line`),
    with ``b = index // images_per_subdir`` and ``i = index % images_per_subdir``. Each folder
    is written under a temporary name and renamed when complete; folders whose metadata file
    already exists are kept, so an interrupted run resumes. ``out_dir/generator.json`` records
    the parameters and seed; resuming with different ones is refused.

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
    """
    params = PathfinderParams.for_resolution(resolution, difficulty, **(overrides or {}))
    for name, value in (("num_images", num_images), ("images_per_subdir", images_per_subdir)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"generate_pathfinder {name}={value!r} must be a positive integer.")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"generate_pathfinder workers={workers!r} must be at least 1.")
    root = Path(out_dir)
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    spec = {"params": params.model_dump(mode="json"), "seed": seed,
            "images_per_subdir": images_per_subdir}
    spec_path = root / "generator.json"
    if spec_path.exists() and json.loads(spec_path.read_text()) != spec:
        raise ValueError(
            f"{spec_path} records other generator settings than resolution={resolution}, "
            f"difficulty={difficulty!r}, seed={seed}; write to an empty out_dir instead."
        )
    spec_path.write_text(json.dumps(spec, indent=1) + "\n")

    tasks = [(str(root), params.model_dump(), seed, b, start,
              min(images_per_subdir, num_images - start))
             for b, start in enumerate(range(0, num_images, images_per_subdir))]
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
    return root
