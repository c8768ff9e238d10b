"""Compare our Pathfinder generator with images of the original ``snakes2.py``.

The reference images are made by ``scripts/pathfinder_reference.py`` (see its docstring), one
folder per case, ``<ref>/pathfinder<R>/<difficulty>/`` (any sub-folders holding ``metadata/``
are pooled; their ``timing.json`` give the original's CPU time per image)::

    python scripts/pathfinder_fidelity.py --ref /tmp/pf_ref/ref --out results/pathfinder_fidelity.md

For every case our generator draws as many images as the reference has (seed 0, in memory,
timed with ``time.process_time``). Every statistic is measured from the image pixels in the
same way for both generators (markers are found, not read from our metadata):

* ink fraction: share of non-zero pixels;
* markers: the two highest local maxima of the 3x3 box mean, at least ``2 ceil(r) + 2``
  pixels apart; marker intensity = the brightest pixel of each 3x3 window; marker distance
  from centre = the nearer marker's distance to the image centre (the start marker);
* dashes: the image with ``ceil(r) + 2``-pixel windows around the markers blanked; dash peak =
  its maximum, dash mean = mean of its non-zero pixels; dash blobs = 4-connected components of
  pixels ``>= 128``; dash spacing = median distance from each blob centroid to the nearest
  other one; dash count = number of blobs (the length of all snakes together);
* snake end-to-end: marker-to-marker distance in label-1 images (both on one snake);
* layout: the share of the non-zero pixels that lie in the left half (columns ``< R/2``) and in
  the top half (rows ``< R/2``); 0.5 would be a left-right (top-bottom) symmetric layout;
* labels: share of label 1 (Fisher's exact test); every other row: two-sample
  Kolmogorov-Smirnov test of the per-image values.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage, stats

from experiments.data.pathfinder_generator import PathfinderParams, image_rng, render_sample
from experiments.data.pathfinder_tables import table

STATS = (
    ("ink fraction", "ink"),
    ("marker distance from centre (px)", "centre"),
    ("marker intensity", "marker"),
    ("dash peak intensity", "dash_peak"),
    ("dash mean intensity", "dash_mean"),
    ("dash spacing (px)", "spacing"),
    ("dash blobs per image", "blobs"),
    ("snake end-to-end, label 1 (px)", "end_to_end"),
    ("ink share in the left half", "left"),
    ("ink share in the top half", "top"),
)


def find_markers(img: np.ndarray, radius: float) -> list[tuple[int, int]]:
    """The two highest local maxima of the 3x3 box mean, ``2 ceil(r) + 2`` pixels apart."""
    box = ndimage.uniform_filter(img.astype(np.float64), size=3, mode="constant")
    sep = 2 * math.ceil(radius) + 2
    first = np.unravel_index(int(np.argmax(box)), box.shape)
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    far = np.hypot(yy - first[0], xx - first[1]) >= sep
    second = np.unravel_index(int(np.argmax(np.where(far, box, -1))), box.shape)
    return [(int(first[0]), int(first[1])), (int(second[0]), int(second[1]))]


def image_stats(img: np.ndarray, label: int, radius: float) -> dict[str, float]:
    """Per-image statistics (see the module docstring)."""
    res = img.shape[0]
    markers = find_markers(img, radius)
    c = (res - 1) / 2
    ink = img > 0  # (R, R)
    out = {"ink": float(ink.mean())}
    total = max(int(ink.sum()), 1)
    out["left"] = float(ink[:, : res // 2].sum() / total)
    out["top"] = float(ink[: res // 2].sum() / total)
    out["centre"] = min(math.hypot(r - c, q - c) for r, q in markers)
    out["marker"] = float(
        np.mean([img[max(r - 1, 0) : r + 2, max(q - 1, 0) : q + 2].max() for r, q in markers])
    )
    dash = img.copy()
    w = math.ceil(radius) + 2
    for r, q in markers:
        dash[max(r - w, 0) : r + w + 1, max(q - w, 0) : q + w + 1] = 0
    out["dash_peak"] = float(dash.max())
    out["dash_mean"] = float(dash[dash > 0].mean()) if (dash > 0).any() else 0.0
    lab, n = ndimage.label(dash >= 128)
    out["blobs"] = float(n)
    if n >= 2:
        cent = np.array(ndimage.center_of_mass(dash >= 128, lab, range(1, n + 1)))  # (n, 2)
        d = np.hypot(*(cent[:, None, :] - cent[None, :, :]).transpose(2, 0, 1))  # (n, n)
        np.fill_diagonal(d, np.inf)
        out["spacing"] = float(np.median(d.min(axis=1)))
    else:
        out["spacing"] = math.nan
    (r0, q0), (r1, q1) = markers
    out["end_to_end"] = math.hypot(r0 - r1, q0 - q1) if label == 1 else math.nan
    out["label"] = float(label)
    return out


def read_reference(folder: Path) -> tuple[list[np.ndarray], list[int], list[float]]:
    """Images, labels and original CPU seconds per image of every part under ``folder``."""
    images, labels, cpu = [], [], []
    for meta_dir in sorted(folder.rglob("metadata")):
        root = meta_dir.parent
        for meta in sorted(meta_dir.glob("*.npy")):
            rows = np.load(meta) if meta.read_bytes()[:6] == b"\x93NUMPY" else None
            lines = (
                rows.tolist()
                if rows is not None
                else [ln.split() for ln in meta.read_text().splitlines()]
            )
            for row in lines:
                with Image.open(root / row[0] / row[1]) as im:
                    images.append(np.asarray(im.convert("L")))
                labels.append(int(row[3]))
        timing = root / "timing.json"
        if timing.is_file():
            t = json.loads(timing.read_text())
            if "cpu_seconds_per_image" in t:
                cpu.append(t["cpu_seconds_per_image"])
    return images, labels, cpu


def compare(ref: Path, res: int, difficulty: str) -> tuple[list[str], dict[str, float]]:
    """Markdown rows of one case, and its timing figures."""
    images, labels, cpu = read_reference(ref)
    n = len(images)
    p = PathfinderParams.for_resolution(res, difficulty)
    for m in p.margins:
        table(p, m)  # build the per-process tables outside the timed loop
    start = time.process_time()
    ours = [render_sample(image_rng(0, i), p) for i in range(n)]
    ours_s = (time.process_time() - start) / n
    hits = sum(
        all(
            min(math.dist(f, m) for m in meta["markers"]) <= 1.5
            for f in find_markers(img, p.marker_radius)
        )
        for img, _, meta in ours
    )
    a = [image_stats(img, lab, p.marker_radius) for img, lab in zip(images, labels)]
    b = [image_stats(img, lab, p.marker_radius) for img, lab, _ in ours]
    rows = [
        f"### pathfinder{res} / {difficulty}: {n} original vs {n} ours",
        "",
        "| statistic | original mean (sd) | ours mean (sd) | test | p-value |",
        "|---|---|---|---|---|",
    ]
    for name, key in STATS:
        x = np.array([s[key] for s in a])
        y = np.array([s[key] for s in b])
        x, y = x[~np.isnan(x)], y[~np.isnan(y)]
        pval = stats.ks_2samp(x, y).pvalue
        rows.append(
            f"| {name} | {x.mean():.3f} ({x.std():.3f}) | {y.mean():.3f} ({y.std():.3f})"
            f" | KS | {pval:.3g} |"
        )
    la, lb = int(sum(labels)), int(sum(lab for _, lab, _ in ours))
    pval = stats.fisher_exact([[la, n - la], [lb, n - lb]]).pvalue
    rows.append(f"| label 1 share | {la / n:.3f} | {lb / n:.3f} | Fisher | {pval:.3g} |")
    orig_s = float(np.mean(cpu)) if cpu else math.nan
    rows.append(
        f"| CPU ms per image | {1e3 * orig_s:.1f} | {1e3 * ours_s:.2f} | ratio "
        f"{orig_s / ours_s:.1f}x | |"
    )
    rows += [
        "",
        f"Marker finder on our images: both markers found within 1.5 px in {hits}/{n}.",
        "",
    ]
    return rows, {"orig_s": orig_s, "ours_s": ours_s}


def main(argv: list[str] | None = None) -> int:
    """Compare every ``<ref>/pathfinder<R>/<difficulty>`` folder; write the markdown report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", required=True, help="root of the reference folders")
    ap.add_argument("--out", default="results/pathfinder_fidelity.md")
    ap.add_argument("--note", default="", help="how the reference folders were made")
    a = ap.parse_args(argv)
    ref = Path(a.ref)
    cases = sorted(
        (int(d.parent.name.removeprefix("pathfinder")), d.name, d)
        for d in ref.glob("pathfinder*/*")
        if d.is_dir()
    )
    if not cases:
        print(f"No <ref>/pathfinder<R>/<difficulty> folders under {ref}.", file=sys.stderr)
        return 2
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "# Pathfinder generator fidelity: ours vs the original `snakes2.py`",
        "",
        f"Command: `python scripts/pathfinder_fidelity.py --ref <ref> --out {a.out}`, reference "
        "images from `scripts/pathfinder_reference.py` (original code of drewlinsley/pathfinder "
        "at ab9c130, SciPy 1.0 `imresize`/`bytescale` shims, opencv-python-headless "
        "for `cv2.dilate`).",
        f"Machine: {platform.machine()} {platform.system()}, {platform.processor() or 'CPU'}, "
        f"Python {platform.python_version()}; commit {commit}; date "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "Times are CPU seconds (`time.process_time`) of one process, so a loaded machine "
        "does not bias the ratio.",
        *([a.note] if a.note else []),
        "",
    ]
    for res, diff, folder in cases:
        rows, _ = compare(folder, res, diff)
        lines += rows
        print("\n".join(rows))
    Path(a.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
