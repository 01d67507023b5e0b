"""What `python -m b3_quotes.catalog.verify` costs on years of the IBOV universe: the full check, and the daily one (--since).

    .venv/bin/python bench/bench_verify.py [--years 2] [--since-days 30] [--seed 7] [--no-parts]

Builds bench_history.py's lake (the 87 stocks of the bundled IBOV portfolio, seeded prices on
real B3 sessions, three tickers suspended for three months; refined by the job in one backfill),
then:
1. runs `python -m b3_quotes.catalog.verify --lake-dir LAKE` as a whole process, and again with
   `--since` (the last session minus `--since-days` days): wall time and peak memory of each;
   the full check is the baseline;
2. times verify's parts in one process: the read of the raw and other non-refined files, the
   recompute from raw (Spark), the read of each refined table, the listing of `quotes_daily`
   (left out with --no-parts: at ten years it reads 215 k files once more).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_history import LAST_SESSION, run_phase, synthetic_quotes, universe, write_lake
from process_tree import REPO, run_command  # this folder is on sys.path when the script runs


def phase_parts(lake_dir: str) -> dict:
    """verify's parts, each timed, in this process."""
    from b3_quotes.catalog import verify
    from b3_quotes.contract.tables import TABLES
    from b3_quotes.local_mode.rebuild import recompute_lake
    from b3_quotes.storage import Lake

    lake = Lake.local(Path(lake_dir))
    seconds = {}
    began = time.perf_counter()
    verify.unreadable_files(lake, [t for t in TABLES.values() if t not in verify.REFINED])
    seconds["read the raw and other non-refined files"] = time.perf_counter() - began
    began = time.perf_counter()
    recompute_lake(lake)
    seconds["recompute every refined row from raw (Spark, cold JVM)"] = time.perf_counter() - began
    for table in verify.REFINED:
        began = time.perf_counter()
        rows = len(verify.read_refined(lake, table)[0])
        seconds[f"read {table.folder} ({rows:,} rows)"] = time.perf_counter() - began
    began = time.perf_counter()
    files = len(verify.table_files(lake, verify.QUOTES_DAILY))
    seconds[f"list refined/quotes_daily ({files:,} files)"] = time.perf_counter() - began
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--since-days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-parts", action="store_true", help="only the two whole commands, not verify's parts")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase_parts(*args.phase[1:])))
        return

    work = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    try:
        quotes = synthetic_quotes(args.years, args.seed, universe())
        lake = work / "lake"
        backfill = run_phase("job", str(lake), write_lake(lake, quotes, "history"))
        print(f"lake: {quotes['ticker'].nunique()} IBOV tickers, {quotes['trade_date'].nunique():,} B3 sessions "
              f"({args.years} years to {LAST_SESSION}), {len(quotes):,} daily rows, each its own quotes_daily file; "
              f"seed {args.seed}; backfill {backfill['seconds']:.0f} s")
        since = (LAST_SESSION - dt.timedelta(days=args.since_days)).isoformat()
        verify = [sys.executable, "-m", "b3_quotes.catalog.verify", "--lake-dir", str(lake)]
        print("\npython -m b3_quotes.catalog.verify, a whole process each:")
        results = {}
        for label, argv in (("full (baseline)", verify), (f"--since {since}", [*verify, "--since", since])):
            run = run_command(argv)
            results[label] = run.seconds
            print(f"  {label:<22} {run.seconds:7.1f} s   python {run.peaks_mb.get('driver', 0):5.0f} MB  "
                  f"jvm {run.peaks_mb.get('jvm', 0):5.0f} MB   {run.lines[-1][1][-90:]}")
        full, fast = results.values()
        print(f"  ratio --since / full   {fast / full:7.2f}")
        if args.no_parts:
            return
        print("\nits parts, in one process:")
        out = subprocess.run([sys.executable, __file__, "--phase", "parts", str(lake)], capture_output=True, text=True,
                             cwd=REPO)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        for part, seconds in json.loads(out.stdout.strip().splitlines()[-1]).items():
            print(f"  {part:<58} {seconds:7.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
