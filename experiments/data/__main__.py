"""Build LRA data: ``python -m experiments.data <task> [options]``.

ListOps and Pathfinder / Path-X are generated here (seeded, with progress bars); for text,
retrieval and image the command prints where the official files go and how to get them.

Examples::

    python -m experiments.data listops --size full --workers 2
    python -m experiments.data pathfinder --resolution 32 --difficulty curv_contour_length_14
    python -m experiments.data image            # prints where CIFAR-10 goes
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from experiments.data.config import parse_task_config
from experiments.data.registry import names

PATHFINDER_SIZES = {"full": 200_000, "small": 2_000, "tiny": 200}
INSTRUCTIONS = {
    "text": (
        "IMDB goes in {root}: either the Stanford tarball "
        "(https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz, untarred so that "
        "{root}/aclImdb/train/pos/*.txt exists), or the parquet files of the Hugging Face "
        "dataset stanfordnlp/imdb ({root}/**/train-*.parquet and test-*.parquet, columns "
        "text,label; needs pyarrow). With 'datasets' installed and the network up, "
        "task.source=hf reads stanfordnlp/imdb directly."
    ),
    "retrieval": (
        "AAN goes in {root}: new_aan_pairs.train.tsv, new_aan_pairs.eval.tsv, "
        "new_aan_pairs.test.tsv (no header; label id1 id2 text1 text2). They are in "
        "https://storage.googleapis.com/long-range-arena/lra_release.gz under "
        "lra_release/lra_release/tsv_data/ (tar xzf lra_release.gz)."
    ),
    "image": (
        "CIFAR-10 goes in {root}: the python pickles data_batch_1..5 and test_batch from "
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (tar xzf it in {parent}). "
        "With 'datasets' installed and the network up, task.source=hf reads uoft-cs/cifar10."
    ),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line options."""
    p = argparse.ArgumentParser(
        prog="python -m experiments.data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("task", choices=names())
    p.add_argument("--data-dir", default="data", help="LRA data root (default: data)")
    p.add_argument("--out", default=None, help="task folder (default: <data-dir>/<task path>)")
    p.add_argument("--size", choices=("full", "small", "tiny"), default="full")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--resolution", type=int, choices=(32, 64, 128, 256), default=None)
    p.add_argument(
        "--difficulty",
        default="curv_contour_length_14",
        choices=("curv_baseline", "curv_contour_length_9", "curv_contour_length_14"),
    )
    p.add_argument("--num-images", type=int, default=None, help="overrides --size")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = parse_args(argv)
    for name in ("num_images", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            print(f"{flag} {value} is not allowed: give a positive number.", file=sys.stderr)
            return 2
    try:
        return _run(args)
    except ValueError as exc:  # bad settings or a folder that cannot be written: one sentence
        print(exc, file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    extra = {}
    if args.task in ("pathfinder", "pathx"):
        extra = {"difficulty": args.difficulty}
        if args.resolution is not None:
            extra["resolution"] = args.resolution
    cfg = parse_task_config({"name": args.task, **extra})
    root = Path(args.out) if args.out else Path(args.data_dir) / cfg.path
    if args.task in INSTRUCTIONS:
        print(INSTRUCTIONS[args.task].format(root=root, parent=root.parent))
        return 0
    if args.task == "listops":
        from experiments.data.listops_generator import generate_listops

        rep = generate_listops(root, size=args.size, seed=args.seed, workers=args.workers)
        print(
            f"ListOps {rep.sizes} written to {root} in {rep.seconds:.1f} s "
            f"({rep.draws} draws, {100 * rep.accepted_fraction:.2f}% accepted)"
        )
        return 0
    from experiments.data.pathfinder_generator import generate_pathfinder

    n = args.num_images or PATHFINDER_SIZES[args.size]
    start = time.perf_counter()
    generate_pathfinder(
        root,
        resolution=cfg.resolution,
        difficulty=cfg.difficulty,
        num_images=n,
        seed=args.seed,
        workers=args.workers,
        progress=True,
    )
    secs = time.perf_counter() - start
    print(
        f"{n} Pathfinder-{cfg.resolution} images written to {root} in {secs:.1f} s "
        f"({n / secs / max(args.workers, 1):.0f} images/s per worker)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
