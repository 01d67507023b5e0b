"""Build the local JVM's class-data archive: python -m b3_quotes.deploy.class_archive

A JVM that starts with a class-data archive (Java's AppCDS) maps the classes a run loads, parsed
and verified once, instead of reading them from Spark's jars again: on this project's 2-core
machine a JVM's start and first jobs went from 12.0 s to 6.3 s, and from 14.4 to 8.2 CPU-seconds.

`make` builds it once, into the venv (b3_quotes/local_mode/spark.py CLASS_ARCHIVE), by running the demo's
scrape of the bundled sample in a temporary lake with a JVM told to write the classes it loaded
when it exits. The JVM writes to a temporary name; the archive is renamed into place only after
the JVM has exited cleanly, as a JVM given a truncated archive dies at its start. A JVM of another
Java, or one whose Spark jars changed since, finds the archive does not match and runs without it.
Never fatal: when it cannot be built (no Java, a read-only venv) it says why and exits 0.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from b3_quotes.local_mode.spark import CLASS_ARCHIVE, find_java, jvm_options, local_spark

JVM_EXIT_WAIT_S = 120


def train(archive_at_exit: Path, workdir: Path) -> int:
    """The demo's scrape in `workdir` with a JVM that writes its classes to `archive_at_exit` at
    exit; returns once that JVM has exited, with its exit code."""
    from pyspark import SparkContext

    from scraper.scraper_upload import main as scrape

    # Only this folder: no .env, no bucket, no lake of the user's.
    os.environ.update({"ENV_FILE": str(workdir / "no.env"), "BUCKET": "", "LAKE_DIR": str(workdir / "lake")})
    spark = local_spark("b3-quotes-class-archive", java_options=jvm_options(archive_at_exit=archive_at_exit))
    jvm: subprocess.Popen = SparkContext._gateway.proc  # type: ignore[union-attr]  # the JVM pyspark started
    try:
        said = io.StringIO()
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            code = scrape(["--source", "sample", "--lake-dir", str(workdir / "lake")])
        if code != 0:
            last = said.getvalue().strip().splitlines()[-1:] or [""]
            raise RuntimeError(f"the sample scrape exited {code}: {last[0]}")
        spark.stop()
        assert jvm.stdin is not None
        jvm.stdin.close()  # the gateway exits when its stdin closes; the JVM then writes the archive
        return jvm.wait(JVM_EXIT_WAIT_S)
    finally:
        if jvm.poll() is None:  # failed or timed out: a JVM left to exit later would write the archive then
            jvm.kill()
            jvm.wait()


def build(archive: Path | None = None) -> str:
    """Build `archive` (CLASS_ARCHIVE by default, replacing any); returns what was done, in one line."""
    archive = archive or CLASS_ARCHIVE
    if find_java() is None:
        return "no Java: the local JVM will run without a class archive"
    archive.parent.mkdir(parents=True, exist_ok=True)
    for stale in archive.parent.glob(f".{archive.name}.*.tmp"):  # an earlier build's, killed mid-way
        stale.unlink(missing_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="b3-class-archive-") as workdir:
        partial = archive.with_name(f".{archive.name}.{os.getpid()}.tmp")
        try:
            code = train(partial, Path(workdir))
            if code != 0 or not partial.is_file():
                return f"the training JVM exited {code} without an archive: the local JVM will run without one"
            with partial.open("rb") as written:
                os.fsync(written.fileno())
            partial.replace(archive)
        finally:
            partial.unlink(missing_ok=True)
    return f"class archive {archive} built in {time.monotonic() - started:.0f} s ({archive.stat().st_size >> 20} MB)"


def main() -> int:
    try:
        print(build(), flush=True)
    except Exception as exc:  # noqa: BLE001 - never fatal: Spark runs without it, only slower
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        print(f"class archive not built ({reason}): the local JVM will run without one", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
