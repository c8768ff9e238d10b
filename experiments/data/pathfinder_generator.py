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
the rest), so they are drawn once per parameter set and pasted, and every test on the
occupancy is a table look-up on 8-bit codes (:mod:`experiments.data.pathfinder_tables`). The
targets are grown for many attempts at once (:mod:`experiments.data.pathfinder_targets`), the
distractors one by one (:mod:`experiments.data.pathfinder_scene`). Each image ``i`` draws from
its own generator ``SeedSequence(seed, spawn_key=(i,))``, so serial and parallel runs write
identical bytes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, model_validator

from experiments.data.manifest import MANIFEST, read_manifest, write_manifest
from experiments.data.pathfinder_draw import bytescale, paste_marker
from experiments.data.pathfinder_folder import (
    GENERATOR,
    GENERATOR_VERSION,
    data_files,
    folder_state,
    leftovers,
)
from experiments.data.pathfinder_scene import Scene, pick
from experiments.data.pathfinder_targets import target_batch

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
    margin = int(pick(rng, p.margins))
    targets, tried = None, 0
    while targets is None:
        if tried >= p.max_image_tries:
            raise RuntimeError(
                f"Pathfinder could not place the two target snakes in {tried} tries at "
                f"resolution={p.resolution}; the parameters leave too little room."
            )
        batch = min(p.target_batch << (2 * (tried > 0) + 2 * (tried > p.target_batch)), 256)
        targets = target_batch(p, margin, rng, batch)
        tried += batch
    attempt = tried - batch + targets.attempt + 1
    scene = Scene(p, margin, rng, targets)
    drawn = scene.add_distractors()

    o = int(rng.integers(2))
    other = o if label == 1 else 1 - o
    tips = targets.tips  # (2, contour_length, 2)
    markers = (tuple(tips[o, 0].tolist()), tuple(tips[other, -1].tolist()))
    image = scene.view(scene.img).copy()  # (R, R)
    for m in markers:
        paste_marker(image, m, p.marker_radius, p.antialias)
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
    workers = _check_counts(num_images, images_per_subdir, workers)
    root = Path(out_dir)
    spec = _spec(params, seed, num_images, images_per_subdir)
    if _prepare_folder(root, spec):
        return root
    for sub in ("imgs", "metadata"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "generator.json").write_text(json.dumps(spec, indent=1) + "\n")
    tasks = [
        (str(root), params.model_dump(), seed, b, start, min(images_per_subdir, num_images - start))
        for b, start in enumerate(range(0, num_images, images_per_subdir))
    ]
    _run_tasks(tasks, workers, f"pathfinder{resolution}/{difficulty}", num_images, progress)
    write_manifest(root, {**spec, "num_subdirs": len(tasks)}, data_files(root))
    return root


def _spec(
    params: PathfinderParams, seed: int, num_images: int, images_per_subdir: int
) -> dict[str, Any]:
    """The settings a folder records (``generator.json``, manifest) and is compared by."""
    return {
        "generator": GENERATOR,
        "version": GENERATOR_VERSION,
        "params": params.model_dump(mode="json"),
        "seed": seed,
        "num_images": num_images,
        "images_per_subdir": images_per_subdir,
    }


def _check_counts(num_images: int, images_per_subdir: int, workers: int | None) -> int:
    """Check the counts of :func:`generate_pathfinder`; the number of workers to use.

    Raises:
        ValueError: When a count is not a positive integer (one sentence naming it).
    """
    for name, value in (("num_images", num_images), ("images_per_subdir", images_per_subdir)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"generate_pathfinder {name}={value!r} must be a positive integer.")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"generate_pathfinder workers={workers!r} must be at least 1.")
    return workers


def _run_tasks(
    tasks: list[tuple[str, dict[str, Any], int, int, int, int]],
    workers: int,
    desc: str,
    total: int,
    progress: bool,
) -> None:
    """Run :func:`_write_subdir` on every task, here or in a pool of ``workers`` processes.

    Args:
        tasks: One ``(out, params, seed, subdir, start, count)`` per image folder.
        workers: Processes; 1 (or a single task) runs in this process.
        desc: Progress bar label.
        total: Images in all tasks.
        progress: Show a tqdm progress bar.
    """
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit="img", disable=not progress) as bar:
        if workers == 1 or len(tasks) == 1:
            for task in tasks:
                bar.update(_write_subdir(task))
        else:
            # fork: the workers need no re-import of the (heavy) experiments.data package
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            with mp.get_context(method).Pool(min(workers, len(tasks))) as pool:
                for done in pool.imap_unordered(_write_subdir, tasks):
                    bar.update(done)


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
