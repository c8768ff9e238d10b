import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.data.pathfinder_draw import (
    bytescale,
    dash_patches,
    dilate,
    imresize_lanczos,
    marker,
)
from experiments.data.pathfinder_generator import (
    DIFFICULTIES,
    RESOLUTIONS,
    PathfinderParams,
    generate_pathfinder,
    image_rng,
    metadata_line,
    render_sample,
)
from experiments.data.pathfinder_tables import table as _table

HARD32 = PathfinderParams.for_resolution(32, "curv_contour_length_14")


@pytest.fixture(scope="module")
def samples32():
    return [render_sample(image_rng(7, i), HARD32) for i in range(200)]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(f.relative_to(root)): f.read_bytes()
        for f in sorted(root.rglob("*"))
        if f.is_file() and f.name != "generator.json"
    }


# ---- drawing primitives against slow oracles and the old scipy formulas ----


def dilate_oracle(image, kernel):
    """cv2.dilate by hand: out[p] = max over kernel pixels d of image[p + d - centre]."""
    c = kernel.shape[0] // 2
    out = np.full(image.shape, -np.inf)
    for dy, dx in np.argwhere(kernel):
        for r in range(image.shape[0]):
            for q in range(image.shape[1]):
                rr, qq = r + dy - c, q + dx - c
                if 0 <= rr < image.shape[0] and 0 <= qq < image.shape[1]:
                    out[r, q] = max(out[r, q], image[rr, qq])
    return out


@pytest.mark.parametrize("shape", [(7, 9), (8, 8), (11, 6)])
def test_dilate_is_cv2_dilate_without_reflection(shape):
    rng = np.random.default_rng(shape[0])
    image = rng.random(shape) * (rng.random(shape) > 0.6)
    kernel = np.zeros((5, 5), bool)
    kernel[3, 4] = kernel[2, 2] = kernel[4, 3] = True  # asymmetric: a flip would differ
    want = np.maximum(dilate_oracle(image, kernel), 0)  # outside-only windows: the guard value
    np.testing.assert_array_equal(dilate(image, kernel), want)


