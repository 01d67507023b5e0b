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
    """`kind` is `missing` or `unreadable`; `key` the file's key in the lake."""

    def __init__(self, kind: str, key: str, reason: str) -> None:
        self.kind, self.key, self.reason = kind, key, " ".join(reason.split())
        super().__init__(f"{_MARK}|{kind}|{key}|{self.reason}")

    @property
    def message(self) -> str:
        """For people: `raw/quotes/dt=.../x.parquet is unreadable: <reason>` (str() is the marked form)."""
        return f"{self.key} is {self.kind}: {self.reason}" if self.reason else f"{self.key} is {self.kind}"


@contextlib.contextmanager
def lake_file_errors() -> Iterator[None]:
    """Re-raise a Spark job's failure caused by a LakeFileError in a task as that LakeFileError."""
    try:
        yield
    except LakeFileError:
        raise
    except Exception as exc:
        found = _PATTERN.search(str(exc))
        if found is None:
            raise
        raise LakeFileError(*found.groups()) from None
