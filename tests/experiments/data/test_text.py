import sys
import types

import pytest

from experiments.data import DataNotFoundError, build_datamodule
from experiments.data.byte_tokens import BYTE_OFFSET

REVIEWS = {
    ("train", "neg"): ["bad film", "awful \u00e9t\u00e9"],
    ("train", "pos"): ["great", "loved it a lot"],
    ("test", "neg"): ["boring"],
    ("test", "pos"): ["superb acting throughout"],
}


def write_aclimdb(root):
    for (split, sub), texts in REVIEWS.items():
        folder = root / "aclImdb" / split / sub
        folder.mkdir(parents=True)
        for i, text in enumerate(texts):
            (folder / f"{i}_7.txt").write_bytes(text.encode("utf-8"))


def byte_ids(text, n=None):
    return [b + BYTE_OFFSET for b in text.encode("utf-8")[:n]]


def test_aclimdb_folder_reads_raw_utf8_bytes(tmp_path):
    write_aclimdb(tmp_path / "imdb")
    dm = build_datamodule(
        {"name": "text", "max_length": 10, "pad_to": "longest", "validation": "test"},
        data_dir=tmp_path,
        batch_size=8,
    )
    assert (dm.vocab_size, dm.num_classes, dm.max_length) == (258, 2, 10)
    dm.setup()
    batch = next(iter(dm.test_dataloader()))
    assert batch["labels"].tolist() == [0, 1]
    assert batch["input_ids"].shape == (2, 10)
    assert batch["input_ids"][0, :6].tolist() == byte_ids("boring")
    assert batch["attention_mask"].sum(1).tolist() == [6, 10]
    train = dm.datasets["train"]
    assert train[1][0].tolist() == byte_ids("awful \u00e9t\u00e9", 10)  # 2-byte characters
    assert [train[i][1] for i in range(4)] == [0, 0, 1, 1]
    assert len(dm.datasets["val"]) == 2  # LRA validates on test


def test_default_validation_is_a_seeded_holdout_disjoint_from_test(tmp_path):
    write_aclimdb(tmp_path / "imdb")
    default = build_datamodule({"name": "text"}, data_dir=tmp_path, batch_size=8)
    assert (default.cfg.validation, default.cfg.holdout_fraction) == ("holdout", 0.1)
    dm = build_datamodule(
        {"name": "text", "holdout_fraction": 0.5}, data_dir=tmp_path, batch_size=8
    )
    dm.setup()
    train, val, test = (dm.datasets[s] for s in ("train", "val", "test"))

    def rows(ds):
        return {tuple(ds[i][0].tolist()) for i in range(len(ds))}

    assert (len(train), len(val), len(test)) == (2, 2, 2)
    assert not rows(val) & rows(test) and not rows(val) & rows(train)


def test_holdout_validation_splits_train(tmp_path):
    write_aclimdb(tmp_path / "imdb")
    dm = build_datamodule(
        {"name": "text", "validation": "holdout", "holdout_fraction": 0.25},
        data_dir=tmp_path,
        batch_size=8,
    )
    dm.setup()
    assert (len(dm.datasets["train"]), len(dm.datasets["val"])) == (3, 1)


def test_parquet_files(tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    folder = tmp_path / "imdb" / "plain_text"
    folder.mkdir(parents=True)
    pd.DataFrame({"text": ["meh", "wow"], "label": [0, 1]}).to_parquet(
        folder / "train-00000-of-00001.parquet"
    )
    pd.DataFrame({"text": ["ok"], "label": [1]}).to_parquet(folder / "test-00000-of-00001.parquet")
    dm = build_datamodule({"name": "text"}, data_dir=tmp_path, batch_size=2)
    dm.setup()
    assert dm.datasets["train"][1][0].tolist() == byte_ids("wow")


def test_hub_source_through_a_fake_datasets_module(tmp_path, monkeypatch):
    calls = []

    def load_dataset(hf_id):
        calls.append(hf_id)
        return {
            "train": {"text": ["a", "bc"], "label": [0, 1]},
            "test": {"text": ["xyz"], "label": [1]},
        }

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    dm = build_datamodule(
        {"name": "text", "source": "hf", "cache": False}, data_dir=tmp_path, batch_size=2
    )
    dm.setup()
    assert calls == ["stanfordnlp/imdb"]
    assert dm.datasets["test"][0][0].tolist() == byte_ids("xyz")


def test_missing_imdb_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setattr("experiments.data.text.datasets_importable", lambda: False)
    dm = build_datamodule({"name": "text"}, data_dir=tmp_path, batch_size=2)
    with pytest.raises(DataNotFoundError) as err:
        dm.setup()
    assert str(tmp_path / "imdb") in str(err.value) and "aclImdb" in str(err.value)


def test_offline_hub_gives_a_data_not_found_error(tmp_path, monkeypatch):
    def load_dataset(hf_id):
        raise ConnectionError("no network")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    dm = build_datamodule({"name": "text"}, data_dir=tmp_path, batch_size=2)
    with pytest.raises(DataNotFoundError, match="no network") as err:
        dm.setup()
    assert str(tmp_path / "imdb" / "aclImdb") in str(err.value)