def test_bytescale_is_old_scipy_bytescale():
    x = np.array([[0.2, 0.45], [0.7, 1.2]])
    expected = np.floor((x - 0.2) * 255 / 1.0 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(bytescale(x), expected)
    np.testing.assert_array_equal(bytescale(np.full((2, 2), 3.0)), np.zeros((2, 2), np.uint8))
    u8 = np.array([[3, 7]], np.uint8)
    assert bytescale(u8) is u8


def test_imresize_bytescales_float_then_pil_lanczos():
    x = np.random.default_rng(0).random((12, 12)) * 3.0
    scaled = (x - x.min()) / (x.max() - x.min()) * 255
    pil = Image.fromarray(np.floor(scaled + 0.5).astype(np.uint8))
    want = np.asarray(pil.resize((5, 5), Image.LANCZOS))
    np.testing.assert_array_equal(imresize_lanczos(x, 5), want)


@pytest.mark.parametrize("deg", [-180, -90, -37, 0, 45, 90, 151])
def test_dash_patch_points_along_its_orientation(deg):
    theta = np.deg2rad(deg)
    line, mask = dash_patches(theta, length=5, thickness=1.5, margin=2, aa=2)
    c = line.shape[0] // 2
    ys, xs = np.nonzero(line > 0.5)
    centroid = np.array([ys.mean() - c, xs.mean() - c])
    np.testing.assert_allclose(centroid, 2.5 * np.array([np.sin(theta), np.cos(theta)]), atol=0.8)
    assert np.all(mask >= line - 1 / 255) and mask.sum() > 2 * line.sum()


def test_marker_is_a_lanczos_disk():
    m = marker(32, (16, 10), 1.5, 2)
    assert m.max() <= 1.0 and 0.8 < m[16, 10] <= 1.0
    assert np.unravel_index(np.argmax(m), m.shape) in {(15, 9), (15, 10), (16, 9), (16, 10)}
    assert m[16, 20] == 0 and m[2, 10] == 0


@pytest.mark.parametrize("size,radius", [(32, 1.5), (64, 2.5), (128, 3.0)])
def test_marker_window_equals_the_whole_image_resize(size, radius):
    from experiments.data.pathfinder_draw import _marker_full

    reach = int(np.ceil(radius)) + 7
    near = sorted({0, 1, 2, reach - 2, reach - 1, reach, reach + 1, size // 2})
    coords = near + [size - 1 - c for c in near]  # every distance class to both edges
    if size == 32:
        coords = list(range(size))
    for r in coords:
        for c in coords:
            np.testing.assert_array_equal(
                marker(size, (r, c), radius, 2), _marker_full(size, (r, c), radius, 2)
            )


def test_seed_kernel_usable_iff_every_window_meets_the_image():
    tab = _table(HARD32, 1)
    ones = np.ones((HARD32.resolution,) * 2)
    for k in range(0, 360, 23):
        oracle = np.isfinite(dilate_oracle(ones, tab.kernel[k])).all()
        assert bool(tab.usable[k]) == oracle
    assert 0 < sum(tab.usable) < 360


@pytest.mark.parametrize("resolution,margin", [(32, 1), (128, 3)])
def test_kernel_taps_dilation_equals_cv2_dilate(resolution, margin):
    from experiments.data.pathfinder_scene import _dilate_taps

    tab = _table(PathfinderParams.for_resolution(resolution), margin)
    h = tab.kernel[0].shape[0] // 2
    rng = np.random.default_rng(resolution)
    busy = rng.random((resolution, resolution)) < 0.05
    padded = np.pad(busy, h)
    for k in range(0, 360, 7):
        want = dilate(busy.astype(np.uint8), tab.kernel[k]) > 0
        np.testing.assert_array_equal(_dilate_taps(padded, tab.taps[k], resolution), want)


def test_first_seed_stays_two_seed_distances_from_the_edges():
    for res in (32, 128):
        p = PathfinderParams.for_resolution(res)
        for margin in p.margins:
            _, tails, _, cum = _table(p, margin).first
            b = 2 * p.seed_distance
            assert tails.min() >= b and tails.max() < res - b
            assert np.all(np.diff(cum) >= 0) and cum[-1] == 1.0


# ---- the generator: files, determinism, statistics, semantics ----


def test_generate_is_deterministic_serial_vs_parallel(tmp_path):
    kw = dict(resolution=32, num_images=12, images_per_subdir=4, progress=False)
    serial = generate_pathfinder(tmp_path / "a", seed=3, workers=1, **kw)
    parallel = generate_pathfinder(tmp_path / "b", seed=3, workers=2, **kw)
    again = generate_pathfinder(tmp_path / "c", seed=3, workers=1, **kw)
    other = generate_pathfinder(tmp_path / "d", seed=4, workers=1, **kw)
    a = tree_bytes(serial)
    assert len(a) == 12 + 3 + 1  # images, metadata files, manifest.json
    assert a == tree_bytes(parallel) == tree_bytes(again)
    d = tree_bytes(other)
    assert a.keys() == d.keys()
    assert sum(a[k] != d[k] for k in a if k.endswith(".png")) >= 10


def test_layout_and_metadata_parse_back(tmp_path):
    root = generate_pathfinder(
        tmp_path / "pf",
        resolution=32,
        difficulty="curv_baseline",
        num_images=7,
        seed=1,
        workers=1,
        images_per_subdir=3,
        progress=False,
    )
    params = PathfinderParams.for_resolution(32, "curv_baseline")
    assert sorted(p.name for p in (root / "imgs").iterdir()) == ["0", "1", "2"]
    assert not list(root.rglob(".*tmp*"))
    for b in range(3):
        rows = [ln.split(" ") for ln in (root / "metadata" / f"{b}.npy").read_text().splitlines()]
        assert len(rows) == (3 if b < 2 else 1)
        for i, row in enumerate(rows):
            assert len(row) == 11
            assert row[:3] == [f"imgs/{b}", f"sample_{i}.png", str(i)]
            label, cont, contour, dl = int(row[3]), float(row[4]), int(row[5]), float(row[6])
            assert (cont, contour, dl) == (1.0, 6, 2.0)
            assert row[7:] == ["2", "0.5", "1", "1"]
            img = Image.open(root / row[0] / row[1])
            assert (img.mode, img.size) == ("L", (32, 32))
            # oracle: the file is exactly render_sample of image b * 3 + i
            want_img, want_label, _ = render_sample(image_rng(1, b * 3 + i), params)
            np.testing.assert_array_equal(np.asarray(img), want_img)
            assert label == want_label


def test_metadata_line_matches_official_example():
    params = PathfinderParams.for_resolution(128, "curv_baseline")
    assert metadata_line(43, 0, 0, params, 2) == "imgs/43 sample_0.png 0 0 1.8 6 2.0 5 1.5 2 1"


def test_rerun_resumes_and_refuses_other_settings(tmp_path):
    kw = dict(resolution=32, num_images=6, images_per_subdir=3, workers=1, progress=False)
    root = generate_pathfinder(tmp_path / "pf", seed=0, **kw)
    before = tree_bytes(root)
    (root / "metadata" / "1.npy").unlink()  # as if killed before the last rename
    (root / "imgs" / ".tmp-1").mkdir()
    generate_pathfinder(root, seed=0, **kw)
    assert tree_bytes(root) == before
    with pytest.raises(ValueError, match="seed=5"):
        generate_pathfinder(root, seed=5, **kw)


def test_labels_balanced(samples32):
    assert 0.4 <= np.mean([label for _, label, _ in samples32]) <= 0.6


def test_ink_fraction_and_marker_intensity_match_the_original(samples32):
    # the original measured with scripts/pathfinder_reference.py: ink 0.34, markers ~240
    ink = np.mean([(img > 0).mean() for img, _, _ in samples32])
    assert 0.31 <= ink <= 0.37
    marks = [img[m] for img, _, meta in samples32 for m in meta["markers"]]
    assert 225 <= np.mean(marks) <= 252
    assert min(marks) < 255  # the markers are not always the brightest pixels
    assert all(img.max() == 255 for img, _, _ in samples32)  # bytescaled to the full range


def test_label_semantics_and_dash_spacing(samples32):
    p = HARD32
    spacing = []
    for _, label, meta in samples32[:150]:
        o, other = meta["marker_snakes"]
        assert label == int(o == other)
        tips = meta["target_tips"]
        assert [len(t) for t in tips] == [p.contour_length] * 2
        assert meta["markers"] == (tuple(tips[o][0]), tuple(tips[other][-1]))
        assert round(np.linalg.norm(tips[1][0] - tips[0][0])) in (6, 7, 8)
        for t in tips:
            spacing.extend(np.linalg.norm(np.diff(t[1:], axis=0), axis=1))
    m = meta["margin"]
    # consecutive dash ends are L + 2m apart on a straight run (pivot step L + 2m)
    assert abs(np.median(spacing) - (p.dash_length + 2 * m)) <= 0.5


def test_distractor_count_is_budget_over_distractor_length(samples32):
    assert HARD32.n_distractors == 20 // (14 // 3) == 5
    assert PathfinderParams.for_resolution(32, "curv_baseline").n_distractors == 10
    assert PathfinderParams.for_resolution(128).n_distractors == 35 // 4
    assert max(meta["n_distractors"] for *_, meta in samples32) <= 5


@pytest.mark.parametrize(
    "resolution", [r if r < 256 else pytest.param(r, marks=pytest.mark.slow) for r in RESOLUTIONS]
)
def test_every_resolution_renders(resolution):
    params = PathfinderParams.for_resolution(resolution)
    img, label, meta = render_sample(image_rng(0, resolution), params)
    assert img.shape == (resolution, resolution) and img.dtype == np.uint8
    assert img.max() == 255 and label in (0, 1)
    assert meta["margin"] in params.margins


@pytest.mark.parametrize("difficulty", list(DIFFICULTIES))
def test_every_difficulty_sets_the_contour_length(difficulty):
    params = PathfinderParams.for_resolution(32, difficulty)
    _, _, meta = render_sample(image_rng(0, 1), params)
    assert [len(t) for t in meta["target_tips"]] == [DIFFICULTIES[difficulty]] * 2


def test_bad_input_names_the_value(tmp_path):
    with pytest.raises(ValueError, match="resolution=48"):
        PathfinderParams.for_resolution(48)
    with pytest.raises(ValueError, match="curv_contour_length_99"):
        PathfinderParams.for_resolution(32, "curv_contour_length_99")
    with pytest.raises(ValueError, match="'aa'"):
        PathfinderParams.for_resolution(32, aa=2)
    assert PathfinderParams.for_resolution(32, antialias=4).antialias == 4
    with pytest.raises(ValueError, match="thickness=0.5 times antialias=3"):
        PathfinderParams.for_resolution(32, antialias=3)
    with pytest.raises(ValueError, match="num_images=0"):
        generate_pathfinder(tmp_path, num_images=0, progress=False)


# ---- byte identity: images and metadata pinned per seed ----

# sha256 (first 16 hex digits) of the image bytes followed by the JSON of
# [label, margin, markers, target_tips, n_distractors, image_tries]; recorded from the
# generator before its speed-ups, so a faster generator must draw the same images per seed.
PINNED = [
    (32, "curv_baseline", 0, 0, "812354686f91aaf9"),
    (32, "curv_baseline", 3, 11, "78684f794d0f743f"),
    (32, "curv_contour_length_9", 0, 1, "e59ae03b9de181fb"),
    (32, "curv_contour_length_9", 2, 5, "d924a69102828ad2"),
    (32, "curv_contour_length_14", 0, 2, "5eb263893ad0260c"),
    (32, "curv_contour_length_14", 9, 3, "d72910689b2457ee"),
    (32, "curv_contour_length_14", 1, 4, "917b40ffb3f32497"),
    (64, "curv_contour_length_14", 0, 1, "01bac3e0dedb93c7"),
    (128, "curv_contour_length_14", 0, 0, "97be0575817c71f0"),
    (128, "curv_contour_length_14", 0, 1, "768b286c0b80c68e"),
    (128, "curv_baseline", 4, 2, "3db7b7eda2386438"),
]


def sample_digest(resolution: int, difficulty: str, seed: int, index: int) -> str:
    params = PathfinderParams.for_resolution(resolution, difficulty)
    img, label, meta = render_sample(image_rng(seed, index), params)
    tips = [t.tolist() for t in meta["target_tips"]]
    rest = [
        label,
        meta["margin"],
        meta["markers"],
        tips,
        meta["n_distractors"],
        meta["image_tries"],
    ]
    h = hashlib.sha256(img.tobytes())
    h.update(json.dumps(rest).encode())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("resolution,difficulty,seed,index,want", PINNED)
def test_images_are_byte_identical_per_seed(resolution, difficulty, seed, index, want):
    assert sample_digest(resolution, difficulty, seed, index) == want
