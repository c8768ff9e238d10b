"""Data errors that say what was looked for, what belongs there, and how to get it."""

from __future__ import annotations

import os


class DataError(Exception):
    """Base class of every LRA data error."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A file or folder the task needs is missing.

    The message is one sentence: the path looked for, what belongs there, and the command or
    source that provides it.
    """

    def __init__(self, path: str | os.PathLike[str], expected: str, how_to_get: str) -> None:
        self.path = os.fspath(path)
        self.expected = expected
        self.how_to_get = how_to_get
        super().__init__(
            f"LRA data not found at {self.path}: expected {expected}; get it with: {how_to_get}"
        )


class DataCorruptError(DataError, ValueError):
    """A row or image cannot be read; the message names the file and the line."""

    def __init__(self, path: str | os.PathLike[str], problem: str, line: int | None = None) -> None:
        self.path = os.fspath(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"Corrupt LRA data in {where}: {problem}.")
