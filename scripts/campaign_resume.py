"""Carry unfinished runs between machines: pack their folders (with checkpoints) and restore them.

``resume.tar`` (uncompressed: checkpoints do not compress) holds ``resume.json`` (what is in it
and what was left out) and ``runs/<name>/<run>/...``: every file of each resumable run folder
that ``train.py resume=<folder>`` reads or appends to (``checkpoints/last.ckpt``, the
best-on-validation checkpoint the final test loads, ``metrics.json``, ``campaign.json``,
``.hydra/``, ``csv/``, the logs). Runs are added in the order given while the archive stays
under a size cap; a run that does not fit is left out whole.

Size bound: a tar member takes a 512-byte header, at most two more for a long-name (pax)
header, and its data rounded up to 512 bytes; the archive ends with at most one 10 KiB
record of padding. Counting every member at ``3 * 512 + ceil(size / 512) * 512`` bytes keeps
the file under the cap.

Every file is read whole before it is written, so a run that is still training (its logs
rewritten, its checkpoint renamed into place) cannot tear the archive.

Restoring refuses an archive with a member that is not a plain file or folder, or whose name
is absolute, climbs out with ``..``, or lies outside ``runs/<name>/<run>/``. A run folder is
replaced only when the archive's checkpoint is further on (a higher step) than the one in
place, and never over a final (completed or failed) record.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from campaign_plan import SIDE_CAR, read_json

RESUME_ARCHIVE = "resume.tar"
MANIFEST = "resume.json"
MANIFEST_ROOM = 64 * 1024
"""Bytes kept for the manifest (a line per run folder)."""
LAST = Path("checkpoints") / "last.ckpt"
RESUMABLE = ("incomplete", "running", "interrupted")
"""Statuses ``train.py resume=`` continues (``experiments.resume.RESUMABLE``)."""
FINAL = ("completed", "failed")
BLOCK = 512
END_SLACK = 20 * BLOCK
"""Two zero blocks closing the archive, padded to tarfile's 10 KiB record."""


KeyOf = Callable[[dict], tuple]
"""The key of a record (``metrics.json`` as a dict) that identifies its run."""


class RestoreError(ValueError):
    """An archive that cannot be restored; the message is one sentence."""


def continuable(run_dir: Path) -> bool:
    """Whether the record in ``run_dir`` may be continued (checkpoint aside).

    Status :data:`RESUMABLE`, or ``failed`` when the campaign itself terminated the run at the
    deadline (the last segment of its ``campaign.json`` says ``killed``).
    """
    status = (read_json(run_dir / "metrics.json") or {}).get("status")
    segments = (read_json(run_dir / SIDE_CAR) or {}).get("segments") or [{}]
    return status in RESUMABLE or (status == "failed" and segments[-1].get("killed") is True)


