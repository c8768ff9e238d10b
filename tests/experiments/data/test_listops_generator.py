import statistics

import numpy as np
import pytest

from experiments.data.listops_generator import (
    MAX_LENGTH,
    MIN_LENGTH,
    _Stream,
    apply_operator,
    draw_tree,
    generate_listops,
    generate_trees,
)


def parse_official(text: str):
    """Oracle: rebuild the original nested-pair tuples from the text, then evaluate them."""
    tokens = text.split()
    pos = 0

    def node():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            left = node()
            right = node()
            assert tokens[pos] == ")"
            pos += 1
            return (left, right)
        return tok

    tree = node()
    assert pos == len(tokens)
    return tree


def evaluate_pairs(t):
    """The original ``to_value`` on nested pairs, with numpy's median."""
    ops = {
        "[MIN": min,
        "[MAX": max,
        "[MED": lambda a: int(np.median(np.asarray(a, dtype=np.float64))),
        "[SM": lambda a: sum(a) % 10,
    }
    if not isinstance(t, tuple):
        return t if t in ops or t == "]" else int(t)
    left, right = evaluate_pairs(t[0]), evaluate_pairs(t[1])
    if isinstance(left, str):
        return (left, [right])
    if right == "]":
        return ops[left[0]](left[1])
    return (left[0], left[1] + [right])


def plain_length(text: str) -> int:
    return sum(tok not in "()" for tok in text.split())


@pytest.mark.parametrize(
    ("op", "args", "want"),
    [
        ("[MIN", [4, 7, 2], 2),
        ("[MAX", [4, 7, 2], 7),
        ("[MED", [4, 7, 2], 4),
        ("[MED", [4, 7, 2, 9], 5),  # (4 + 7) / 2 = 5.5 -> 5
        ("[MED", [1, 2], 1),  # 1.5 -> 1
        ("[SM", [4, 7, 9], 0),
        ("[SM", [5, 8], 3),
    ],
)
def test_operator_values_by_hand(op, args, want):
    assert apply_operator(op, args) == want


def test_official_example_evaluates_and_parses():
    text = "( ( ( ( ( [MAX 2 ) 9 ) ( ( ( [MIN 4 ) 7 ) ] ) ) 0 ) ] )"
    assert evaluate_pairs(parse_official(text)) == 9


def test_generated_text_matches_oracle_value_and_length():
    stream = _Stream(np.random.default_rng(3))
    checked = 0
    while checked < 300:
        tree = draw_tree(stream)
        if tree is None:
            continue
        text, value, length = tree
        assert evaluate_pairs(parse_official(text)) == value
        assert plain_length(text) == length
        checked += 1


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path):
    sizes = (30, 5, 5)
    generate_listops(tmp_path / "a", seed=7, sizes=sizes, progress=False)
    generate_listops(tmp_path / "b", seed=7, sizes=sizes, progress=False)
    generate_listops(tmp_path / "c", seed=8, sizes=sizes, progress=False)
    for split in ("train", "val", "test"):
        a = (tmp_path / "a" / f"basic_{split}.tsv").read_bytes()
        assert a == (tmp_path / "b" / f"basic_{split}.tsv").read_bytes()
        assert a != (tmp_path / "c" / f"basic_{split}.tsv").read_bytes()
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]


def test_files_have_official_format_and_no_duplicates_across_splits(tmp_path):
    rep = generate_listops(tmp_path, seed=1, sizes=(40, 10, 10), progress=False)
    assert rep.sizes == {"train": 40, "val": 10, "test": 10}
    sources = []
    for split, n in rep.sizes.items():
        raw = (tmp_path / f"basic_{split}.tsv").read_bytes()
        lines = raw.split(b"\r\n")
        assert lines[0] == b"Source\tTarget" and lines[-1] == b""
        rows = [line.decode().split("\t") for line in lines[1:-1]]
        assert len(rows) == n
        for text, target in rows:
            assert MIN_LENGTH < plain_length(text) < MAX_LENGTH
            assert int(target) == evaluate_pairs(parse_official(text))
            sources.append(text)
    assert len(set(sources)) == len(sources)


def test_duplicates_across_chunks_are_dropped(monkeypatch):
    import experiments.data.listops_generator as gen

    real = gen._run_chunk

    def chunk_one_repeats_chunk_zero(args):
        seed, index, size, shape = args
        _, kept, draws = real((seed, 0 if index == 1 else index, size, shape))
        return index, kept, draws

    monkeypatch.setattr(gen, "_run_chunk", chunk_one_repeats_chunk_zero)
    trees, _, accepted = gen.generate_trees(20, seed=2, chunk_size=10, progress=False)
    texts = [t[0] for t in trees]
    assert len(texts) == 20 and len(set(texts)) == 20
    assert accepted == 30  # the duplicate chunk forced a third one
    assert texts[:10] == [t[0] for t in real((2, 0, 10, gen.LRA_SHAPE))[1]]


def test_statistics_match_the_rules():
    trees, draws, accepted = generate_trees(1000, seed=11, progress=False)
    lengths = np.array([t[2] for t in trees])
    values = np.bincount([t[1] for t in trees], minlength=10) / len(trees)
    assert lengths.min() > MIN_LENGTH and lengths.max() < MAX_LENGTH
    assert 900 <= statistics.median(lengths.tolist()) <= 1100
    assert 0.13 < values[0] < 0.21 and 0.13 < values[9] < 0.21
    assert all(0.05 < v < 0.12 for v in values[1:9])
    assert 0.06 < accepted / draws < 0.11


def test_worker_count_does_not_change_the_trees():
    one = generate_trees(30, seed=4, workers=1, chunk_size=10, progress=False)
    two = generate_trees(30, seed=4, workers=2, chunk_size=10, progress=False)
    assert one == two


def test_a_short_shape_bounds_depth_and_length():
    import experiments.data.listops_generator as gen

    shape = gen.TreeShape(max_depth=3, min_length=10, max_length=100)
    trees, _, _ = gen.generate_trees(200, seed=0, progress=False, shape=shape)
    assert len(trees) == 200
    assert all(10 < length < 100 for _, _, length in trees)
    for text, value, _ in trees:
        depth = max_depth = 0
        for token in text.split():
            depth += token.startswith("[")
            depth -= token == "]"
            max_depth = max(max_depth, depth)
        assert max_depth <= 2  # operators sit at depths 1 and 2; depth 3 holds digits only
        assert value == evaluate_pairs(parse_official(text))
