import numpy as np
import torch

from experiments.data.datamodule import Collator, RaggedDataset, pack, pad_sequences


def test_mask_comes_from_lengths_not_token_values():
    seqs = [np.array([0, 0, 5]), np.array([7]), np.array([0])]
    ids, mask = pad_sequences(seqs, 4)
    assert ids.tolist() == [[0, 0, 5, 0], [7, 0, 0, 0], [0, 0, 0, 0]]
    dense = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(mask, dense)
    assert mask.dtype == torch.bool


def test_pad_to_longest_and_max_length():
    items = [(np.array([3, 4]), 1), (np.array([5, 6, 7]), 0)]
    longest = Collator(10, "longest", "tokens", pair=False)(items)
    fixed = Collator(10, "max_length", "tokens", pair=False)(items)
    assert longest["input_ids"].shape == (2, 3) and fixed["input_ids"].shape == (2, 10)
    assert longest["labels"].tolist() == [1, 0] and longest["labels"].dtype == torch.long
    assert torch.equal(fixed["attention_mask"][:, :3], longest["attention_mask"])


def test_ragged_dataset_cuts_at_max_length_and_pairs():
    tokens, offsets = pack([np.arange(5), np.arange(2)], np.uint8)
    assert offsets.tolist() == [0, 5, 7]
    ds = RaggedDataset(
        {"tokens": tokens, "offsets": offsets, "labels": np.array([1, 0])}, max_length=3, pair=False
    )
    assert ds[0][0].tolist() == [0, 1, 2] and ds[1][0].tolist() == [0, 1] and ds[1][1] == 0
    pair = RaggedDataset(
        {
            "tokens_a": tokens,
            "offsets_a": offsets,
            "tokens_b": tokens[::-1].copy(),
            "offsets_b": offsets,
            "labels": np.array([1, 0]),
        },
        10,
        pair=True,
    )
    batch = Collator(10, "longest", "tokens", pair=True)([pair[0], pair[1]])
    assert batch["input_ids_b"][1].tolist() == [1, 0, 0, 0, 0]
    assert batch["attention_mask_b"].sum(1).tolist() == [5, 2]


