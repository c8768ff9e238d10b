import numpy as np

from experiments.data.pathfinder_generator import PathfinderParams
from experiments.data.pathfinder_scene import Scene
from experiments.data.pathfinder_targets import target_batch


def test_a_failed_distractor_leaves_the_scene_unchanged():
    p = PathfinderParams.for_resolution(32, "curv_contour_length_14")
    failed = succeeded = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        targets = None
        while targets is None:
            targets = target_batch(p, 1, rng, 8)
        scene = Scene(p, 1, rng, targets)
        for _ in range(30):
            k = int(rng.integers(360))
            if not scene.tab.usable[k]:
                continue
            img, occ = scene.img.copy(), scene.occ.copy()
            if scene.distractor(k, 2.0):
                succeeded += 1
                assert (scene.img >= img).all() and (scene.occ >= occ).all()
                assert (scene.img > img).any()
            else:
                failed += 1
                np.testing.assert_array_equal(scene.img, img)
                np.testing.assert_array_equal(scene.occ, occ)
    assert failed >= 5 and succeeded >= 5
