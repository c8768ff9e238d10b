import numpy as np
import pytest
import torch
from PIL import Image

from experiments.data import DataCorruptError, DataNotFoundError, build_datamodule
from experiments.data.config import parse_task_config
from experiments.data.pathfinder import split_indices

RES = 32


def write_pathfinder(root, n_batches=2, per_batch=10, seed=0, empty=()):
    """Official layout: imgs/<b>/sample_<i>.png and TEXT metadata/<b>.npy."""
    rng = np.random.default_rng(seed)
    (root / "metadata").mkdir(parents=True)
    images, labels = {}, {}
    for b in range(n_batches):
        (root / "imgs" / str(b)).mkdir(parents=True)
        lines = []
        for i in range(per_batch):
            pixels = rng.integers(0, 256, (RES, RES), dtype=np.uint8)
            pixels[0, 0] = 0  # a black pixel
            label = int(rng.integers(0, 2))
            path = root / "imgs" / str(b) / f"sample_{i}.png"
            if (b, i) in empty:
                path.write_bytes(b"")
            else:
                Image.fromarray(pixels).save(path)
                images[(b, i)], labels[(b, i)] = pixels.reshape(-1), label
            lines.append(f"imgs/{b} sample_{i}.png {i} {label} 1.8 6 2.0 5 1.5 2 1\n")
        (root / "metadata" / f"{b}.npy").write_text("".join(lines))
    return images, labels


def as_key_set(ds):
    return {(bytes(ds[i][0].tobytes()), ds[i][1]) for i in range(len(ds))}


def test_reader_loads_official_layout_and_splits_80_10_10(tmp_path):
    root = tmp_path / "pathfinder32" / "curv_contour_length_14"
    images, labels = write_pathfinder(root)
    cfg = {"name": "pathfinder", "path": str(root), "resolution": 32}
    dm = build_datamodule(cfg, data_dir=tmp_path, batch_size=4)
    dm.setup()
    sizes = [len(dm.datasets[s]) for s in ("train", "val", "test")]
    assert sizes == [16, 2, 2]
    want = {(images[k].tobytes(), labels[k]) for k in images}
    got = set().union(*(as_key_set(dm.datasets[s]) for s in ("train", "val", "test")))
    assert got == want


def test_split_is_seeded_and_disjoint():
    a = split_indices(50, (0.8, 0.1, 0.1), seed=3)
    b = split_indices(50, (0.8, 0.1, 0.1), seed=3)
    c = split_indices(50, (0.8, 0.1, 0.1), seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    assert sorted(np.concatenate(a).tolist()) == list(range(50))


def test_black_pixels_stay_unmasked_and_values_are_scaled(tmp_path):
    root = tmp_path / "pf"
    write_pathfinder(root, n_batches=1)
    for enc in ("tokens", "normalized"):
        dm = build_datamodule(
            {"name": "pathfinder", "path": str(root), "pixel_encoding": enc},
            data_dir=tmp_path,
            batch_size=3,
        )
        dm.setup()
        batch = next(iter(dm.test_dataloader()))
        key = "input_ids" if enc == "tokens" else "input_values"
        assert batch[key].shape == (1, RES * RES) and "attention_mask" not in batch  # no padding
        assert batch[key][0, 0].item() == 0
        expected = torch.from_numpy(dm.datasets["test"][0][0].astype(np.int64))
        if enc == "normalized":
            torch.testing.assert_close(batch[key][0], expected.float() / 255.0)
        else:
            assert torch.equal(batch[key][0], expected)


def test_empty_image_is_skipped_with_a_warning(tmp_path):
    root = tmp_path / "pf"
    write_pathfinder(root, n_batches=1, empty={(0, 3)})
    dm = build_datamodule(
        {"name": "pathfinder", "path": str(root)}, data_dir=tmp_path, batch_size=3
    )
    with pytest.warns(UserWarning, match="sample_3.png"):
        dm.setup()
    assert sum(len(dm.datasets[s]) for s in ("train", "val", "test")) == 9


def test_corrupt_image_names_metadata_file_and_line(tmp_path):
    root = tmp_path / "pf"
    write_pathfinder(root, n_batches=2)
    (root / "imgs" / "1" / "sample_4.png").write_bytes(b"garbage")
    dm = build_datamodule(
        {"name": "pathfinder", "path": str(root), "resolution": 32}, data_dir=tmp_path, batch_size=3
    )
    with pytest.raises(DataCorruptError) as err:
        dm.setup()
    msg = str(err.value)
    assert f"{root / 'metadata' / '1.npy'}, line 5" in msg and "sample_4.png" in msg


def test_wrong_size_image_is_reported(tmp_path):
    root = tmp_path / "pf"
    write_pathfinder(root, n_batches=1)
    Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(root / "imgs/0/sample_2.png")
    dm = build_datamodule(
        {"name": "pathfinder", "path": str(root), "resolution": 32}, data_dir=tmp_path, batch_size=3
    )
    with pytest.raises(DataCorruptError, match=r"line 3: .*expected \(32, 32\)"):
        dm.setup()


def test_missing_folder_names_metadata_path_and_command(tmp_path):
    dm = build_datamodule({"name": "pathx"}, data_dir=tmp_path, batch_size=2)
    assert (dm.max_length, dm.num_classes, dm.vocab_size) == (16384, 2, 256)
    with pytest.raises(DataNotFoundError) as err:
        dm.setup()
    msg = str(err.value)
    assert str(tmp_path / "pathfinder128" / "curv_contour_length_14" / "metadata") in msg
    assert "python -m experiments.data pathx --resolution 128" in msg


def test_prepare_data_calls_the_generator(tmp_path, monkeypatch):
    import sys
    import types

    calls = []

    def fake_generate(out_dir, *, resolution, difficulty, num_images, seed, workers, progress=True):
        calls.append((resolution, difficulty, num_images, seed, workers))
        write_pathfinder(out_dir, n_batches=1)

    monkeypatch.setitem(
        sys.modules,
        "experiments.data.pathfinder_generator",
        types.SimpleNamespace(generate_pathfinder=fake_generate),
    )
    cfg = parse_task_config(
        {
            "name": "pathfinder",
            "difficulty": "curv_baseline",
            "generate": {"size": "tiny", "seed": 5},
        }
    )
    dm = build_datamodule(cfg, data_dir=tmp_path, batch_size=2)
    dm.prepare_data()
    dm.prepare_data()  # present now: not generated twice
    assert calls == [(32, "curv_baseline", 200, 5, 1)]
    assert (tmp_path / "pathfinder32" / "curv_baseline" / "metadata" / "0.npy").is_file()
