import pickle
import sys
import types

import numpy as np
import pytest
import torch

from experiments.data import DataCorruptError, DataNotFoundError, build_datamodule


def write_cifar(root, n_train=10, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    data = {}
    for name, n in [*((f"data_batch_{i}", n_train) for i in range(1, 6)), ("test_batch", n_test)]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
        }
        batch[b"data"][0, :3] = 0  # three black pixels of every image 0: R = G = B = 0
        batch[b"data"][0, 1024:1027] = 0
        batch[b"data"][0, 2048:2051] = 0
        with open(root / name, "wb") as f:
            pickle.dump(batch, f)
        data[name] = batch
    return data


def gray_oracle(row):
    r, g, b = (row[i * 1024 : (i + 1) * 1024].astype(np.float64) for i in range(3))
    return np.floor((0.2989 * r + 0.587 * g + 0.114 * b) / 255.0 * 255.5).astype(np.int64)


def test_pickles_give_grayscale_tokens_and_45_5_10_splits(tmp_path):
    data = write_cifar(tmp_path / "cifar-10-batches-py")
    dm = build_datamodule({"name": "image"}, data_dir=tmp_path, batch_size=5)
    assert (dm.vocab_size, dm.num_classes, dm.max_length, dm.input_type) == (
        256,
        10,
        1024,
        "tokens",
    )
    dm.setup()
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [45, 5, 4]
    val_first = dm.datasets["val"][0]
    src = data["data_batch_5"]  # val is the last 10% of train: batch 5, rows 5..9
    assert val_first[1] == src[b"labels"][5]
    got = val_first[0].astype(np.int64)
    np.testing.assert_allclose(got, gray_oracle(src[b"data"][5]), atol=1)
    assert (np.abs(got - gray_oracle(src[b"data"][5])) == 0).mean() > 0.99
    batch = next(iter(dm.test_dataloader()))
    assert batch["input_ids"][0, :3].tolist() == [0, 0, 0]
    assert "attention_mask" not in batch  # black pixels are not padding: no mask at all


def test_normalized_pixels(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    dm = build_datamodule(
        {"name": "image", "pixel_encoding": "normalized"}, data_dir=tmp_path, batch_size=4
    )
    assert dm.input_type == "values"
    dm.setup()
    batch = next(iter(dm.test_dataloader()))
    ids = torch.from_numpy(dm.datasets["test"][1][0].astype(np.float32))
    assert batch["input_values"].dtype == torch.float32
    torch.testing.assert_close(batch["input_values"][1], ids / 255.0)


def test_hub_source_through_a_fake_datasets_module(tmp_path, monkeypatch):
    from PIL import Image

    rgb = np.zeros((32, 32, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 255, 255)
    img = Image.fromarray(rgb)
    fake = {
        "train": {"img": [img] * 10, "label": list(range(10))},
        "test": {"img": [img], "label": [3]},
    }
    monkeypatch.setitem(
        sys.modules, "datasets", types.SimpleNamespace(load_dataset=lambda hf_id: fake)
    )
    dm = build_datamodule(
        {"name": "image", "source": "hf", "cache": False}, data_dir=tmp_path, batch_size=2
    )
    dm.setup()
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [9, 1, 1]
    assert dm.datasets["test"][0][0][:2].tolist() == [255, 0]


def test_missing_and_corrupt_pickles(tmp_path, monkeypatch):
    monkeypatch.setattr("experiments.data.image.datasets_importable", lambda: False)
    dm = build_datamodule({"name": "image"}, data_dir=tmp_path, batch_size=2)
    with pytest.raises(DataNotFoundError) as err:
        dm.setup()
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in str(err.value)
    write_cifar(tmp_path / "cifar-10-batches-py")
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(b"not a pickle")
    dm = build_datamodule({"name": "image"}, data_dir=tmp_path, batch_size=2)
    with pytest.raises(DataCorruptError, match="data_batch_3"):
        dm.setup()
