"""Paths as written into run records: relative to the repository (or the runs root), never absolute.

A record names where a run lived (``run_dir``), the command that ran it and the config's
``paths``. An absolute path there would name the machine that made the record; these helpers
write every such path relative to the first of the repository root, the runs root or the
current directory that holds it. Readers never need the recorded paths: a record's folder is
where its ``metrics.json`` lies, so old records with absolute paths read the same.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository root (the folder that holds ``experiments/``)."""

PATH_KEYS = ("root_dir", "data_dir", "output_dir", "run_dir")
"""Keys of the config's ``paths`` group."""


def _roots(extra: Iterable[str | os.PathLike[str]]) -> list[Path]:
    return [REPO_ROOT, *(Path(r).absolute() for r in extra), Path.cwd()]


def portable_path(
    path: str | os.PathLike[str], roots: Iterable[str | os.PathLike[str]] = ()
) -> str:
    """``path`` relative to the repository root, one of ``roots`` or the current directory.

    A relative path is kept (normalised: ``./data`` is ``data``); an absolute one is written
    relative to the first of those folders that holds it, and as its last two components
    (``<name>/<run>``) when none does.
    """
    if not PurePath(path).is_absolute():
        return PurePath(os.path.normpath(path)).as_posix()
    absolute = Path(os.path.normpath(path))
    for root in _roots(roots):
        if absolute.is_relative_to(root):
            return absolute.relative_to(root).as_posix() or "."
    return PurePath(*absolute.parts[-2:]).as_posix()


def cwd_relative(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the current directory when it lies inside it, else unchanged.

    For paths that must still resolve in this process but end up in logs (a checkpoint
    handed to Lightning, which names it when it restores it).
    """
    absolute = Path(path).absolute()
    cwd = Path.cwd()
    return absolute.relative_to(cwd).as_posix() if absolute.is_relative_to(cwd) else str(path)


def recorded_path(recorded: str, roots: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """The folder a record's path names (the inverse of :func:`portable_path`).

    An absolute path (older records) is taken as it is; a relative one is looked up under
    the repository root, each of ``roots`` (e.g. the runs root) and the current directory,
    in that order; the first that exists wins, else the repository-relative one.
    """
    path = Path(recorded)
    if path.is_absolute():
        return path
    candidates = [root / path for root in _roots(roots)]
    return next((c for c in candidates if c.exists()), candidates[0])


def portable_argument(argument: str, roots: Iterable[str | os.PathLike[str]] = ()) -> str:
    """A command-line word with an absolute path (``key=/abs/x`` or ``/abs/x``) made portable."""
    key, sep, value = argument.rpartition("=")
    if sep and PurePath(value).is_absolute():
        return f"{key}={portable_path(value, roots)}"
    return portable_path(argument, roots) if PurePath(argument).is_absolute() else argument


def portable_command(argv: Sequence[str], roots: Iterable[str | os.PathLike[str]] = ()) -> str:
    """``python <argv...>`` with every absolute path made portable."""
    roots = list(roots)
    return " ".join(["python", *(portable_argument(a, roots) for a in argv)])


def portable_config(
    config: dict[str, Any] | None, roots: Iterable[str | os.PathLike[str]] = ()
) -> dict[str, Any] | None:
    """A copy of a resolved config whose ``paths`` values are portable."""
    if not isinstance(config, dict) or not isinstance(config.get("paths"), dict):
        return config
    roots = list(roots)
    paths = {
        key: portable_path(value, roots) if key in PATH_KEYS and isinstance(value, str) else value
        for key, value in config["paths"].items()
    }
    return {**config, "paths": paths}


INSTALL_PATTERNS = (
    (re.compile(r"/(?:[\w.+-]+/)*site-packages/"), "<site-packages>/"),
    (re.compile(r"/(?:[\w.+-]+/)*bin/(python[\d.]*)(?![\w.-])"), r"\1"),
    (re.compile(r"/(?:[\w.+-]+/)*(?=torch/csrc/)"), "<torch-source>/"),
)
"""Install locations that logs name (library files in warnings, the interpreter that ran a
command, torch's build tree in its C++ warnings), with what they are written as."""


def portable_text(text: str, roots: Iterable[str | os.PathLike[str]]) -> str:
    """``text`` with every ``<root>/`` prefix removed and a bare ``<root>`` written ``.``.

    For text files of a record (logs, Hydra's ``hydra.yaml``) whose machine's folders are
    known (the repository root, e.g. Hydra's ``runtime.cwd``). A root inside another root is
    left out, so a path below both is written relative to the outer one, as
    :func:`portable_path` writes it. Install locations (:data:`INSTALL_PATTERNS`) become
    ``<site-packages>/...``, a bare ``python3`` and ``<torch-source>/...``.
    """
    for pattern, replacement in INSTALL_PATTERNS:
        text = pattern.sub(replacement, text)
    absolute = {PurePath(os.fspath(r)) for r in roots if r and PurePath(os.fspath(r)).is_absolute()}
    outer = [r for r in absolute if not any(r != o and r.is_relative_to(o) for o in absolute)]
    for root in (r.as_posix() for r in outer if r.as_posix() != "/"):
        text = text.replace(root + "/", "")
        text = re.sub(re.escape(root) + r"(?![\w.-])", ".", text)
    return text


def make_files_portable(paths: Iterable[Path], roots: Iterable[str | os.PathLike[str]]) -> None:
    """Rewrite text files in place with :func:`portable_text` (unchanged files are not written).

    For the files a run folder holds besides ``metrics.json`` whose writers record absolute
    folders (Hydra's ``.hydra/hydra.yaml`` names the working and output folders).
    """
    roots = list(roots)
    for path in paths:
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            text = handle.read()  # line endings as they are (progress bars use \r)
        portable = portable_text(text, roots)
        if portable != text:
            with open(path, "w", encoding="utf-8", newline="") as handle:
                handle.write(portable)