def test_lra_nonzero_mask_also_masks_token_zero():
    seqs = [np.array([0, 3, 0, 5]), np.array([7, 0])]
    lengths = Collator(4, "max_length", "tokens", False)([(s, 0) for s in seqs])
    nonzero = Collator(4, "max_length", "tokens", False, mask="lra_nonzero")([(s, 0) for s in seqs])
    assert torch.equal(lengths["input_ids"], nonzero["input_ids"])
    assert lengths["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert nonzero["attention_mask"].tolist() == [[0, 1, 0, 1], [1, 0, 0, 0]]
    values = Collator(4, "max_length", "values", False, mask="lra_nonzero")([(s, 0) for s in seqs])
    assert torch.equal(values["attention_mask"], nonzero["attention_mask"])


def _equal_batches(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a
    )


def test_batched_fetch_equals_item_by_item_padding():
    rng = np.random.default_rng(0)
    for dtype, high in ((np.uint8, 256), (np.uint16, 40000)):
        seqs = [rng.integers(0, high, size=n) * (rng.random(n) > 0.3) for n in (7, 1, 12, 3, 12, 9)]
        tokens, offsets = pack(seqs, dtype)
        labels = rng.integers(0, 5, size=len(seqs))
        ds = RaggedDataset({"tokens": tokens, "offsets": offsets, "labels": labels}, 10, False)
        ids, lengths = ds.dense()
        assert ids.element_size() <= 4 and ids.shape == (6, 10)
        assert lengths.tolist() == [7, 1, 10, 3, 10, 9]
        for pad_to in ("longest", "max_length"):
            for input_type in ("tokens", "values"):
                for mask in ("lengths", "lra_nonzero"):
                    collate = Collator(10, pad_to, input_type, pair=False, mask=mask)
                    for index in ([1, 3], [4, 0, 2], [5]):
                        batched = collate(ds.__getitems__(index))
                        items = collate([ds[i] for i in index])
                        assert _equal_batches(batched, items), (pad_to, input_type, mask, index)


def test_loader_uses_the_batched_fetch():
    from torch.utils.data import DataLoader

    tokens, offsets = pack([np.arange(n, dtype=np.int64) % 7 for n in (3, 5, 2, 4)], np.uint8)
    ds = RaggedDataset({"tokens": tokens, "offsets": offsets, "labels": np.arange(4)}, 8, False)
    loader = DataLoader(ds, batch_size=3, collate_fn=Collator(8, "longest", "tokens", False))
    first = next(iter(loader))
    assert first["input_ids"].shape == (3, 5) and first["labels"].tolist() == [0, 1, 2]
    assert ds._dense is not None  # built by the batched fetch


def test_a_batch_without_padding_carries_no_mask_and_the_model_output_is_the_same():
    from experiments.callbacks import _batch_tokens
    from spectrans.models import build_classifier

    full = [(np.array([3, 4, 5, 6]), 1), (np.array([7, 8, 9, 1]), 0)]
    padded = [(np.array([3, 4, 5, 6]), 1), (np.array([7, 8]), 0)]
    collate = Collator(4, "max_length", "tokens", pair=False)
    no_mask, with_pad = collate(full), collate(padded)
    assert "attention_mask" not in no_mask and "attention_mask" in with_pad
    assert _batch_tokens(no_mask) == _batch_tokens(with_pad) == 8
    model = build_classifier(
        {"name": "encoder", "hidden_dim": 16, "num_layers": 1, "ffn_hidden_dim": 32},
        {"name": "softmax", "num_heads": 2},
        vocab_size=10,
        num_classes=2,
        max_length=4,
        pair=False,
    ).eval()
    ids = no_mask["input_ids"]
    torch.testing.assert_close(
        model(input_ids=ids), model(input_ids=ids, attention_mask=torch.ones_like(ids).bool())
    )


def test_full_length_batches_skip_the_mask_only_when_it_is_all_true():
    rng = np.random.default_rng(1)
    seqs = [rng.integers(0, 5, size=n) for n in (6, 6, 6, 4)]
    tokens, offsets = pack(seqs, np.uint8)
    ds = RaggedDataset({"tokens": tokens, "offsets": offsets, "labels": np.arange(4)}, 6, False)
    for mask in ("lengths", "lra_nonzero"):
        for input_type in ("tokens", "values"):
            collate = Collator(6, "max_length", input_type, pair=False, mask=mask)
            for index in ([0, 1, 2], [3, 0], [2]):
                batched = collate(ds.__getitems__(index))
                assert _equal_batches(batched, collate([ds[i] for i in index]))
                has_mask = "attention_mask" in batched
                expected = not bool(
                    (
                        (torch.arange(6)[None] < ds.dense()[1][index][:, None])
                        & (
                            torch.ones(len(index), 6, dtype=torch.bool)
                            if mask == "lengths"
                            else batched.get("input_ids", batched.get("input_values")) > 0
                        )
                    ).all()
                )
                assert has_mask == expected, (mask, input_type, index)


def test_loaders_pin_memory_only_for_a_cuda_trainer(tmp_path):
    from types import SimpleNamespace

    from experiments.data.datamodule import LRADataModule

    tokens, offsets = pack([np.arange(3)] * 4, np.uint8)
    split = {"tokens": tokens, "offsets": offsets, "labels": np.arange(4)}
    cfg = SimpleNamespace(max_length=3, pad_to="max_length", mask="lengths")
    dm = LRADataModule(cfg, data_dir=tmp_path, batch_size=2)
    dm.datasets = {s: RaggedDataset(split, 3, False) for s in ("train", "val", "test")}
    assert not dm.pin_memory and not dm.val_dataloader().pin_memory  # no trainer
    for device, pinned in (("cpu", False), ("cuda", True)):
        dm.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)))
        assert dm.pin_memory is pinned and dm.test_dataloader().pin_memory is pinned
