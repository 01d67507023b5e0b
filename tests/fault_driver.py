"""Run the scraper in a child process with a fault injected at a named point.

    python tests/fault_driver.py POINT [scraper arguments...]

POINT is one of:
  raw-put:N        die (os._exit) while writing the N-th raw object, half of it on disk
  before-refine    die after the manifest is written, before the refine starts
  refine-daily     die after the daily table is written, before the monthly one
  refine-mark      die after both tables are written, before the run is marked processed
  refine-step:N    die right after the N-th year of a refine is committed (a Glue timeout between steps)
  cotahist-file:N  die as the N-th of several COTAHIST files is about to be read
  fill-disk        fill the lake's file system just before the refine, then refine
  none             no fault
A process killed at a point exits KILLED; the caller checks what it left behind.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

KILLED = 77


def _die() -> None:
    sys.stdout.flush()
    os._exit(KILLED)  # no clean-up, no finally blocks: as close to SIGKILL as Python gets


def _kill_during_raw_put(number: int) -> None:
    import tempfile

    from b3_quotes.storage import Lake

    real_put = Lake.write_bytes
    calls = {"n": 0}

    def write_bytes(self: Lake, key: str, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == number:  # half the bytes reach the disk, then the process dies
            target = Path(self.root) / key
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, _ = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
            os.write(fd, data[: len(data) // 2])
            _die()
        real_put(self, key, data)

    Lake.write_bytes = write_bytes  # type: ignore[method-assign]


def _wrap(module: object, name: str, before: bool, on_call: int = 1) -> None:
    real = getattr(module, name)
    calls = {"n": 0}

    def wrapper(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        number = calls["n"]  # this call's number: the job runs its writes in threads at once
        if before and number == on_call:
            _die()
        result = real(*args, **kwargs)
        if not before and number == on_call:
            _die()
        return result

    setattr(module, name, wrapper)


def _fill_disk_before_refine() -> None:
    import b3_quotes.local_mode.trigger as local_run

    real = local_run.trigger_locally

    def fill_then_refine(lake_dir: Path, *args: object, **kwargs: object) -> object:
        with open(lake_dir / "filler.bin", "wb") as filler:
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
        return real(lake_dir, *args, **kwargs)  # type: ignore[arg-type]

    local_run.trigger_locally = fill_then_refine  # type: ignore[assignment]


def _no_spark_warm_up() -> None:
    """A run killed before its refine never uses Spark: its warm-up (the JVM started in the
    background while the scrape runs) would only cost the test a JVM's start. What the kill leaves
    in the lake is the scraper's alone."""
    from b3_quotes.runtime import LocalRuntime

    LocalRuntime.warm_up = lambda self: None  # type: ignore[method-assign]


def install(point: str) -> None:
    import b3_quotes.local_mode.trigger as local_run
    import etl.glue_job as glue_job
    import etl.refine as refine

    if point.startswith("raw-put:"):
        _no_spark_warm_up()
        _kill_during_raw_put(int(point.split(":")[1]))
    elif point == "before-refine":
        _no_spark_warm_up()
        _wrap(local_run, "trigger_locally", before=True)
    elif point == "refine-daily":
        _wrap(refine, "write_partitions", before=False, on_call=1)
    elif point == "refine-mark":
        _wrap(glue_job, "mark_processed", before=True)
    elif point.startswith("refine-step:"):
        _wrap(glue_job, "commit_step", before=False, on_call=int(point.split(":")[1]))
    elif point.startswith("cotahist-file:"):
        from scraper.sources import b3_cotahist

        _no_spark_warm_up()
        _wrap(b3_cotahist, "read_cotahist_bytes", before=True, on_call=int(point.split(":")[1]))
    elif point == "fill-disk":
        _fill_disk_before_refine()
    elif point != "none":
        raise SystemExit(f"unknown fault point {point!r}")


if __name__ == "__main__":
    install(sys.argv[1])
    from scraper import scraper_upload

    sys.exit(scraper_upload.main(sys.argv[2:]))
