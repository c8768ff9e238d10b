from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.data.pathfinder_draw import aa_grid, bytescale, render_dashes, render_disk
from experiments.data.pathfinder_generator import (
    DIFFICULTIES,
    RESOLUTIONS,
    PathfinderParams,
    generate_pathfinder,
    image_rng,
    metadata_line,
    render_sample,
)

HARD32 = PathfinderParams.for_resolution(32, "curv_contour_length_14")


@pytest.fixture(scope="module")
def samples32():
    return [render_sample(image_rng(7, i), HARD32) for i in range(400)]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(f.relative_to(root)): f.read_bytes()
        for f in sorted(root.rglob("*"))
        if f.is_file() and f.name != "generator.json"
    }


def segment_dist(points, a, b):
    """Oracle: float64 distance of points (..., 2) to the segment [a, b]."""
    v = b - a
    t = np.clip(((points - a) @ v) / (v @ v), 0.0, 1.0)
    return np.linalg.norm(points - a - t[..., None] * v, axis=-1)


# ---- drawing primitives against PIL and the old scipy formula ----


@pytest.mark.parametrize("aa,thickness", [(2, 0.5), (2, 1.5), (4, 0.5), (4, 2.0)])
def test_render_dashes_matches_pil_lanczos(aa, thickness):
    rng = np.random.default_rng(0)
    half, length = 8, 5.0
    angles = rng.uniform(0, 2 * np.pi, 12)
    ends = length * np.stack([np.sin(angles), np.cos(angles)], 1)
    ours = render_dashes(np.zeros_like(ends), ends, thickness, aa, half)
    g = aa_grid(half, aa)
    for k in range(len(ends)):
        u = ends[k] / length
        along = g[:, None] * u[0] + g[None, :] * u[1] + 1e-9
        across = g[:, None] * u[1] - g[None, :] * u[0] + 1e-9
        w = round(thickness * aa)
        hw = 0.5 * max(abs(u[0]), abs(u[1])) if w <= 1 else w / 2
        hard = (along >= 0) & (along <= length) & (np.abs(across) < hw / aa)
        big = np.zeros(((2 * half + 11) * aa,) * 2, np.uint8)  # margins: no PIL border effects
        big[5 * aa : 5 * aa + hard.shape[0], 5 * aa : 5 * aa + hard.shape[1]] = hard * 255
        n = big.shape[0] // aa
        pil = np.asarray(Image.fromarray(big).resize((n, n), Image.LANCZOS)).astype(int)
        pil = pil[5 : 5 + 2 * half + 1, 5 : 5 + 2 * half + 1]
        assert hard.any()
        assert np.abs(pil - np.rint(ours[k] * 255)).max() <= 1  # PIL is fixed point


def test_bytescale_is_old_scipy_bytescale():
    x = np.array([[0.2, 0.45], [0.7, 1.2]])
    expected = np.floor((x - 0.2) * 255 / 1.0 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(bytescale(x), expected)
    np.testing.assert_array_equal(bytescale(np.full((2, 2), 3.0)), np.zeros((2, 2), np.uint8))


def test_render_disk_is_area_coverage():
    fine = aa_grid(3, 64)
    oracle = ((fine[:, None] ** 2 + fine[None, :] ** 2) <= 2.5**2).reshape(7, 64, 7, 64)
    np.testing.assert_allclose(render_disk(2.5, 64, 3), oracle.mean(axis=(1, 3)))
    assert render_disk(1.5, 4, 2)[2, 2] == 1.0


# ---- the generator: files, determinism, statistics, semantics ----


def test_generate_is_deterministic_serial_vs_parallel(tmp_path):
    kw = dict(resolution=32, num_images=12, images_per_subdir=4, progress=False)
    serial = generate_pathfinder(tmp_path / "a", seed=3, workers=1, **kw)
    parallel = generate_pathfinder(tmp_path / "b", seed=3, workers=2, **kw)
    again = generate_pathfinder(tmp_path / "c", seed=3, workers=1, **kw)
    other = generate_pathfinder(tmp_path / "d", seed=4, workers=1, **kw)
    a = tree_bytes(serial)
    assert len(a) == 12 + 3
    assert a == tree_bytes(parallel) == tree_bytes(again)
    d = tree_bytes(other)
    assert a.keys() == d.keys()
    assert sum(a[k] != d[k] for k in a if k.endswith(".png")) >= 10


def test_layout_and_metadata_parse_back(tmp_path):
    root = generate_pathfinder(tmp_path / "pf", resolution=32, difficulty="curv_baseline",
                               num_images=7, seed=1, workers=1, images_per_subdir=3,
                               progress=False)
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


def test_nonzero_fraction_of_hard_32px(samples32):
    frac = np.mean([(img > 0).mean() for img, _, _ in samples32[:100]])
    assert 0.30 <= frac <= 0.45


def test_markers_at_full_intensity(samples32):
    for img, _, meta in samples32[:100]:
        assert img.max() == 255
        for r, c in meta["markers"]:
            assert img[r, c] == 255


def test_label_semantics_and_snake_geometry(samples32):
    p = HARD32
    for _, label, meta in samples32[:100]:
        o, other = meta["marker_snakes"]
        assert label == int(o == other)
        dashes = meta["target_dashes"]
        assert [len(d) for d in dashes] == [p.contour_length] * 2
        assert meta["markers"][0] == tuple(int(v) for v in dashes[o][0, 0])
        assert meta["markers"][1] == tuple(int(v) for v in np.rint(dashes[other][-1, 1]))
        starts = [d[0, 0] for d in dashes]
        assert round(np.linalg.norm(starts[1] - starts[0])) == p.seed_distance
        for d in dashes:
            np.testing.assert_allclose(np.linalg.norm(d[:, 1] - d[:, 0], axis=1), p.dash_length)
            gaps = np.linalg.norm(d[1:, 0] - d[:-1, 0], axis=1)
            assert np.all(np.rint(gaps) == p.dash_length + meta["margin"])


def test_targets_keep_their_margin(samples32):
    # oracle in float64 over the pixel grid: no pixel within the core of target 1 lies within
    # the margin-dilated footprint of target 0 (target 1 is grown after target 0).
    p = HARD32
    yy, xx = np.mgrid[0 : p.resolution, 0 : p.resolution]
    pix = np.stack([yy, xx], -1).astype(np.float64)
    for _, _, meta in samples32[:40]:
        d0, d1 = meta["target_dashes"]
        near0 = np.min([segment_dist(pix, a, b) for a, b in d0], axis=0)
        near1 = np.min([segment_dist(pix, a, b) for a, b in d1], axis=0)
        core1 = near1 <= max(p.thickness / 2, 0.5)
        assert not np.any(core1 & (near0 <= p.thickness / 2 + meta["margin"]))


@pytest.mark.parametrize("resolution", RESOLUTIONS)
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
    assert [len(d) for d in meta["target_dashes"]] == [DIFFICULTIES[difficulty]] * 2


def test_bad_input_names_the_value(tmp_path):
    with pytest.raises(ValueError, match="resolution=48"):
        PathfinderParams.for_resolution(48)
    with pytest.raises(ValueError, match="curv_contour_length_99"):
        PathfinderParams.for_resolution(32, "curv_contour_length_99")
    with pytest.raises(ValueError, match="'aa'"):
        PathfinderParams.for_resolution(32, aa=2)
    assert PathfinderParams.for_resolution(32, antialias=2).antialias == 2
    with pytest.raises(ValueError, match="num_images=0"):
        generate_pathfinder(tmp_path, num_images=0, progress=False)
