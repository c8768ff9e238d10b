import numpy as np
import pytest
import torch

from experiments.data import DataCorruptError, DataNotFoundError, build_datamodule
from experiments.data.listops import VOCAB, tokenize

ROWS = [
    ("( ( ( ( ( [MAX 2 ) 9 ) ( ( ( [MIN 4 ) 7 ) ] ) ) 0 ) ] )", 9),
    ("( ( ( [SM 5 ) 8 ) ] )", 3),
    ("( ( ( ( [MED 1 ) 2 ) 6 ) ] )", 2),
]


def write_split(path, rows, newline="\r\n"):
    text = "Source\tTarget" + newline + "".join(f"{s}\t{t}{newline}" for s, t in rows)
    path.write_text(text, encoding="utf-8", newline="")


def write_listops(root, newline="\r\n"):
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test"):
        write_split(root / f"basic_{split}.tsv", ROWS, newline)


def ids_of(words):
    return [VOCAB.index(w) for w in words]


def test_tokenizer_drops_parentheses_and_maps_close_to_x():
    got = tokenize(ROWS[0][0]).tolist()
    assert got == ids_of("[MAX 2 9 [MIN 4 7 X 0 X".split())


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_reader_and_datamodule_on_official_format(tmp_path, newline):
    write_listops(tmp_path / "listops-1000", newline)
    dm = build_datamodule({"name": "listops"}, data_dir=tmp_path, batch_size=3, seed=0)
    assert (dm.vocab_size, dm.num_classes, dm.max_length, dm.is_pair) == (17, 10, 2000, False)
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    assert batch["input_ids"].shape == (3, 2000)
    assert batch["labels"].tolist() == [9, 3, 2]
    lengths = [len(tokenize(s)) for s, _ in ROWS]
    assert batch["attention_mask"].sum(1).tolist() == lengths
    assert batch["input_ids"][1, :5].tolist() == ids_of("[SM 5 8 X".split()) + [0]


def test_missing_file_names_the_path_and_the_command(tmp_path):
    dm = build_datamodule({"name": "listops"}, data_dir=tmp_path, batch_size=2)
    with pytest.raises(DataNotFoundError) as err:
        dm.setup()
    msg = str(err.value)
    assert str(tmp_path / "listops-1000" / "basic_train.tsv") in msg
    assert "python -m experiments.data listops" in msg


@pytest.mark.parametrize(
    ("bad_line", "fragment"),
    [
        ("( [MIN 3 ) 4 ]\t7\textra", "2 tab-separated"),
        ("( ( [FOO 3 ) ] )\t3", "[FOO"),
        ("( ( [MIN 3 ) ] )\t12", "not a digit"),
    ],
)
def test_corrupt_row_names_file_and_line(tmp_path, bad_line, fragment):
    root = tmp_path / "listops-1000"
    write_listops(root)
    path = root / "basic_val.tsv"
    path.write_text(path.read_text() + bad_line + "\n")
    dm = build_datamodule({"name": "listops"}, data_dir=tmp_path, batch_size=2)
    with pytest.raises(DataCorruptError) as err:
        dm.setup()
    assert f"{path}, line 5" in str(err.value) and fragment in str(err.value)


def test_prepare_data_generates_when_asked(tmp_path):
    cfg = {"name": "listops", "max_length": 2048, "generate": {"size": "tiny", "seed": 3}}
    dm = build_datamodule(cfg, data_dir=tmp_path, batch_size=4, seed=1)
    dm.prepare_data()
    dm.setup()
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [200, 20, 20]
    loader = dm.train_dataloader()
    first = [b["labels"] for b in loader]
    again = [b["labels"] for b in loader]
    assert len(first) == 50 and first[0].dtype == torch.long
    dm2 = build_datamodule(cfg, data_dir=tmp_path, batch_size=4, seed=1)
    dm2.setup()
    rerun = [b["labels"] for b in dm2.train_dataloader()]
    assert all(torch.equal(a, b) for a, b in zip(first, rerun))
    assert not all(torch.equal(a, b) for a, b in zip(first, again))  # new order each epoch
    assert np.all(np.diff(dm.datasets["train"].arrays["offsets"]) > 500)
