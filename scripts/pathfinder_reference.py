"""Run the original Pathfinder generator (drewlinsley/pathfinder `snakes2.py`) with LRA settings.

The original code is not part of this repository. Fetch it, then run this script with the
folder holding ``snakes.py`` and ``snakes2.py`` of commit ab9c130 (the last one that calls
``scipy.misc``)::

    git clone https://github.com/drewlinsley/pathfinder /tmp/pf_ref/repo
    git -C /tmp/pf_ref/repo checkout ab9c130
    pip install opencv-python-headless        # the original needs cv2
    python scripts/pathfinder_reference.py --orig /tmp/pf_ref/repo \
        --out /tmp/pf_ref/pathfinder32/curv_contour_length_14 --resolution 32 \
        --difficulty curv_contour_length_14 --num-images 1000 --seed 0

``scipy.misc`` (``imresize``, ``imsave``, ``bytescale``, ``toimage``) was removed from SciPy;
this script installs a module with the semantics of SciPy 1.0: a float array is first
bytescaled, ``b = floor((x - min) 255 / (max - min) + 0.5)``, to an 8-bit image, which PIL then
resizes (``lanczos`` = ``Image.LANCZOS``); ``imsave`` bytescales the same way. The NumPy aliases
``np.float`` and ``np.round_`` are restored. The output folder gets the official layout
(``imgs/0/sample_<i>.png``, ``metadata/0.npy``) and ``timing.json`` (wall and CPU seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
import types
from pathlib import Path

import numpy as np
from PIL import Image

# LRA parameters per resolution (see LRA.md, "Pathfinder generator, rules").
LRA_PARAMS = {
    32: dict(
        paddle_length=2,
        paddle_thickness=0.5,
        paddle_margin_list=[1],
        antialias_scale=2,
        padding=1,
        seed_distance=7,
        marker_radius=1.5,
        continuity=1.0,
        snake_contrast_list=[2.0],
        paddle_contrast_list=[0.75],
        distractor_budget=20,
    ),
    64: dict(
        paddle_length=5,
        paddle_thickness=1.0,
        paddle_margin_list=[1],
        antialias_scale=2,
        padding=1,
        seed_distance=12,
        marker_radius=2.5,
        continuity=1.8,
        snake_contrast_list=[0.8],
        paddle_contrast_list=[1.0],
        distractor_budget=22,
    ),
    128: dict(
        paddle_length=5,
        paddle_thickness=1.5,
        paddle_margin_list=[2, 3],
        antialias_scale=2,
        padding=1,
        seed_distance=20,
        marker_radius=3.0,
        continuity=1.8,
        snake_contrast_list=[0.9],
        paddle_contrast_list=[1.0],
        distractor_budget=35,
    ),
}
CONTOUR_LENGTHS = {"curv_baseline": 6, "curv_contour_length_9": 9, "curv_contour_length_14": 14}


def bytescale(data: np.ndarray, cmin=None, cmax=None, high: int = 255, low: int = 0) -> np.ndarray:
    """``scipy.misc.bytescale`` of SciPy 1.0 (uint8 input is returned unchanged)."""
    if data.dtype == np.uint8:
        return data
    cmin = data.min() if cmin is None else cmin
    cmax = data.max() if cmax is None else cmax
    cscale = cmax - cmin
    if cscale == 0:
        cscale = 1
    scale = float(high - low) / cscale
    bytedata = (data - cmin) * scale + low
    return (bytedata.clip(low, high) + 0.5).astype(np.uint8)


def toimage(arr, mode=None, **_: object) -> Image.Image:
    """``scipy.misc.toimage`` of SciPy 1.0 for 2-D arrays: bytescale, then an ``L`` image."""
    data = np.asarray(arr)
    if data.ndim != 2:
        raise ValueError("this shim handles 2-D arrays only")
    return Image.fromarray(bytescale(data))


def imresize(arr, size, interp: str = "bilinear", mode=None) -> np.ndarray:
    """``scipy.misc.imresize`` of SciPy 1.0 for a ``(rows, cols)`` size."""
    im = toimage(arr, mode=mode)
    func = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "cubic": 3}
    return np.array(im.resize((size[1], size[0]), resample=func[interp]))


def imsave(name, arr, format=None) -> None:
    """``scipy.misc.imsave`` of SciPy 1.0 for 2-D arrays."""
    toimage(arr).save(name, format=format)


def install_shims() -> None:
    """Put the SciPy 1.0 ``scipy.misc`` functions and old NumPy aliases in place."""
    import scipy

    misc = types.ModuleType("scipy.misc")
    misc.imresize, misc.imsave, misc.bytescale, misc.toimage = imresize, imsave, bytescale, toimage
    sys.modules["scipy.misc"] = misc
    scipy.misc = misc
    np.float = float  # type: ignore[attr-defined]
    np.round_ = np.round  # type: ignore[attr-defined]


def make_args(out: Path, resolution: int, difficulty: str, n_images: int) -> types.SimpleNamespace:
    """The ``Args`` object of ``snakes2_wrapper.py`` with LRA's parameters."""
    p = dict(LRA_PARAMS[resolution])
    contour_length = CONTOUR_LENGTHS[difficulty]
    distractor_length = contour_length // 3
    return types.SimpleNamespace(
        contour_path=str(out),
        batch_id=0,
        n_images=n_images,
        window_size=[resolution, resolution],
        LABEL=1,
        contour_length=contour_length,
        distractor_length=distractor_length,
        num_distractor_snakes=p.pop("distractor_budget") // distractor_length,
        use_single_paddles=False,
        max_target_contour_retrial=4,
        max_distractor_contour_retrial=4,
        max_paddle_retrial=2,
        segmentation_task=False,
        segmentation_task_double_circle=False,
        pause_display=False,
        save_images=True,
        save_metadata=True,
        **p,
    )


def main(argv: list[str] | None = None) -> int:
    """Generate ``--num-images`` images with the original code and record the time per image."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orig", required=True, help="folder with the original snakes.py, snakes2.py")
    ap.add_argument("--out", required=True, help="difficulty folder to write")
    ap.add_argument("--resolution", type=int, choices=sorted(LRA_PARAMS), default=32)
    ap.add_argument(
        "--difficulty", choices=sorted(CONTOUR_LENGTHS), default="curv_contour_length_14"
    )
    ap.add_argument("--num-images", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    install_shims()
    sys.path.insert(0, str(Path(a.orig).resolve()))
    import snakes2  # noqa: PLC0415 (the original code, importable only after the shims)

    random.seed(a.seed)
    np.random.seed(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    args = make_args(out, a.resolution, a.difficulty, a.num_images)
    start, cpu = time.perf_counter(), time.process_time()
    with open(out / "generator.log", "w") as log, contextlib.redirect_stdout(log):
        snakes2.from_wrapper(args)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    timing = {
        "num_images": a.num_images,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "cpu_seconds_per_image": cpu / a.num_images,
        "seed": a.seed,
    }
    (out / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")
    print(
        f"{a.num_images} original Pathfinder-{a.resolution} images in {seconds:.1f} s "
        f"({1000 * cpu / a.num_images:.1f} CPU ms per image) -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
