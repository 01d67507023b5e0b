"""A soak of the local pipeline: many scrape runs on one lake, killed, late and overlapping, queried all the while.

    .venv/bin/python bench/soak.py [--runs 200] [--seed 7] [--minutes 60] [--keep DIR]

Every run is the real command, `scraper/scraper_upload.py --source csv` on the bundled sample
(`data/sample/yahoo`, offline), in its own process group, on one lake. The plan, drawn from the
seed, mixes:
- forward runs: 1-3 sessions after the lake's latest, of 1-5 random tickers (a daily scrape);
- late runs: 1-10 sessions all older than the lake's latest (a backfill into history);
- overlaps: two runs started at once (they meet at the lake's lock);
- kills: a run SIGKILLed with its whole process group (its JVM and Python workers) at a random
  moment of its life, from its Python start to its catalog refresh; a killed run is retried
  1-4 steps later with the same arguments, as a scheduler would (the retry may be killed too).
Meanwhile one process after another runs `python -m b3_quotes.catalog.query` on the lake (three queries in
turn, one of which checks that no session is visible twice); a query must never fail, and none
takes the lake's lock. `--minutes` bounds the time spent starting runs: past it no new step
starts, the pending retries run (unkilled) and the checks follow.

At the end:
- `python -m b3_quotes.catalog.verify` on the lake must exit 0 (every refined value equals its recompute
  from raw);
- the lake's raw (data and manifests) is copied into a fresh lake and refined there in one clean
  run of the local Glue job (the real Lambda handler, every manifest pending at once); every row of
  the four refined tables must have the same checksum in both lakes (`tests/helpers.py`
  `refined_row_digests`: all of a row's values, read with DuckDB).
It prints the figures (runs, kills by the phase they hit, queries answered, longest query, wall
time) and PASS or FAIL; exit 0 on PASS. The lake is removed unless `--keep` names a folder.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SAMPLE = REPO / "data" / "sample" / "yahoo"
SCRAPER = str(REPO / "scraper" / "scraper_upload.py")
TICKERS: tuple[str, ...] = ("ABEV3", "BBDC4", "ITUB4", "PETR4", "VALE3")
# Variables that would point a child at another lake, source or bucket (tests/conftest.py's list).
SETTINGS_VARIABLES = ("BUCKET", "TICKERS", "ATIVO", "TICKER", "SOURCE", "LAKE_DIR", "UNIVERSE", "ENV_FILE",
                      "GLUE_DATABASE", "DOWNLOAD_TIMEOUT_S", "LAKE_LOCK_WAIT_S")
KILL_SHARE, LATE_SHARE, OVERLAP_SHARE = 0.25, 0.3, 0.2
FIRST_SESSION = 25  # the lake starts a little into the sample, so late runs have history to land in
QUERIES = (
    ["--sql", "SELECT count(*) AS visible_rows, count(DISTINCT ticker || dt) AS sessions FROM quotes_daily"],
    ["--file", "sql/latest_sessions.sql"],
    ["--sql", "SELECT ticker, count(*) AS months, max(month) AS last_month FROM quotes_monthly GROUP BY ticker"],
)
QUERY_PAUSE_S = 1.0
QUERY_TIMEOUT_S = 120
RUN_TIMEOUT_S = 900


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"  # a killed run's output up to its death tells the phase the kill hit
    return env


def sessions() -> list[str]:
    with (SAMPLE / "PETR4.SA.csv").open() as handle:
        return [row["Date"] for row in csv.DictReader(handle)]


def priced_days() -> dict[str, set[str]]:
    """Each ticker's days with a close in its CSV file (Yahoo's Ash Wednesdays are `null` rows)."""
    days = {}
    for ticker in TICKERS:
        with (SAMPLE / f"{ticker}.SA.csv").open() as handle:
            days[ticker] = {row["Date"] for row in csv.DictReader(handle) if row["Close"] not in ("", "null")}
    return days


PRICED = priced_days()


@dataclass
class Run:
    """One scrape command: its arguments, when to kill it (seconds after its start; None: never)."""

    number: int
    kind: str  # forward, late, retry, final
    tickers: list[str]
    start: str
    end: str
    kill_after_s: float | None = None
    code: int | None = None
    seconds: float = 0.0
    phase: str = ""  # where a kill hit it
    log: Path | None = None

    @property
    def expected_code(self) -> int:
        """3 when a ticker has no priced day in the range (the scraper's "no data"), else 0."""
        empty = any(not any(self.start <= d <= self.end for d in PRICED[t]) for t in self.tickers)
        return 3 if empty else 0

    def argv(self, lake: Path) -> list[str]:
        return [sys.executable, SCRAPER, "--lake-dir", str(lake), "--source", "csv", "--csv-dir", str(SAMPLE),
                "--tickers", ",".join(self.tickers), "--start", self.start, "--end", self.end]


def phase_of(output: str) -> str:
    """Where a run was when it died, from the lines it had printed (unbuffered)."""
    if "query it:" in output:
        return "after its last line"
    if "  catalog " in output or "  job " in output:
        return "refreshing the catalog"
    if "refining locally" in output:
        return "refining"
    if "written " in output:
        return "committed, before the refine"
    if "waiting for another run" in output and "fetched" not in output:
        return "waiting for the lock"
    if "fetched" in output:
        return "writing raw"
    return "starting (Python, reading the CSV)"


@dataclass
class Soak:
    lake: Path
    logs: Path
    rng: random.Random
    days: list[str]
    kill_window_s: float = 20.0  # kills land in [0.3 s, this]; follows the runs' measured length
    runs: list[Run] = field(default_factory=list)
    latest: int = FIRST_SESSION  # index of the lake's latest session (as planned)
    running: int = 0  # scrape processes alive now (for the queries' overlap count)
    overlaps: int = 0  # steps that started two runs at once

    def new_run(self, kind: str) -> Run:
        tickers = sorted(self.rng.sample(TICKERS, self.rng.choice((1, 1, 2, 2, 3, 5))))
        if kind == "forward" and self.latest + 1 < len(self.days):
            first = self.latest + 1
            last = min(len(self.days) - 1, first + self.rng.randint(0, 2))
        else:  # late: every day older than the lake's latest
            kind = "late"
            last = self.rng.randint(0, self.latest - 1)
            first = max(0, last - self.rng.randint(0, 9))
        self.latest = max(self.latest, last)
        return Run(len(self.runs) + 1, kind, tickers, self.days[first], self.days[last])

    def execute(self, batch: list[Run]) -> None:
        """Start these runs at once; kill each at its time; wait for all."""
        started = []
        for run in batch:
            run.log = self.logs / f"run-{run.number:03d}-{run.kind}.out"
            out = run.log.open("w")
            process = subprocess.Popen(run.argv(self.lake), cwd=self.logs, env=child_env(), stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            started.append((run, process, time.monotonic(), out))
            self.runs.append(run)
        self.running += len(started)
        self.overlaps += len(started) > 1
        try:
            for run, process, began, out in started:
                while process.poll() is None:
                    alive = time.monotonic() - began
                    if run.kill_after_s is not None and alive >= run.kill_after_s:
                        run.phase = phase_of(run.log.read_text())  # pyright: ignore[reportOptionalMemberAccess]
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait()
                        break
                    if alive > RUN_TIMEOUT_S:
                        os.killpg(process.pid, signal.SIGKILL)
                        run.phase = "timed out"
                    time.sleep(0.05)
                run.code, run.seconds = process.returncode, time.monotonic() - began
                out.close()
                _reap_group(process.pid)
                if run.code != -signal.SIGKILL:
                    run.phase = ""  # it finished before its kill time
        finally:
            for _, process, _, _ in started:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
            self.running -= len(started)
        finished = [r.seconds for r in self.runs if r.code == 0 and r.kind != "first"]
        if len(finished) >= 3:
            self.kill_window_s = 1.2 * statistics.median(finished)


def _reap_group(pgid: int) -> None:
    """A killed run's group must be gone whole (its JVM too): wait briefly, then kill what is left."""
    for _ in range(100):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.killpg(pgid, signal.SIGKILL)
    print(f"  warning: process group {pgid} outlived its leader; killed", flush=True)


@dataclass
class QueryLoop:
    """`python -m b3_quotes.catalog.query` on the lake, one process after another, until stopped."""

    lake: Path
    soak: Soak
    answered: int = 0
    failures: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    during_runs: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def loop(self) -> None:
        number = 0
        while not self.stop.is_set():
            self.once(QUERIES[number % len(QUERIES)])
            number += 1
            self.stop.wait(QUERY_PAUSE_S)

    def once(self, query: list[str]) -> None:
        overlapping = self.soak.running > 0
        began = time.monotonic()
        try:
            done = subprocess.run([sys.executable, "-m", "b3_quotes.catalog.query", "--lake-dir", str(self.lake), *query],
                                  cwd=REPO, env=child_env(), capture_output=True, text=True,
                                  timeout=QUERY_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.failures.append(f"{' '.join(query)}: no answer after {QUERY_TIMEOUT_S} s")
            return
        self.seconds.append(time.monotonic() - began)
        overlapping = overlapping or self.soak.running > 0
        if done.returncode != 0 or "waiting for another run" in done.stdout + done.stderr:
            self.failures.append(f"{' '.join(query)}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
            return
        self.answered += 1
        self.during_runs += overlapping
        if query is QUERIES[0]:
            rows, keys = done.stdout.strip().splitlines()[-1].split()
            if rows != keys:
                self.inconsistent.append(f"{rows} rows visible for {keys} sessions")


def clean_run(lake: Path, reference: Path) -> subprocess.CompletedProcess[str]:
    """The lake's raw (files and manifests) in a fresh lake, refined there by one local Glue job run."""
    shutil.copytree(lake / "raw", reference / "raw", ignore=shutil.ignore_patterns(".tmp-*"))
    code = ("import sys; from pathlib import Path; from b3_quotes.local_mode.trigger import trigger_locally; "
            "from b3_quotes.config.settings import load_settings; "
            "keys = sorted(p.name for p in Path(sys.argv[1], 'raw/_manifests').glob('*.json')); "
            "trigger_locally(Path(sys.argv[1]), 'raw/_manifests/' + keys[-1], load_settings().glue_job_name)")
    return subprocess.run([sys.executable, "-c", code, str(reference)], cwd=REPO, env=child_env(),
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def compare_lakes(lake: Path, reference: Path) -> list[str]:
    """Every refined row's checksum in the soaked lake against the clean run's: what differs."""
    from tests.helpers import refined_row_digests

    soaked, clean = refined_row_digests(lake), refined_row_digests(reference)
    lines = []
    for name, keys in (("only in the soaked lake", soaked.keys() - clean.keys()),
                       ("only in the clean run", clean.keys() - soaked.keys()),
                       ("with other values", {k for k in soaked.keys() & clean.keys() if soaked[k] != clean[k]})):
        if keys:
            shown = ", ".join(" ".join(k) for k in sorted(keys)[:5])
            lines.append(f"{len(keys)} refined row(s) {name} (first: {shown})")
    return lines or [f"all {len(soaked)} refined rows (four tables) have the clean run's checksums"]


def plan_step(soak: Soak, runs_left: int, retries: list[tuple[int, Run]], step: int) -> list[Run]:
    """The next step: a due retry, or one new run, or two at once."""
    due = [r for r in retries if r[0] <= step]
    if due:
        retries.remove(due[0])
        old = due[0][1]
        batch = [Run(len(soak.runs) + 1, "retry", old.tickers, old.start, old.end)]
    else:
        count = 2 if runs_left >= 2 and soak.rng.random() < OVERLAP_SHARE else 1
        batch = [soak.new_run("late" if soak.rng.random() < LATE_SHARE else "forward") for _ in range(count)]
        for index, run in enumerate(batch):  # numbered when started
            run.number = len(soak.runs) + 1 + index
    for run in batch:
        if soak.rng.random() < KILL_SHARE:
            run.kill_after_s = round(soak.rng.uniform(0.3, soak.kill_window_s), 2)
    return batch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="scrape runs to start (retries and overlaps count)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--minutes", type=float, default=60.0, help="no new run starts after this")
    parser.add_argument("--keep", type=Path, help="keep the lakes and the runs' output in this folder")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="b3-soak-")).resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    lake, reference = work / "lake", work / "clean"
    soak = Soak(lake, work / "logs", random.Random(args.seed), sessions())
    queries = QueryLoop(lake, soak)
    began = time.monotonic()
    deadline = began + 60 * args.minutes
    result: list[str] = []
    try:
        # The lake exists before the first query: ten sessions of every ticker.
        first = Run(1, "first", list(TICKERS), soak.days[FIRST_SESSION - 9], soak.days[FIRST_SESSION])
        soak.execute([first])
        if first.code != 0:
            result.append(f"the first run failed (exit {first.code}): see {first.log}")
            return report(soak, queries, result, began, args)
        thread = threading.Thread(target=queries.loop, daemon=True)
        thread.start()
        retries: list[tuple[int, Run]] = []
        step = 0
        while len(soak.runs) < args.runs and time.monotonic() < deadline:
            step += 1
            batch = plan_step(soak, args.runs - len(soak.runs), retries, step)
            soak.execute(batch)
            for run in batch:
                print(f"run {run.number:3d} {run.kind:7} {','.join(run.tickers):29} {run.start}..{run.end}  "
                      f"{run.seconds:5.1f} s  exit {run.code}" + (f"  killed: {run.phase}" if run.phase else ""),
                      flush=True)
                if run.phase:
                    retries.append((step + soak.rng.randint(1, 4), run))
        for _, old in retries:  # what a scheduler still owes, unkilled
            soak.execute([Run(len(soak.runs) + 1, "retry", old.tickers, old.start, old.end)])
            print(f"run {soak.runs[-1].number:3d} retry   (drain) exit {soak.runs[-1].code}", flush=True)
        queries.stop.set()
        thread.join(QUERY_TIMEOUT_S)
        failed = [r for r in soak.runs if r.phase in ("", "timed out") and r.code != r.expected_code]
        result += [f"run {r.number} exited {r.code} unkilled (expected {r.expected_code}): see {r.log}" for r in failed]
        result += [f"query failed: {f}" for f in queries.failures[:5]]
        result += [f"query saw {i}" for i in queries.inconsistent[:5]]
        checked = time.monotonic()
        verify = subprocess.run([sys.executable, "-m", "b3_quotes.catalog.verify", "--lake-dir", str(lake)], cwd=REPO,
                                env=child_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        verify_s = time.monotonic() - checked
        print(f"verify ({verify_s:.0f} s, exit {verify.returncode}):\n  " + "\n  ".join(verify.stdout.strip().splitlines()[-12:]))
        if verify.returncode != 0:
            result.append(f"verify exited {verify.returncode}: {verify.stderr.strip()[-300:]}")
        clean = clean_run(lake, reference)
        if clean.returncode != 0:
            result.append(f"the clean run failed: {clean.stderr.strip()[-300:]}")
        else:
            compared = compare_lakes(lake, reference)
            print("clean run: " + "\n  ".join(compared))
            if not compared[0].startswith("all "):
                result += compared
        return report(soak, queries, result, began, args)
    finally:
        queries.stop.set()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def report(soak: Soak, queries: QueryLoop, result: list[str], began: float, args: argparse.Namespace) -> int:
    runs = soak.runs
    killed = [r for r in runs if r.phase]
    phases: dict[str, int] = {}
    for run in killed:
        phases[run.phase] = phases.get(run.phase, 0) + 1
    finished = [r.seconds for r in runs if r.code == 0]
    kinds = {kind: sum(r.kind == kind for r in runs) for kind in ("forward", "late", "retry")}
    print(f"\nsoak, seed {args.seed}: {len(runs)} runs of {args.runs} asked (the first, {kinds['forward']} forward, "
          f"{kinds['late']} late, {kinds['retry']} retries; {soak.overlaps} times two at once), "
          f"wall {(time.monotonic() - began) / 60:.1f} min")
    print(f"  kills   {len(killed)}: " + ", ".join(f"{p} {n}" for p, n in sorted(phases.items())))
    if finished:
        print(f"  runs    {len(finished)} finished: median {statistics.median(finished):.1f} s, "
              f"longest {max(finished):.1f} s")
    if queries.seconds:
        print(f"  queries {queries.answered} answered ({queries.during_runs} while a run was going), "
              f"{len(queries.failures)} failed, {len(queries.inconsistent)} saw a session twice; "
              f"median {statistics.median(queries.seconds):.2f} s, longest {max(queries.seconds):.2f} s (whole process)")
    print("result: " + ("PASS" if not result else "FAIL\n  " + "\n  ".join(result)))
    return 0 if not result else 1


if __name__ == "__main__":
    sys.exit(main())
