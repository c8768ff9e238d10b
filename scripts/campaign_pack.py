"""Pack run records (never checkpoints) into one tar.gz, and unpack them into ``results/runs``.

Layout inside the archive: ``runs/<name>/<run>/`` with ``metrics.json``, ``campaign.json``,
``train.log``, ``console.log``, ``hydra/*.yaml`` (Hydra's ``.hydra``) and ``csv/*`` (the CSV
logger's metrics), plus free-standing text files at the top (``ledger.txt``, ``data.log``).
The archive is written to a temporary name beside the target and renamed over it, so a reader
never sees half an archive under the final name.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from campaign_plan import read_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from experiments.portable import (  # noqa: E402
    make_files_portable,
    portable_config,
    portable_path,
)
from experiments.protocol import stale_reason  # noqa: E402

RECORD_FILES = ("metrics.json", "campaign.json", "train.log", "console.log")
HYDRA_FILES = ("config.yaml", "overrides.yaml", "hydra.yaml")
CSV_FILES = ("metrics.csv", "hparams.yaml")
TEXT_SUFFIXES = (".json", ".yaml", ".log", ".csv", ".txt")
"""Record files whose text may name folders of the machine that made them."""


def record_files(run_dir: Path) -> list[tuple[Path, str]]:
    """``(file, name in the run folder)`` of a run's record files that exist."""
    out = [(run_dir / f, f) for f in RECORD_FILES]
    out += [(run_dir / ".hydra" / f, f"hydra/{f}") for f in HYDRA_FILES]
    out += [(run_dir / "csv" / f, f"csv/{f}") for f in CSV_FILES]
    return [(p, n) for p, n in out if p.is_file()]


def run_dirs(output_dir: Path) -> list[Path]:
    """Run folders (``<output_dir>/<name>/<run>``) that hold a ``metrics.json``."""
    return sorted(p.parent for p in output_dir.glob("*/*/metrics.json"))


