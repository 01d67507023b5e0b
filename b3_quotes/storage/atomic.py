"""A local file that appears whole or not at all: standard library only (packaging uses it without pyarrow)."""

from __future__ import annotations

import contextlib
import errno as errno_codes
import os
import uuid
from collections.abc import Callable

# Temporary names are hidden (Spark, pyarrow, DuckDB's hive reader and crawlers skip names
# starting with `.`) and do not end in .parquet (DuckDB's `*.parquet` glob matches hidden
# names too). A run killed mid-write leaves at most such a file; the next run sweeps them.
TEMP_PREFIX, TEMP_SUFFIX = ".tmp-", ".partial"


def replace_atomically(path: str, write: Callable[[str], None]) -> None:
    """Run `write(temporary_path)` beside `path`, then rename the result over `path`.

    The rename is atomic within a folder: a reader, or a run killed at any moment, sees the old
    file or the new one. The file gets the mode a new file gets under the user's umask. An error
    names the file (a full disk says nothing of which one otherwise).
    """
    folder, name = path.rsplit("/", 1)
    temp = f"{folder}/{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}{TEMP_SUFFIX}"
    try:
        os.makedirs(folder, exist_ok=True)
        write(temp)
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError) and not getattr(exc, "filename", None):
            code = exc.errno or _errno_in(str(exc))
            raise OSError(code, os.strerror(code) if code else str(exc), path) from exc
        raise


def _errno_in(message: str) -> int:
    """pyarrow's I/O errors carry the errno in their text only (`[errno 28] No space left`)."""
    for code in (errno_codes.ENOSPC, errno_codes.EACCES, errno_codes.EROFS, errno_codes.EDQUOT):
        if f"errno {code}]" in message.lower() or os.strerror(code) in message:
            return code
    return 0
