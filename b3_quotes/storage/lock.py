"""The local lake's lock: one writer at a time (an flock, so the kernel frees it when its holder dies)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".lake.lock"  # hidden: Spark, DuckDB and crawlers skip it
LOCK_POLL_S = 0.5
logger = logging.getLogger(__name__)


class LakeBusy(RuntimeError):
    """Another run held the lake's lock for longer than we were willing to wait."""


@contextlib.contextmanager
def lake_lock(lake_dir: Path, wait_s: float, what: str = "run") -> Iterator[None]:
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
                    logger.info(f"waiting for another run ({holder}) to finish with the lake {lake_dir} "
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