def _add_snapshot(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    """Add ``path`` as read now: a file rewritten meanwhile (a live run's logs) cannot tear it."""
    try:
        data = path.read_bytes()
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return
    info = tarfile.TarInfo(arcname)
    info.size, info.mode, info.mtime = len(data), 0o644, int(mtime)
    tar.addfile(info, io.BytesIO(data))


def pack(output_dir: Path, archive: Path, texts: dict[str, str] | None = None) -> int:
    """Write every run record below ``output_dir`` and ``texts`` into ``archive``.

    Returns:
        The archive's size in bytes.
    """
    archive.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pack-", suffix=".tmp", dir=archive.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            for name, text in (texts or {}).items():
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            for run_dir in run_dirs(output_dir):
                rel = run_dir.relative_to(output_dir)
                for path, name in record_files(run_dir):
                    _add_snapshot(tar, path, f"runs/{rel.as_posix()}/{name}")
        os.replace(tmp, archive)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return archive.stat().st_size


SOURCE_PACKAGES = ("spectrans", "experiments", "scripts")
"""The repository's top-level source folders: a traceback or warning that names one of their
files absolutely names the repository root of the machine."""

SOURCE_PATH = re.compile(
    r"(/[^\s'\"]*?)/(?:(?:" + "|".join(SOURCE_PACKAGES) + r")/[\w./-]*?\w\.py|train\.py)(?![\w.-])"
)


def machine_roots(run_dir: Path) -> list[str]:
    """Absolute folders of the machine that made a record: its repository root.

    Runs start in the repository root, so Hydra's ``runtime.cwd`` is that root. The harness
    writes ``hydra.yaml`` portable when a run ends, so the root is also read off the record's
    text files: any absolute path that ends in the run folder's own relative location
    (``metrics.json``'s ``run_dir``, e.g. ``runs/campaign/<name>/<run>``; a library warning
    that names the run's checkpoint folder gives ``<root>/runs/campaign/<name>/<run>/...``),
    and any absolute path to one of the repository's source files (``<root>/spectrans/...py``
    in a warning's traceback; paths inside ``site-packages`` are not the repository).
    """
    hydra = run_dir / "hydra" / "hydra.yaml"
    text = hydra.read_text(errors="replace") if hydra.is_file() else ""
    roots = [m for m in re.findall(r"^\s+cwd:\s*(/\S*)\s*$", text, re.MULTILINE) if m != "/"]
    clues = [SOURCE_PATH]
    relative = (read_json(run_dir / "metrics.json") or {}).get("run_dir")
    if isinstance(relative, str) and relative and not relative.startswith("/"):
        clues.append(re.compile(r"(/[^\s'\"]*?)/" + re.escape(relative.strip("/")) + r"(?![\w.-])"))
    for path in sorted(run_dir.rglob("*")):
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            text = path.read_text(errors="replace")
            for clue in clues:
                found = [r for r in clue.findall(text) if "site-packages" not in r]
                roots += [r for r in found if r not in roots]
    return roots


def make_portable(run_dir: Path) -> None:
    """Rewrite a record's text files so that they name no absolute folder of their machine.

    Paths below the machine's repository root (:func:`machine_roots`) become relative to it;
    the ``run_dir``, ``command`` and ``config.paths`` of ``metrics.json`` are made portable
    even when they lie outside it (``experiments.portable``).
    """
    roots = machine_roots(run_dir)
    texts = [p for p in sorted(run_dir.rglob("*")) if p.is_file() and p.suffix in TEXT_SUFFIXES]
    make_files_portable(texts, roots)
    record = run_dir / "metrics.json"
    data = read_json(record)
    if isinstance(data, dict):
        fixed = dict(data)
        if isinstance(fixed.get("run_dir"), str):
            fixed["run_dir"] = portable_path(fixed["run_dir"], roots)
        if isinstance(fixed.get("config"), dict):
            fixed["config"] = portable_config(fixed["config"], roots)
        if fixed != data:
            record.write_text(json.dumps(fixed, indent=2) + "\n")


def completed_keys(results_dir: Path) -> set[tuple]:
    """:func:`record_key` of every completed ``metrics.json`` below ``results_dir``.

    A preset run made before its preset changed (``stale_reason``) does not count: a run of
    the preset as it is now may join it.
    """
    keys = set()
    for path in results_dir.glob("**/metrics.json"):
        data = read_json(path)
        if data and data.get("status") == "completed" and stale_reason(data) is None:
            keys.add(record_key(data))
    return keys


def record_key(data: dict) -> tuple:
    """``(config.name, config.seed, config.trainer.max_steps)``: which planned run a record is."""
    cfg = data.get("config") or {}
    return (cfg.get("name"), cfg.get("seed"), (cfg.get("trainer") or {}).get("max_steps"))


def unpack(archive: Path, results_dir: Path) -> tuple[list[str], list[str]]:
    """Copy the completed records of ``archive`` into ``results_dir/<name>/<run>/``.

    Copied records name no absolute folder of the machine that made them
    (:func:`make_portable`).

    A record is refused when its folder already holds a completed ``metrics.json`` or when
    ``results_dir`` already has a completed record of the same preset, seed and steps.

    Returns:
        ``(copied, messages)``: the folders written, and one line per record not copied.
    """
    copied: list[str] = []
    messages: list[str] = []
    done = completed_keys(results_dir)
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        for record in sorted(Path(tmp, "runs").glob("*/*/metrics.json")):
            src = record.parent
            rel = src.relative_to(Path(tmp, "runs"))
            data = read_json(record) or {}
            status = data.get("status")
            dest = results_dir / rel
            if status != "completed":
                messages.append(f"skipped {rel}: status {status}, not completed")
            elif (read_json(dest / "metrics.json") or {}).get("status") == "completed":
                messages.append(f"refused {rel}: {dest} already holds a completed record")
            elif record_key(data) in done:
                messages.append(
                    f"refused {rel}: {results_dir} already has a completed record of "
                    f"{record_key(data)[0]} seed {record_key(data)[1]}"
                )
            else:
                shutil.copytree(src, dest, dirs_exist_ok=True)
                make_portable(dest)
                done.add(record_key(data))
                copied.append(str(dest))
    return copied, messages
