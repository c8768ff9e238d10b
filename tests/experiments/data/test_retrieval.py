import pytest

from experiments.data import DataCorruptError, DataNotFoundError, build_datamodule
from experiments.data.byte_tokens import BYTE_OFFSET

ROWS = [
    ("1.0", "p1", "p2", "attention is all", "spectral mixing"),
    ("0.0", "p3", "p4", "a" * 50, "b"),
    ("1", "p5", "p6", "x", "y\u00fc"),
]


def write_aan(root, rows=ROWS):
    root.mkdir(parents=True, exist_ok=True)
    for name in ("train", "eval", "test"):
        lines = ["\t".join(r) for r in rows]
        (root / f"new_aan_pairs.{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_pair_batches_with_cut_documents(tmp_path):
    write_aan(tmp_path / "tsv_data")
    dm = build_datamodule({"name": "retrieval", "max_length": 20}, data_dir=tmp_path, batch_size=3)
    assert dm.is_pair and dm.vocab_size == 258 and dm.num_classes == 2
    dm.setup()
    b = next(iter(dm.val_dataloader()))
    assert set(b) == {
        "input_ids_a",
        "attention_mask_a",
        "input_ids_b",
        "attention_mask_b",
        "labels",
    }
    assert b["labels"].tolist() == [1, 0, 1]
    assert b["input_ids_a"].shape == (3, 20)
    assert b["attention_mask_a"].sum(1).tolist() == [16, 20, 1]
    assert b["attention_mask_b"].sum(1).tolist() == [15, 1, 3]  # u-umlaut is 2 bytes
    assert b["input_ids_a"][2, 0].item() == ord("x") + BYTE_OFFSET


def test_raw_cut_applies_before_the_length_cut(tmp_path):
    write_aan(tmp_path / "tsv_data")
    dm = build_datamodule(
        {"name": "retrieval", "raw_cut_bytes": 5}, data_dir=tmp_path, batch_size=3
    )
    dm.setup()
    assert len(dm.datasets["train"][1][0][0]) == 5


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ("1.0\tp1\tp2\tonly four", "5 tab-separated"),
        ("maybe\tp1\tp2\ta\tb", "not 0 or 1"),
    ],
)
def test_corrupt_row_names_file_and_line(tmp_path, row, fragment):
    root = tmp_path / "tsv_data"
    write_aan(root)
    path = root / "new_aan_pairs.test.tsv"
    path.write_text(path.read_text() + row + "\n")
    dm = build_datamodule({"name": "retrieval"}, data_dir=tmp_path, batch_size=3)
    with pytest.raises(DataCorruptError, match=fragment) as err:
        dm.setup()
    assert f"{path}, line 4" in str(err.value)


def test_missing_file_names_the_path(tmp_path):
    dm = build_datamodule({"name": "retrieval"}, data_dir=tmp_path, batch_size=3)
    with pytest.raises(DataNotFoundError) as err:
        dm.setup()
    assert str(tmp_path / "tsv_data" / "new_aan_pairs.train.tsv") in str(err.value)
    assert "lra_release" in str(err.value)
