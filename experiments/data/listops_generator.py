r"""Seeded, parallel ListOps generator following the LRA ``listops.py`` rules exactly.

A tree is drawn top down from depth 1 (max depth 10, max 10 arguments). Below the max depth
a uniform ``r ~ U[0, 1)`` decides: ``r > 0.25`` gives a leaf (a digit ``v ~ U{0..9}``,
length 1), otherwise an operator node with ``k ~ U{2..10}`` children (built first, left to
right), then the operator ``op ~ U{MIN, MAX, MED, SM}``; its length is ``2 + sum(children)``.
At the max depth every node is a leaf. A tree is kept iff ``500 < length < 2000`` (strict),
duplicates are dropped, and the kept trees are split 96k / 2k / 2k.

Values: ``MIN``/``MAX`` as named, ``MED = int(median)`` (the mean of the two middle values,
truncated), ``SM = sum mod 10``.

The official text format nests each argument in a pair, e.g. ``[MAX 2 9 [MIN 4 7 ] 0 ]`` is
written ``( ( ( ( ( [MAX 2 ) 9 ) ( ( ( [MIN 4 ) 7 ) ] ) ) 0 ) ] )``: an operator with ``k``
children opens ``k + 1`` parentheses and closes one after each child and one after ``]``.
Files are written like the original (``csv.writer`` with a tab delimiter, header
``Source\tTarget``, ``\r\n`` line ends).

Reproducibility: the stream of draws is cut into chunks; chunk ``c`` uses its own
``numpy.random.Generator`` seeded by ``SeedSequence([seed, c])`` and keeps drawing until it
has ``chunk_size`` accepted trees. Chunks are merged in index order (dropping trees already
seen), so the files depend only on the seed and the sizes, never on the worker count.
A tree whose length reaches 2000 during construction is abandoned early: it would be rejected
anyway, so the distribution of kept trees is unchanged.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.data.manifest import MANIFEST, read_manifest, write_manifest

GENERATOR = "spectrans-lra listops"
GENERATOR_VERSION = 1
OPERATORS: tuple[str, ...] = ("[MIN", "[MAX", "[MED", "[SM")
VALUE_P = 0.25
MAX_DEPTH = 10
MAX_ARGS = 10
MIN_LENGTH = 500
MAX_LENGTH = 2000
SPLIT_SIZES: dict[str, tuple[int, int, int]] = {
    "full": (96_000, 2_000, 2_000),
    "small": (2_000, 200, 200),
    "tiny": (200, 20, 20),
}
SPLIT_NAMES = ("train", "val", "test")
_BUFFER = 1 << 16


class _TooLongError(Exception):
    """Raised inside the recursion once a tree can no longer be accepted."""


def apply_operator(op: str, args: list[int]) -> int:
    """Value of one operator node.

    Args:
        op: One of ``[MIN``, ``[MAX``, ``[MED``, ``[SM``.
        args: The children's values (digits 0..9), at least one.

    Returns:
        ``min``, ``max``, ``int(median)`` (mean of the two middle values truncated for an even
        count) or ``sum mod 10``.
    """
    if op == "[MIN":
        return min(args)
    if op == "[MAX":
        return max(args)
    if op == "[MED":
        return int(statistics.median(args))
    if op == "[SM":
        return sum(args) % 10
    raise ValueError(f"Unknown ListOps operator {op!r}; expected one of {OPERATORS}.")


class _Stream:
    """Buffered uniform draws from a numpy Generator (one Python float per call)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.buf: list[float] = []
        self.pos = 0

    def next(self) -> float:
        if self.pos == len(self.buf):
            self.buf = self.rng.random(_BUFFER).tolist()
            self.pos = 0
        u = self.buf[self.pos]
        self.pos += 1
        return u


@dataclass(frozen=True)
class TreeShape:
    """The accepted trees: depth ``<= max_depth`` and ``min_length < length < max_length``.

    The defaults are the LRA rules; a smaller shape (e.g. depth 3, lengths 10..100) gives a
    short ListOps that a small model learns in minutes.
    """

    max_depth: int = MAX_DEPTH
    min_length: int = MIN_LENGTH
    max_length: int = MAX_LENGTH


LRA_SHAPE = TreeShape()


def _draw_tree(
    stream: _Stream, depth: int, budget: list[int], shape: TreeShape = LRA_SHAPE
) -> tuple[str, int, int]:
    """Draw one (sub)tree; returns (text, value, length). ``budget[0]`` counts tokens."""
    r = stream.next() if depth < shape.max_depth else 1.0
    if r > VALUE_P:
        v = int(stream.next() * 10)
        budget[0] += 1
        if budget[0] >= shape.max_length:
            raise _TooLongError
        return str(v), v, 1
    k = 2 + int(stream.next() * (MAX_ARGS - 1))
    budget[0] += 2
    texts: list[str] = []
    values: list[int] = []
    length = 2
    for _ in range(k):
        t, v, n = _draw_tree(stream, depth + 1, budget, shape)
        texts.append(t)
        values.append(v)
        length += n
    op = OPERATORS[int(stream.next() * len(OPERATORS))]
    text = "( " * (k + 1) + op + " " + " ) ".join(texts) + " ) ] )"
    return text, apply_operator(op, values), length


def draw_tree(stream: _Stream, shape: TreeShape = LRA_SHAPE) -> tuple[str, int, int] | None:
    """One draw of the process: (text, value, length), or None once it reached max_length."""
    try:
        return _draw_tree(stream, 1, [0], shape)
    except _TooLongError:
        return None


def _run_chunk(
    args: tuple[int, int, int, TreeShape],
) -> tuple[int, list[tuple[str, int, int]], int]:
    """Draw until ``chunk_size`` distinct accepted trees; returns (index, trees, draws)."""
    seed, index, chunk_size, shape = args
    stream = _Stream(np.random.default_rng(np.random.SeedSequence([seed, index])))
    seen: set[str] = set()
    kept: list[tuple[str, int, int]] = []
    draws = 0
    while len(kept) < chunk_size:
        draws += 1
        tree = draw_tree(stream, shape)
        if tree is None or not shape.min_length < tree[2] < shape.max_length or tree[0] in seen:
            continue
        seen.add(tree[0])
        kept.append(tree)
    return index, kept, draws


@dataclass
class GenerationReport:
    """What one generation run did.

    Attributes:
        sizes: Rows written per split.
        draws: Trees drawn in total (accepted or not) over the chunks used.
        accepted_fraction: Accepted trees (before cross-chunk dedup) / draws.
        seconds: Wall-clock time.
        paths: The files written.
    """

    sizes: dict[str, int]
    draws: int
    accepted_fraction: float
    seconds: float
    paths: dict[str, Path]


def generate_trees(
    total: int,
    *,
    seed: int,
    workers: int = 1,
    chunk_size: int = 1000,
    progress: bool = True,
    shape: TreeShape = LRA_SHAPE,
) -> tuple[list[tuple[str, int, int]], int, int]:
    """Draw ``total`` distinct accepted trees.

    Args:
        total: Number of distinct trees wanted.
        seed: Seed of the whole run.
        workers: Worker processes (1 runs in this process); does not change the result.
        chunk_size: Accepted trees per chunk, capped at ``total`` (changes the result: keep
            it fixed).
        progress: Show a tqdm progress bar.
        shape: Depth and length rules of an accepted tree (LRA by default).

    Returns:
        ``(trees, draws, accepted)``: trees ``(text, value, length)`` in chunk order, the
        number of draws, and the number accepted before cross-chunk dedup.
    """
    from tqdm.auto import tqdm

    if total <= 0 or chunk_size <= 0:
        raise ValueError(f"total={total} and chunk_size={chunk_size} must be positive tree counts.")
    chunk_size = min(chunk_size, total)
    trees: list[tuple[str, int, int]] = []
    seen: set[str] = set()
    draws = accepted = 0
    next_chunk = 0
    bar = tqdm(total=total, desc="ListOps trees", unit="tree", disable=not progress)
    n_chunks = -(-total // chunk_size)
    workers = min(workers, n_chunks)
    pool = mp.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        while len(trees) < total:
            # Enough chunks for what is missing (more only if duplicates across chunks).
            n = -(-(total - len(trees)) // chunk_size)
            jobs = [(seed, i, chunk_size, shape) for i in range(next_chunk, next_chunk + n)]
            next_chunk += n
            results = pool.imap(_run_chunk, jobs) if pool else map(_run_chunk, jobs)
            for _, kept, n_draws in results:
                draws += n_draws
                accepted += len(kept)
                for tree in kept:
                    if tree[0] not in seen and len(trees) < total:
                        seen.add(tree[0])
                        trees.append(tree)
                bar.update(len(trees) - bar.n)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    return trees, draws, accepted


def write_tsv(path: Path, rows: list[tuple[str, int, int]]) -> None:
    r"""Write ``Source\tTarget`` rows as the original ``csv.writer`` does (``\r\n`` ends)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("Source\tTarget\r\n")
        f.writelines(f"{text}\t{value}\r\n" for text, value, _ in rows)


def generate_listops(
    out_dir: str | os.PathLike[str],
    *,
    size: str = "full",
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    sizes: tuple[int, int, int] | None = None,
    shape: TreeShape = LRA_SHAPE,
) -> GenerationReport:
    """Generate ``basic_{train,val,test}.tsv`` in ``out_dir`` (the official LRA format).

    Each file is written under a temporary name and renamed when all three are complete, then
    ``manifest.json`` (seed, sizes, version, checksum) is written last: a folder without it but
    with leftovers or only some of the files was cut short (see :func:`folder_state`).

    Args:
        out_dir: Folder to write into (created if missing).
        size: ``full`` (96k/2k/2k), ``small`` (2000/200/200) or ``tiny`` (200/20/20).
        seed: Seed; the same seed gives byte-identical files.
        workers: Worker processes; does not change the files.
        progress: Show a progress bar.
        sizes: Explicit (train, val, test) sizes, overriding ``size``.
        shape: Depth and length rules of an accepted tree (LRA by default).

    Returns:
        A :class:`GenerationReport`.
    """
    sizes = _split_sizes(size, sizes)
    start = time.perf_counter()
    trees, draws, accepted = generate_trees(
        sum(sizes), seed=seed, workers=workers, progress=progress, shape=shape
    )
    out = Path(out_dir)
    _clear_for_writing(out)
    paths = _write_splits(out, trees, sizes)
    record = {
        "generator": GENERATOR,
        "version": GENERATOR_VERSION,
        "seed": seed,
        "sizes": dict(zip(SPLIT_NAMES, map(int, sizes))),
        "shape": dataclasses.asdict(shape),
    }
    write_manifest(out, record, paths.values())
    return GenerationReport(
        sizes=dict(zip(SPLIT_NAMES, sizes)),
        draws=draws,
        accepted_fraction=accepted / max(draws, 1),
        seconds=time.perf_counter() - start,
        paths=paths,
    )


def _split_sizes(size: str, sizes: tuple[int, int, int] | None) -> tuple[int, int, int]:
    """Explicit ``sizes``, else those of the named ``size``.

    Raises:
        ValueError: an unknown ``size``.
    """
    if sizes is not None:
        return sizes
    if size not in SPLIT_SIZES:
        raise ValueError(f"ListOps size {size!r} is unknown; use one of {sorted(SPLIT_SIZES)}.")
    return SPLIT_SIZES[size]


def _clear_for_writing(out: Path) -> None:
    """Create ``out``; drop leftovers and the manifest of an earlier (maybe cut short) run."""
    out.mkdir(parents=True, exist_ok=True)
    state, why = folder_state(out)
    if state in ("incomplete", "stale"):
        print(f"{out} is {state} ({why}); regenerating it.", file=sys.stderr)
    for left in leftovers(out):
        left.unlink()
    (out / MANIFEST).unlink(missing_ok=True)


def _write_splits(
    out: Path, trees: list[tuple[str, int, int]], sizes: tuple[int, int, int]
) -> dict[str, Path]:
    """Write the three splits under temporary names, then rename all of them."""
    bounds = np.cumsum((0, *sizes))
    paths: dict[str, Path] = {}
    tmp_paths: dict[str, Path] = {}
    for i, split in enumerate(SPLIT_NAMES):
        paths[split] = out / f"basic_{split}.tsv"
        tmp_paths[split] = out / f".basic_{split}.tsv.tmp-{os.getpid()}"
        write_tsv(tmp_paths[split], trees[bounds[i] : bounds[i + 1]])
    for split in SPLIT_NAMES:
        os.replace(tmp_paths[split], paths[split])
    return paths


def leftovers(root: Path) -> list[Path]:
    """Temporary split files an interrupted generation leaves behind."""
    return sorted(root.glob(".basic_*.tsv.tmp-*"))


def folder_state(root: Path) -> tuple[str, str]:
    """``(state, why)``: ``absent | official | incomplete | stale | complete``.

    Complete: a manifest of this generator version and no leftovers. Official: all three files,
    no manifest, no leftovers (the LRA release has no manifest). Incomplete: leftovers, or
    some but not all of the files, or all three files listed by a manifest of another size.
    """
    names = [f"basic_{s}.tsv" for s in SPLIT_NAMES]
    present = [n for n in names if (root / n).is_file()]
    left = leftovers(root)
    manifest = read_manifest(root)
    if left:
        return "incomplete", f"temporary {left[0].name} is left from a stopped run"
    if manifest is not None:
        if manifest.get("generator") != GENERATOR or manifest.get("version") != GENERATOR_VERSION:
            return "stale", f"it was made by generator version {manifest.get('version')}"
        if len(present) < len(names):
            return "incomplete", f"{sorted(set(names) - set(present))[0]} is missing"
        return "complete", ""
    if not present:
        return "absent", ""
    if len(present) < len(names):
        return "incomplete", f"{sorted(set(names) - set(present))[0]} is missing"
    return "official", ""