def member_bytes(size: int) -> int:
    """Upper bound of the bytes one tar member of ``size`` data bytes takes."""
    return 3 * BLOCK + -(-size // BLOCK) * BLOCK


def folder_files(run_dir: Path) -> list[Path]:
    """Regular files below ``run_dir`` to carry.

    No links, no half-written ``*.tmp`` files, and of ``checkpoints/best-*.ckpt`` only the
    newest (the best so far; after a move to another folder Lightning no longer deletes the
    earlier ones).
    """
    files = [
        p
        for p in run_dir.rglob("*")
        if p.is_file() and not p.is_symlink() and not p.name.endswith(".tmp")
    ]
    best = [p for p in files if p.parent == run_dir / "checkpoints" and p.name.startswith("best")]
    stale = set(sorted(best, key=lambda p: (_mtime(p), p.name))[:-1])
    return sorted(p for p in files if p not in stale)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def mib(n: int) -> str:
    """``n`` bytes in MiB, one decimal."""
    return f"{n / 2**20:.1f} MiB"


@dataclass
class ResumePack:
    """What :func:`pack_resume` put into the archive and what it left out."""

    packed: list[str] = field(default_factory=list)
    too_large: dict[str, int] = field(default_factory=dict)  # run folder -> bytes
    size: int = 0


def _snapshot(run_dir: Path) -> dict[str, tuple[bytes, float]] | None:
    """The files of ``run_dir`` read now, with their mtimes (None when ``last.ckpt`` has gone)."""
    data: dict[str, tuple[bytes, float]] = {}
    for path in folder_files(run_dir):
        try:
            mtime = path.stat().st_mtime
            data[path.relative_to(run_dir).as_posix()] = (path.read_bytes(), mtime)
        except FileNotFoundError:  # removed meanwhile (an older best checkpoint)
            continue
    return data if LAST.as_posix() in data else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    info.mtime = int(time.time() if mtime is None else mtime)
    tar.addfile(info, io.BytesIO(data))


def pack_resume(output_dir: Path, run_dirs: list[Path], archive: Path, cap: int) -> ResumePack:
    """Write ``run_dirs`` (folders below ``output_dir``) into ``archive``, at most ``cap`` bytes.

    Folders are taken in order; one whose files would take the archive over ``cap`` is left
    out (listed in ``too_large`` with its size) and later, smaller ones may still fit. The
    archive is written beside its final name and renamed over it.
    """
    result = ResumePack()
    archive.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".resume-", suffix=".tmp", dir=archive.parent)
    os.close(fd)
    used = member_bytes(MANIFEST_ROOM) + END_SLACK  # the manifest and the end of the archive
    try:
        with tarfile.open(tmp, "w") as tar:
            for run_dir in run_dirs:
                rel = run_dir.relative_to(output_dir).as_posix()
                stat_size = sum(member_bytes(_size(p)) for p in folder_files(run_dir))
                if used + stat_size > cap:
                    result.too_large[rel] = stat_size
                    continue
                files = _snapshot(run_dir)
                if files is None:
                    continue
                need = sum(member_bytes(len(b)) for b, _ in files.values())
                if used + need > cap:
                    result.too_large[rel] = need
                    continue
                for name, (data, mtime) in files.items():
                    _add(tar, f"runs/{rel}/{name}", data, mtime)
                used += need
                result.packed.append(rel)
            manifest = {"runs": result.packed, "too_large_bytes": result.too_large}
            _add(tar, MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
        os.replace(tmp, archive)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    result.size = archive.stat().st_size
    return result


def checkpoint_step(run_dir: Path) -> int:
    """The optimizer step of ``run_dir/checkpoints/last.ckpt`` (else the record's ``steps``).

    The checkpoint is read with ``weights_only=True`` (no code from the archive runs) and
    memory-mapped, so a large one costs little.
    """
    try:
        import torch

        ckpt = torch.load(run_dir / LAST, map_location="cpu", mmap=True, weights_only=True)
        return int(ckpt["global_step"])
    except Exception:  # noqa: BLE001 - unreadable or not a Lightning checkpoint: use the record
        return int((read_json(run_dir / "metrics.json") or {}).get("steps") or 0)


def _check_members(tar: tarfile.TarFile) -> None:
    """Refuse the whole archive if any member is unsafe or outside ``runs/<name>/<run>/``."""
    for m in tar.getmembers():
        parts = PurePosixPath(m.name).parts
        where = f"member '{m.name}'"
        if not (m.isfile() or m.isdir()):
            raise RestoreError(f"{where} is a link or device, not a plain file or folder")
        if m.name.startswith("/") or PurePosixPath(m.name).is_absolute():
            raise RestoreError(f"{where} has an absolute path")
        if ".." in parts:
            raise RestoreError(f"{where} climbs out of the archive with '..'")
        inside = parts[:1] == ("runs",) and (len(parts) >= 4 or m.isdir())
        if not (inside or (m.name == MANIFEST and m.isfile())):
            raise RestoreError(f"{where} lies outside runs/<name>/<run>/")


def _verdict(src: Path, dest: Path, done: set[tuple], key_of: KeyOf) -> tuple[str | None, int]:
    """Why ``src`` must not replace ``dest`` (None: restore it) and the archive's step."""
    data = read_json(src / "metrics.json") or {}
    if not ((src / LAST).is_file() and continuable(src)):
        return f"status {data.get('status')}, no resumable checkpoint", 0
    if key_of(data) in done:
        return "a completed record of this run exists", 0
    step = checkpoint_step(src)
    if dest.exists():
        here = read_json(dest / "metrics.json") or {}
        if here.get("status") in FINAL and not continuable(dest):
            return f"{dest} holds a {here['status']} record", step
        if (dest / LAST).is_file():
            old = checkpoint_step(dest)
            if old >= step:
                return f"{dest} is already at step {old} (archive: step {step})", step
    return None, step


def restore(
    archive: Path, output_dir: Path, done: set[tuple], key_of: KeyOf
) -> tuple[list[str], list[str]]:
    """Extract the run folders of ``archive`` into ``output_dir/<name>/<run>/``.

    Args:
        archive: A ``resume.tar`` (plain or compressed).
        output_dir: The plan's run folder root.
        done: Keys of completed records; a run with one is not restored.
        key_of: The key of a record (``metrics.json`` as a dict).

    Returns:
        ``(restored, messages)``: one line per folder restored (with its step) and one per
        folder left as it was.

    Raises:
        RestoreError: not a tar archive, or an unsafe member (nothing is extracted then).
    """
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as err:
        raise RestoreError(f"{archive} is not a readable tar archive") from err
    restored: list[str] = []
    messages: list[str] = []
    output_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".restore-", dir=output_dir))
    try:
        with tar:
            try:
                _check_members(tar)
                tar.extractall(stage, filter="data")
            except (tarfile.TarError, EOFError, zlib.error) as err:
                raise RestoreError(f"{archive} is a damaged tar archive") from err
        for src in sorted(p for p in stage.glob("runs/*/*") if p.is_dir()):
            rel = src.relative_to(stage / "runs")
            dest = output_dir / rel
            reason, step = _verdict(src, dest, done, key_of)
            if reason is not None:
                messages.append(f"kept {rel.as_posix()}: {reason}")
                continue
            if dest.exists():
                os.replace(dest, stage / f"replaced-{uuid.uuid4().hex}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
            restored.append(f"{rel.as_posix()} at step {step}")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return restored, messages
