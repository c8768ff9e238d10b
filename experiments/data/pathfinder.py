"""Pathfinder and Path-X: are the two markers joined by a path? Binary, one token per pixel.

Official layout (also what :mod:`experiments.data.pathfinder_generator` writes)::

    pathfinder{32,64,128,256}/<difficulty>/imgs/<b>/sample_<i>.png
    pathfinder{32,64,128,256}/<difficulty>/metadata/<b>.npy

Despite the name, ``metadata/<b>.npy`` is TEXT: one line per image, space separated,
``imgs/43 sample_0.png 0 0 1.8 6 2.0 5 1.5 2 1`` = subdir, file, index, LABEL, ... (the label
is field 4, index 3). Empty image files (the release has
``pathfinder32/curv_baseline/imgs/0/sample_172.png``) are skipped with one warning.
Images are shuffled with ``split_seed`` and split 80/10/10. Path-X is the same at 128 px.
A generated folder is read only when its ``manifest.json`` (written last by the generator)
exists, agrees with the task's resolution and difficulty and, on a cache miss, with the files'
checksum; a folder cut short is refused (or, with ``task.generate``, finished or regenerated).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from experiments.data.cache import SplitArrays
from experiments.data.config import PathfinderTaskConfig, PathXTaskConfig
from experiments.data.datamodule import SPLITS, LRADataModule
from experiments.data.errors import DataCorruptError, DataNotFoundError
from experiments.data.manifest import read_manifest, verify
from experiments.data.pathfinder_folder import data_files, folder_state
from experiments.data.pixels import PIXEL_VOCAB_SIZE
from experiments.data.registry import register_task


def metadata_files(root: Path) -> list[Path]:
    """``root/metadata/*.npy`` sorted by batch number (then name)."""
    files = list((root / "metadata").glob("*.npy"))
    return sorted(files, key=lambda p: (int(p.stem) if p.stem.isdigit() else 1 << 62, p.name))


def read_metadata(path: Path) -> list[tuple[str, str, int, int]]:
    """``(subdir, file, label, line_no)`` of each line of one metadata file.

    Raises:
        DataCorruptError: On a line with fewer than 4 fields or a label not 0/1.
    """
    rows = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 4 or fields[3] not in ("0", "1"):
                raise DataCorruptError(
                    path, "expected 'subdir file index label ...' with label 0 or 1", line_no
                )
            rows.append((fields[0], fields[1], int(fields[3]), line_no))
    return rows


def load_png(path: Path, resolution: int, meta: Path, line_no: int) -> np.ndarray:
    """One grayscale image ``(resolution * resolution,)`` uint8.

    Raises:
        DataCorruptError: When the image is missing, unreadable or of the wrong size (names
            the image and the metadata file and line that list it).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("L"), dtype=np.uint8)  # (H, W)
    except (OSError, UnidentifiedImageError) as exc:
        raise DataCorruptError(meta, f"image {path} cannot be read ({exc})", line_no) from exc
    if pixels.shape != (resolution, resolution):
        raise DataCorruptError(
            meta,
            f"image {path} is {pixels.shape}, expected ({resolution}, {resolution})",
            line_no,
        )
    return pixels.reshape(-1)


def split_indices(n: int, fractions: tuple[float, float, float], seed: int) -> list[np.ndarray]:
    """Seeded permutation of ``range(n)`` cut into train / val / test by ``fractions``."""
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(n * fractions[0]))
    n_val = int(round(n * fractions[1]))
    return [perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :]]


@register_task("pathfinder", PathfinderTaskConfig, order=4)
@register_task("pathx", PathXTaskConfig, order=5)
class PathfinderDataModule(LRADataModule):
    """Pathfinder at ``cfg.resolution`` (2 classes, 256 pixel ids, ``resolution**2`` tokens)."""

    vocab_size = PIXEL_VOCAB_SIZE
    num_classes = 2
    token_dtype = np.uint8
    fixed_length = True

    def how_to_get(self) -> str:
        """Command that generates this folder."""
        c = self.cfg
        return (
            f"python -m experiments.data {c.name} --resolution {c.resolution} "
            f"--difficulty {c.difficulty} --out {self.root} (or untar lra_release.gz), "
            "or set task.generate"
        )

    def prepare_data(self) -> None:
        """Generate the images when the folder is missing and ``cfg.generate`` is set."""
        gen = self.cfg.generate
        if gen is None or folder_state(self.root)[0] in ("official", "complete"):
            return
        from experiments.data.pathfinder_generator import generate_pathfinder

        generate_pathfinder(
            self.root,
            resolution=self.cfg.resolution,
            difficulty=self.cfg.difficulty,
            num_images=gen.image_count(),
            seed=gen.seed,
            workers=gen.workers,
        )

    def source_files(self) -> list[Path]:
        """The metadata files (images are keyed through them).

        Raises:
            DataNotFoundError: When there are none.
            DataCorruptError: When a generated folder is incomplete, of an older generator
                version, or its manifest names another resolution or difficulty.
        """
        self._check_generated()
        files = metadata_files(self.root)
        if not files:
            raise DataNotFoundError(
                self.root / "metadata",
                "metadata/<b>.npy text files listing imgs/<b>/sample_<i>.png",
                self.how_to_get(),
            )
        return files

    def _check_generated(self) -> None:
        state, why = folder_state(self.root)
        if state in ("incomplete", "stale"):
            raise DataCorruptError(
                self.root,
                f"the generated folder is {state} ({why}); finish or regenerate it "
                f"with: {self.how_to_get()}",
            )
        manifest = read_manifest(self.root) if state == "complete" else None
        params = (manifest or {}).get("params", {})
        for key in ("resolution", "contour_length"):
            want = self.cfg.resolution if key == "resolution" else _contour(self.cfg.difficulty)
            if manifest is not None and params.get(key) != want:
                raise DataCorruptError(
                    self.root / "manifest.json",
                    f"the folder was generated with {key}={params.get(key)!r} but the task "
                    f"asks for {want!r}; point task.path at the right folder",
                )

    def build_splits(self) -> SplitArrays:
        """Read every listed image, skip empty files, split 80/10/10 (seeded).

        Empty files are found first (by size), the kept rows are shuffled and split, and each
        image is read straight into its split's array: peak memory is one copy of the pixels.
        """
        from tqdm.auto import tqdm

        if folder_state(self.root)[0] == "complete":
            verify(self.root, data_files(self.root), self.how_to_get())
        rows = [(meta, *row) for meta in self.source_files() for row in read_metadata(meta)]
        is_empty = [_is_empty(self.root / r[1] / r[2]) for r in rows]
        empty = [r for r, e in zip(rows, is_empty) if e]
        if empty:
            names = [str(self.root / r[1] / r[2]) for r in empty]
            warnings.warn(
                f"Skipped {len(names)} empty image file(s) under {self.root}: "
                f"{', '.join(names[:3])}{' ...' if len(names) > 3 else ''}",
                stacklevel=2,
            )
            rows = [r for r, e in zip(rows, is_empty) if not e]
        res = self.cfg.resolution
        bar = tqdm(
            total=len(rows), desc=f"read {self.cfg.name} images", unit="img", mininterval=1.0
        )
        out: SplitArrays = {}
        for split, idx in zip(
            SPLITS, split_indices(len(rows), self.cfg.split_fractions, self.cfg.split_seed)
        ):
            pixels = np.empty((len(idx), res * res), dtype=np.uint8)  # (n, res * res)
            labels = np.empty(len(idx), dtype=np.int64)
            for j, i in enumerate(idx):
                meta, sub, name, label, line_no = rows[i]
                pixels[j] = load_png(self.root / sub / name, res, meta, line_no)
                labels[j] = label
                bar.update()
            offsets = np.arange(len(idx) + 1, dtype=np.int64) * res * res
            out[split] = {"tokens": pixels.reshape(-1), "offsets": offsets, "labels": labels}
        bar.close()
        return out


def _contour(difficulty: str) -> int:
    """Contour length of a difficulty folder name (``curv_baseline`` is 6)."""
    return 6 if difficulty == "curv_baseline" else int(difficulty.rsplit("_", 1)[-1])


def _is_empty(path: Path) -> bool:
    """Whether ``path`` is an existing file of zero bytes."""
    return path.is_file() and path.stat().st_size == 0
