"""Fault injection on the whole local pipeline: kills, concurrent runs, a full disk, a read-only lake.

A kill and a fault met in Spark's tasks run the real scraper in a child process, a race one of its two runs
(tests/fault_driver.py injects the fault at a named point); the test then checks what is visible
in the lake, and that the next run converges to what a clean run gives. A full disk and a
read-only lake are real file systems (a small tmpfs) when the test may mount one, else the same
errors are injected; a fault met before Spark (a full disk while writing raw, a read-only lake)
runs in the test's process.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from b3_quotes.storage.lock import LOCK_FILE, lake_lock
from tests.conftest import REPO, SAMPLE_DIR, SETTINGS_VARIABLES
from tests.fault_driver import KILLED
from tests.helpers import KEYS, assert_equals_reference, expected_daily, read_table, run_scraper

pytestmark = pytest.mark.integration

DRIVER = REPO / "tests" / "fault_driver.py"
TICKERS = ["PETR4", "VALE3"]
START, END = "2020-03-02", "2020-03-13"  # ten sessions
ARGS = ["--source", "csv", "--csv-dir", str(SAMPLE_DIR), "--tickers", ",".join(TICKERS), "--start", START, "--end", END]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    env["PYTHONPATH"] = str(REPO)
    return env


def drive(point: str, lake: Path, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """The scraper in a child process with a fault at `point`; cwd is the lake's parent (no .env there)."""
    return subprocess.run([sys.executable, str(DRIVER), point, "--lake-dir", str(lake), *(args or ARGS)],
                          cwd=lake.parent, env=child_env(), capture_output=True, text=True, timeout=timeout_s)


def run_in_process(lake: Path, *args: str) -> int:
    return run_scraper(lake, *(args or ARGS))


def refined(lake: Path, table: str = "quotes_daily") -> pd.DataFrame:
    return read_table(lake, table).sort_values(KEYS[table]).reset_index(drop=True)


def assert_converged(lake: Path, tickers: list[str] = TICKERS, start: str = START, end: str = END) -> None:
    """Exactly one refined row per ticker and session, with the CSV's close; nothing left pending."""
    daily = refined(lake)
    expected = expected_daily(start, end, tickers)
    assert not daily.duplicated(["ticker", "dt"]).any()
    assert list(zip(daily["ticker"], daily["dt"])) == list(zip(expected["ticker"], expected["dt"]))
    assert daily["close_price"].tolist() == pytest.approx(expected["close_price"].tolist(), rel=1e-12)
    manifests = {p.name for p in (lake / "raw/_manifests").glob("*.json")}
    assert manifests <= {p.name for p in (lake / "refined/_processed_runs").iterdir()}


def assert_every_visible_file_readable(lake: Path, folders: tuple[str, ...] = ("raw",)) -> None:
    """What readers see (hidden names skipped, as Spark, DuckDB and crawlers do) reads whole."""
    for folder in folders:
        for path in (lake / folder).rglob("*"):
            if path.is_dir() or any(part.startswith((".", "_")) for part in path.relative_to(lake).parts[1:-1]):
                continue
            if path.name.startswith("."):
                continue
            if path.suffix == ".parquet":
                pq.read_table(path)
            elif path.suffix == ".json":
                json.loads(path.read_text())


# When a run stops on a failed Spark task, the JVM's exit can close an idle reused Python worker's
# socket while it waits for its next task, and PySpark's daemon prints that worker's EOFError.
# Known, rare (about one run in three of this test on 2 cores), and not the pipeline's message:
# it is set aside here, and only it; the one error line is still required.
_IDLE_WORKER_EOF = re.compile(r"Traceback \(most recent call last\):\n(?:  .*\n)*?.*pyspark/daemon\.py.*\n"
                              r"(?:  .*\n)*?EOFError\n?")


def assert_one_error_line(stderr: str) -> str:
    stderr = _IDLE_WORKER_EOF.sub("", stderr)
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr
    return lines[0]


