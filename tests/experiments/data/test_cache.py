import os

import numpy as np
import pytest

from experiments.data import build_datamodule
from experiments.data.cache import cache_key, file_fingerprints, load_or_build

ROW = "( ( ( [SM 5 ) 8 ) ] )\t3\r\n"


def write_listops(root):
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test"):
        (root / f"basic_{split}.tsv").write_text("Source\tTarget\r\n" + ROW * 3, newline="")


def listops_dm(tmp_path, **cfg):
    return build_datamodule({"name": "listops", **cfg}, data_dir=tmp_path, batch_size=2)


def test_second_run_reuses_the_cache(tmp_path, monkeypatch):
    write_listops(tmp_path / "listops-1000")
    first = listops_dm(tmp_path)
    first.setup()
    assert first.cache_hit is False
    built = []
    second = listops_dm(tmp_path)
    monkeypatch.setattr(type(second), "build_splits", lambda self: built.append(1))
    second.setup()
    assert second.cache_hit is True and built == []
    assert second.datasets["train"][0][0].tolist() == first.datasets["train"][0][0].tolist()


def test_config_change_and_touched_source_rebuild(tmp_path):
    root = tmp_path / "listops-1000"
    write_listops(root)
    listops_dm(tmp_path).setup()
    changed = listops_dm(tmp_path, max_length=2048)
    changed.setup()
    assert changed.cache_hit is False
    padding_only = listops_dm(tmp_path, pad_to="longest")  # not part of the tokens
    padding_only.setup()
    assert padding_only.cache_hit is True
    path = root / "basic_val.tsv"
    path.write_text("Source\tTarget\r\n" + ROW * 4, newline="")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched = listops_dm(tmp_path)
    touched.setup()
    assert touched.cache_hit is False and len(touched.datasets["val"]) == 4


def test_cache_disabled_stores_nothing(tmp_path):
    write_listops(tmp_path / "listops-1000")
    dm = listops_dm(tmp_path, cache=False)
    dm.setup()
    assert not (tmp_path / ".cache").exists()


def test_failed_build_leaves_no_entry(tmp_path):
    def broken():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        load_or_build(tmp_path, "t", "k", broken)
    assert list(tmp_path.iterdir()) == []
    arrays, hit = load_or_build(tmp_path, "t", "k", lambda: {"train": {"x": np.arange(3)}})
    assert not hit and arrays["train"]["x"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["t-k"]  # no temporary folder left


def test_key_depends_on_config_and_files(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("x")
    fp = file_fingerprints([f])
    assert cache_key({"a": 1}, fp) == cache_key({"a": 1}, fp)
    assert cache_key({"a": 1}, fp) != cache_key({"a": 2}, fp)
    f.write_text("xy")
    assert cache_key({"a": 1}, fp) != cache_key({"a": 1}, file_fingerprints([f]))
