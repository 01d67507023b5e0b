"""Lake storage: the same keys (contract.layout) on a local folder or an S3 bucket; the local lake's lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from contract.layout import lake_root


class LakeStorage(Protocol):
    """Where raw objects are written; keys are relative to the lake root."""

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def describe(self, key: str) -> str: ...


TEMP_PREFIX = ".tmp-"


class LocalStorage:
    """A folder as the lake. Writes are atomic: a reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        # Dot-prefixed temp name: Spark, DuckDB and Glue crawlers all skip hidden files.
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            if exc.filename:
                raise
            raise OSError(exc.errno, exc.strerror, str(target)) from exc  # a full disk names no file: say which
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def describe(self, key: str) -> str:
        return str(self.root / key)

    def remove_temp_files(self, prefix: str) -> int:
        """Delete the hidden temporary files a killed writer left under `prefix`.

        Only safe while holding the lake's lock: then no writer of this lake is mid-file.
        """
        removed = 0
        for path in (self.root / prefix).rglob(f"{TEMP_PREFIX}*"):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
        return removed


class S3Storage:
    """An S3 bucket as the lake; a single PUT is atomic."""

    def __init__(self, bucket: str, s3_client: Any) -> None:
        self.bucket = bucket
        self.s3 = s3_client

    def put_bytes(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def describe(self, key: str) -> str:
        return f"{lake_root(self.bucket)}/{key}"


# --- one writer at a time on a local lake ------------------------------------------------------

LOCK_FILE = ".lake.lock"  # hidden: Spark, DuckDB and crawlers skip it
LOCK_POLL_S = 0.5
DEFAULT_LOCK_WAIT_S = 600.0


class LakeBusy(RuntimeError):
    """Another run held the lake's lock for longer than we were willing to wait."""


@contextlib.contextmanager
def lake_lock(lake_dir: Path, wait_s: float, log: Callable[[str], None] = print,
              what: str = "run") -> Iterator[None]:
    """Hold the local lake's lock: writing raw, refining and refreshing the catalog run one at a time.

    Two runs that refine the same partitions at once each keep the files they wrote and
    delete only the ones they saw, leaving duplicates; under this lock a second run waits
    (up to `wait_s`, saying so) and then sees the first one's files. The lock is an flock on
    a file in the lake: the kernel releases it when its holder dies, even by SIGKILL.
    """
    lake_dir.mkdir(parents=True, exist_ok=True)
    path = lake_dir / LOCK_FILE
    with open(path, "a+") as handle:
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _lock_holder(path)
                if time.monotonic() >= deadline:
                    raise LakeBusy(f"another run ({holder}) still holds {path} after {wait_s:g} s") from None
                if not told:
                    log(f"waiting for another run ({holder}) to finish with the lake {lake_dir} "
                        f"(up to {wait_s:g} s; LAKE_LOCK_WAIT_S sets it)")
                    told = True
                time.sleep(LOCK_POLL_S)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} {what} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _lock_holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown process"
    except OSError:
        return "unknown process"