# --- kills -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "committed"),
    [
        ("raw-put:1", False),        # the first day file, half written
        ("raw-put:6", False),        # half-way through the day files
        ("raw-put:11", False),       # the manifest itself, half written (10 day files before it)
        ("before-refine", True),     # committed, not refined yet
        ("refine-daily", True),      # daily table written, monthly not
        ("refine-mark", True),       # both tables written, run not marked processed
    ],
)
def test_kill_at_any_point_then_rerun_converges(tmp_path, point, committed):
    lake = tmp_path / "lake"
    killed = drive(point, lake)
    assert killed.returncode == KILLED, killed.stderr
    manifests = list((lake / "raw/_manifests").glob("*.json"))
    assert len(manifests) == (1 if committed else 0)
    assert_every_visible_file_readable(lake)
    half_written = list((lake / "raw").rglob(".tmp-*"))
    assert len(half_written) == (1 if point.startswith("raw-put") else 0)  # died mid-file, hidden
    with lake_lock(lake, 0):  # the dead run's lock went with it
        pass
    assert run_in_process(lake) == 0
    assert_converged(lake)
    assert not list((lake / "raw").rglob(".tmp-*"))  # swept under the lock by the next run
    raw_days = sorted(p.name for p in (lake / "raw/quotes").iterdir())
    assert len(raw_days) == 10 and all(len(list((lake / "raw/quotes" / d).glob("*.parquet"))) == 1 for d in raw_days)


# --- two runs at once ----------------------------------------------------------------------------


def test_two_concurrent_runs_give_exactly_the_rows_of_the_two_scrapes(tmp_path):
    """Run A in a child process, run B in this one (a thread): the lock is an flock, which two opens
    of the file contend for whether they are in two processes or one. The quiet-start check
    covers A only: B runs on the session's JVM."""
    lake = tmp_path / "lake"
    run_a = ["--source", "csv", "--csv-dir", str(SAMPLE_DIR), "--tickers", "PETR4,VALE3",
             "--start", "2020-03-02", "--end", "2020-03-13"]
    run_b = ["--source", "csv", "--csv-dir", str(SAMPLE_DIR), "--tickers", "VALE3,ITUB4",
             "--start", "2020-03-09", "--end", "2020-03-20"]
    output_a, said_b = tmp_path / "a.out", io.StringIO()
    codes: dict[str, int] = {}

    def in_this_process() -> None:
        codes["b"] = run_in_process(lake, *run_b)

    # Hold the lake until both runs are waiting for it: they then race for the same lock. Only
    # run B writes to this process's stdout and stderr meanwhile.
    thread = threading.Thread(target=in_this_process)
    with (output_a.open("w") as out_a, contextlib.redirect_stdout(said_b), contextlib.redirect_stderr(said_b)):
        child = None
        try:
            with lake_lock(lake, 0, what="the test"):
                child = subprocess.Popen([sys.executable, str(DRIVER), "none", "--lake-dir", str(lake), *run_a],
                                         cwd=tmp_path, env=child_env(), stdout=out_a, stderr=subprocess.STDOUT)
                thread.start()
                deadline = time.monotonic() + 120
                while not all("waiting for another run" in text for text in (output_a.read_text(), said_b.getvalue())):
                    assert time.monotonic() < deadline, [output_a.read_text(), said_b.getvalue()]
                    assert child.poll() is None and thread.is_alive(), [output_a.read_text(), said_b.getvalue()]
                    time.sleep(0.2)
            codes["a"] = child.wait(300)
        finally:  # a failed wait leaves neither run going into the next tests
            if child is not None and child.poll() is None:
                child.kill()
            if thread.ident is not None:
                thread.join(300)
    assert codes == {"a": 0, "b": 0}, [output_a.read_text(), said_b.getvalue()]
    said = output_a.read_text() + said_b.getvalue()
    assert "Traceback" not in said
    assert "Setting default log level" not in said and " WARN " not in said  # a fresh JVM's start, quiet

    # What the two scrapes hold together, computed from the CSV files: VALE3 from both.
    assert_equals_reference(lake, pd.concat([expected_daily("2020-03-02", "2020-03-13", ["PETR4"]),
                                             expected_daily("2020-03-02", "2020-03-20", ["VALE3"]),
                                             expected_daily("2020-03-09", "2020-03-20", ["ITUB4"])]))


