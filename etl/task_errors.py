"""A lake file that a Spark task could not use, named to the driver in one line.

A task's exception reaches the driver as Spark's error, whose text holds the task's
traceback; LakeFileError writes one marked line into it, and `lake_file_errors` turns the
driver's error back into the LakeFileError it carries.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

_MARK = "b3-lake-file-error"
_PATTERN = re.compile(rf"{_MARK}\|(\w+)\|([^|\n]*)\|([^\n]*)")


class LakeFileError(RuntimeError):
    """`kind` is `missing` or `unreadable` (`key`: the file's key in the lake), or `unwritable`
    (`key`: the path a write failed on, `reason`: `errno N: text`)."""

    def __init__(self, kind: str, key: str, reason: str) -> None:
        self.kind, self.key, self.reason = kind, key, " ".join(reason.split())
        super().__init__(f"{_MARK}|{kind}|{key}|{self.reason}")

    @property
    def message(self) -> str:
        """For people: `raw/quotes/dt=.../x.parquet is unreadable: <reason>` (str() is the marked form)."""
        return f"{self.key} is {self.kind}: {self.reason}" if self.reason else f"{self.key} is {self.kind}"


@contextlib.contextmanager
def writes_named() -> Iterator[None]:
    """In a task: an OSError of a write (full disk, permission denied) as a LakeFileError the driver reads."""
    try:
        yield
    except OSError as exc:
        raise LakeFileError("unwritable", str(exc.filename or ""), f"errno {exc.errno or 0}: {exc.strerror or exc}") \
            from exc


@contextlib.contextmanager
def lake_file_errors() -> Iterator[None]:
    """Re-raise a Spark job's failure caused by a LakeFileError in a task as that LakeFileError,
    or, for a failed write, as the OSError it was (errno and path kept)."""
    try:
        yield
    except LakeFileError:
        raise
    except Exception as exc:
        found = _PATTERN.search(str(exc))
        if found is None:
            raise
        kind, key, reason = found.groups()
        if kind == "unwritable":
            code, _, text = reason.removeprefix("errno ").partition(": ")
            raise OSError(int(code) if code.isdigit() else 0, text, key or None) from None
        raise LakeFileError(kind, key, reason) from None
