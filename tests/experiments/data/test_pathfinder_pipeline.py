"""Generated Pathfinder images reach the model's batches intact and with the right labels.

End to end: the generator writes a small folder, the data module reads, caches and batches it
through the training loader; every batch row must be, pixel for pixel in row-major order, an
image the generator renders from its seed, and its label must say whether the two marker discs,
found in the row's own pixels (brightest 2x2 blocks), sit on the two ends of one target snake.
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import ndimage

from experiments.data import build_datamodule
from experiments.data.pathfinder_generator import (
    PathfinderParams,
    generate_pathfinder,
    image_rng,
    render_sample,
)
from experiments.resume import step_aligned_loader

RES, SEED, N = 32, 3, 60


def marker_pixels(image: np.ndarray) -> list[tuple[int, int]]:
    """The two brightest 2x2 blocks at least 4 px apart (their lower-right pixel).

    A marker is a disc of radius 1.5 whose 2x2 core is brighter than any dash (dashes are
    about one pixel wide), so ``min`` over a 2x2 window peaks at the markers.
    """
    m = ndimage.minimum_filter(image.astype(np.int64), size=2, mode="constant", cval=0)  # (R, R)
    out = []
    for _ in range(2):
        r, c = np.unravel_index(np.argmax(m), m.shape)
        out.append((int(r), int(c)))
        m[max(r - 3, 0) : r + 4, max(c - 3, 0) : c + 4] = -1
    return out


def joins_one_target(found: list[tuple[int, int]], tips: list[np.ndarray]) -> bool:
    """Whether the found markers lie (within 1 px) on the first and last tip of one target."""

    def near(p: tuple[int, int], q: np.ndarray) -> bool:
        return max(abs(p[0] - int(q[0])), abs(p[1] - int(q[1]))) <= 1

    return any(
        all(any(near(f, t[j]) for j in (0, -1)) for f in found)
        and near(found[0], t[0]) != near(found[1], t[0])
        for t in tips
    )


@pytest.fixture(scope="module")
def rendered() -> dict[bytes, tuple[int, dict]]:
    """Row-major image bytes -> (label, meta) of every image the generator draws for SEED."""
    p = PathfinderParams.for_resolution(RES, "curv_contour_length_14")
    out = {}
    for k in range(N):
        image, label, meta = render_sample(image_rng(SEED, k), p)
        out[hashlib.sha1(image.tobytes(order="C")).digest()] = (label, meta)
    return out


def test_batches_are_generated_images_with_marker_consistent_labels(tmp_path, rendered):
    root = tmp_path / "pathfinder32" / "curv_contour_length_14"
    generate_pathfinder(
        root, num_images=N, seed=SEED, workers=1, progress=False, images_per_subdir=25
    )
    dm = build_datamodule(
        {"name": "pathfinder", "path": str(root), "resolution": RES},
        data_dir=tmp_path,
        batch_size=16,
    )
    dm.setup()
    trainer = SimpleNamespace(
        limit_train_batches=1.0,
        global_step=0,
        accumulate_grad_batches=1,
        global_rank=0,
        world_size=1,
    )
    loaders = {
        "train": step_aligned_loader(dm._loader("train", shuffle=False), trainer, seed=0),
        "val": dm.val_dataloader(),
        "test": dm.test_dataloader(),
    }
    seen, agree = set(), 0
    for loader in loaders.values():
        for batch in loader:
            ids = batch["input_ids"]  # (B, R * R)
            assert ids.dtype == torch.long and ids.shape[1] == RES * RES
            for row, label in zip(ids.numpy(), batch["labels"].tolist()):
                key = hashlib.sha1(row.astype(np.uint8).tobytes()).digest()
                assert key in rendered, "a batch row is no generated image in row-major order"
                want_label, meta = rendered[key]
                assert label == want_label
                seen.add(key)
                found = marker_pixels(row.reshape(RES, RES))
                agree += joins_one_target(found, meta["target_tips"]) == bool(label)
    assert len(seen) == N  # every image once over the three splits
    labels = [label for label, _ in rendered.values()]
    assert 0 < sum(labels) < N
    # the marker finder misses a disc in about 2 % of images (a bright crossing beats it)
    assert agree >= 0.9 * N