# --- a full disk, a read-only lake -------------------------------------------------------------------


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[bool]:
    """A tmpfs of `size` at `where` when this process may mount one; yields whether it did."""
    where.mkdir(parents=True)
    mounted = False
    if os.geteuid() == 0 and not os.environ.get("FAULTS_NO_MOUNT"):  # set it to try the injected path
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                                 capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=True)


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


def injected_error(monkeypatch, err: int) -> None:
    """Without a mount: every write into the lake fails as the file system would."""
    from b3_quotes.storage import Lake

    def refuse(self, key, data):
        raise OSError(err, os.strerror(err), str(Path(self.root) / key))

    monkeypatch.setattr(Lake, "write_bytes", refuse)


def run_meeting_the_fault(mounted: bool, lake: Path, inject: Callable[[pytest.MonkeyPatch], None], capsys,
                          *args: str, child_point: str | None = None) -> tuple[int, str]:
    """The run that meets the fault, its exit code and stderr. On the real small file system when
    one is mounted: in this process, or in a child process with the fault at `child_point` when the
    fault is met in Spark's tasks (the child's stderr is all a user sees, the JVM's included).
    Without a mount: this process with the error injected by `inject`."""
    if mounted and child_point:
        failed = drive(child_point, lake, *args)
        return failed.returncode, failed.stderr
    capsys.readouterr()  # what earlier runs of the test said is not this run's
    with pytest.MonkeyPatch.context() as patch:
        if not mounted:
            inject(patch)
        return run_in_process(lake, *args), capsys.readouterr().err


def test_full_disk_while_writing_raw_exits_6_and_a_rerun_converges(tmp_path, monkeypatch, capsys):
    mount = tmp_path / "disk"
    with small_filesystem(mount, "24k") as mounted:
        lake = mount / "lake"
        code, stderr = run_meeting_the_fault(mounted, lake, lambda patch: injected_error(patch, errno.ENOSPC), capsys)
        assert code == 6
        line = assert_one_error_line(stderr)
        assert "No space left on device" in line and str(lake / "raw") in line and "run not committed" in line
        assert not list((lake / "raw/_manifests").glob("*.json"))
        assert_every_visible_file_readable(lake)
        if mounted:
            remount(mount, "size=64m")
        assert run_in_process(lake) == 0
        assert_converged(lake)


def test_full_disk_while_refining_exits_6_naming_the_path_and_a_rerun_converges(tmp_path, monkeypatch, capsys):
    mount = tmp_path / "disk"
    with small_filesystem(mount, "8m") as mounted:
        lake = mount / "lake"

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(lake / "refined/quotes_daily"))

        code, stderr = run_meeting_the_fault(
            mounted, lake, lambda patch: patch.setattr("b3_quotes.local_mode.trigger.trigger_locally", full), capsys,
            child_point="fill-disk")
        assert code == 6
        line = assert_one_error_line(stderr)
        assert "refining failed writing" in line and str(lake) in line and "No space left on device" in line
        assert "stays pending" in line
        assert len(list((lake / "raw/_manifests").glob("*.json"))) == 1
        assert_every_visible_file_readable(lake)
        (lake / "filler.bin").unlink(missing_ok=True)
        assert run_in_process(lake) == 0
        assert_converged(lake)


def test_read_only_lake_exits_6_naming_it_and_changes_nothing(tmp_path, monkeypatch, capsys):
    mount = tmp_path / "disk"
    with small_filesystem(mount, "16m") as mounted:
        lake = mount / "lake"
        assert run_in_process(lake) == 0
        before = sorted((p.relative_to(lake), p.stat().st_mtime_ns) for p in lake.rglob("*"))
        args = [*ARGS[:-4], "--start", "2020-03-16", "--end", "2020-03-20"]
        if mounted:
            remount(mount, "ro")
        real_open = open

        def read_only_open(file, mode="r", *a, **k):
            if str(file).startswith(str(lake)) and any(c in mode for c in "wa+x"):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
            return real_open(file, mode, *a, **k)

        code, stderr = run_meeting_the_fault(
            mounted, lake, lambda patch: patch.setattr("builtins.open", read_only_open), capsys, *args)
        assert code == 6
        line = assert_one_error_line(stderr)
        assert f"cannot lock the lake: {lake / LOCK_FILE}: Read-only file system" in line
        assert sorted((p.relative_to(lake), p.stat().st_mtime_ns) for p in lake.rglob("*")) == before
        if mounted:
            remount(mount, "rw")


# --- a long backfill stopped part-way ----------------------------------------------------------


def test_backfill_killed_after_its_first_year_is_finished_by_the_next_daily_run(tmp_path, monkeypatch):
    """The refine commits a year at a time here (REFINE_STEP_SESSIONS=1: this small lake's years would
    be one step). Killed once 2019 is committed (what a Glue timeout does to a job), the backfill is finished by the next day's run: it refines 2020 (the backfill's rest and its
    own day) and writes no file of 2019 again; the lake then equals a clean run."""
    lake = tmp_path / "lake"
    source = ARGS[:-4]
    monkeypatch.setenv("REFINE_STEP_SESSIONS", "1")  # the child's environment is this one's
    killed = drive("refine-step:1", lake, *source, "--start", "2019-10-01", "--end", "2020-03-13")
    assert killed.returncode == KILLED, killed.stderr
    assert "step 1 of 2: 2019" in killed.stdout
    (manifest,) = (lake / "raw/_manifests").glob("*.json")
    assert json.loads((lake / "refined/_partial_runs" / manifest.name).read_text())["refined_through"] == "2019-12-31"
    written = {p: p.stat().st_mtime_ns for p in (lake / "refined").rglob("*.parquet")}
    assert {re.findall(r"/(?:dt|month|year)=(\d{4})", str(p))[0] for p in written} == {"2019"}
    assert_every_visible_file_readable(lake, ("raw", "refined"))

    assert run_in_process(lake, *source, "--start", "2020-03-16", "--end", "2020-03-16") == 0
    assert {p: p.stat().st_mtime_ns for p in written} == written  # the committed year: not one file rewritten
    assert not list((lake / "refined/_partial_runs").iterdir())
    assert_converged(lake, start="2019-10-01", end="2020-03-16")
    assert_equals_reference(lake, expected_daily("2019-10-01", "2020-03-16"))


def cotahist_round_lot(path: Path) -> set[tuple[str, str]]:
    """(ticker, day) of each round-lot cash-market record of a zipped COTAHIST file, read by position."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        lines = archive.read(archive.namelist()[0]).decode("latin-1").splitlines()
    return {(ln[12:24].strip(), f"{ln[2:6]}-{ln[6:8]}-{ln[8:10]}") for ln in lines
            if ln[:2] == "01" and ln[10:12] == "02" and ln[24:27] == "010"}


def test_cotahist_files_killed_between_two_files_keep_the_first_and_a_rerun_converges(tmp_path):
    """Several COTAHIST files are committed one at a time: killed as the second is about to be read, the
    first file's days and manifest are in the lake; the same command again refines both, each row once."""
    lake, data = tmp_path / "lake", REPO / "tests/data/corporate_events"
    files = [data / "COTAHIST_D03022022.TXT.zip", data / "COTAHIST_D04022022.TXT.zip"]
    args = ["--source", "b3", "--universe", "all", *[a for f in files for a in ("--cotahist-file", str(f))]]
    killed = drive("cotahist-file:2", lake, *args)
    assert killed.returncode == KILLED, killed.stderr
    (manifest,) = (lake / "raw/_manifests").glob("*.json")
    assert json.loads(manifest.read_text())["partitions"] == ["2022-02-03"]
    assert [p.name for p in (lake / "raw/quotes").iterdir()] == ["dt=2022-02-03"]
    assert_every_visible_file_readable(lake)

    assert run_in_process(lake, *args) == 0
    daily = read_table(lake, "quotes_daily")
    assert set(zip(daily["ticker"], daily["dt"])) == cotahist_round_lot(files[0]) | cotahist_round_lot(files[1])
    assert not daily.duplicated(["ticker", "dt"]).any()
    manifests = {p.name for p in (lake / "raw/_manifests").glob("*.json")}
    assert len(manifests) == 3 and manifests == {p.name for p in (lake / "refined/_processed_runs").iterdir()}
