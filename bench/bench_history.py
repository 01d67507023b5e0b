"""Cost in history: backfill, daily run and queries on years of the IBOV universe, each against a baseline.

    .venv/bin/python bench/bench_history.py [--years 10] [--seed 7]

Builds a lake of synthetic but seeded prices (a random walk per ticker; a few tickers
suspended for three months) on real B3 sessions (exchange_calendars' BVMF) for the 87 stocks
of the bundled IBOV portfolio, written by the real raw writer, then measures in one run:

1. backfill: the job (etl.glue_job.refine_run) refining all `--years` in one run, against a
   DuckDB baseline that computes the same tables and writes the same layout (dt/ticker and
   month/ticker files, plus the yearly compact files);
2. daily run: one new session on the 1-year lake and on the `--years` lake (job + catalog
   refresh): the ratio is the point (goal <= 1.2);
3. queries: every sql/*.sql and a one-ticker history, each as a whole
   `python -m catalog.query` process over the `--years` lake; baseline: the same one-ticker
   history read from quotes_daily (one file per ticker and session).

Each measurement runs in its own process and reports its peak resident memory (Python, and
Spark's JVM where there is one). Figures on a shared machine are noisy: compare ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from process_tree import REPO, run_command  # this folder is on sys.path when the script runs

IBOV_FILE = REPO / "data/b3/GetPortfolioDay_IBOV_2025-04-07.body.json"
LAST_SESSION = dt.date(2024, 12, 30)
SUSPENDED = 3  # tickers with a three-month gap


def universe() -> list[str]:
    from scraper.sources.b3_portfolio import parse_portfolio

    return sorted(parse_portfolio(IBOV_FILE.read_bytes())["ticker"])


def synthetic_quotes(years: int, seed: int, tickers: list[str]):
    """Seeded random-walk OHLCV per ticker on the B3 sessions of the last `years` years."""
    import numpy as np
    import pandas as pd

    from scraper.calendar_b3 import sessions_between

    sessions = sessions_between(LAST_SESSION.replace(year=LAST_SESSION.year - years) + dt.timedelta(days=1), LAST_SESSION)
    rng = np.random.default_rng(seed)
    frames = []
    for i, ticker in enumerate(tickers):
        close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, len(sessions))))
        spread = np.abs(rng.normal(0, 0.01, len(sessions))) * close
        frame = pd.DataFrame({
            "ticker": ticker, "trade_date": sessions, "open": close + spread / 2, "high": close + spread,
            "low": close - spread, "close": close, "adj_close": close, "volume": rng.integers(1e5, 1e7, len(sessions)),
        })
        if i < SUSPENDED:  # suspended from mid-year for three months
            gap = (frame["trade_date"] > dt.date(LAST_SESSION.year - 1, 6, 1)) & (
                frame["trade_date"] < dt.date(LAST_SESSION.year - 1, 9, 1))
            frame = frame[~gap]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def write_lake(lake: Path, quotes, run_id: str) -> str:
    from scraper.raw_writer import write_raw_quotes
    from storage import Lake

    return write_raw_quotes(Lake.local(lake), quotes, source="bench", symbols={},
                            now=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), run_id=run_id).manifest_key


def jvm_peak_mb(spark) -> float:
    """Spark's JVM high-water mark (VmHWM), when /proc shows it."""
    try:
        pid = spark.sparkContext._gateway.proc.pid
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (AttributeError, OSError):
        pass
    return float("nan")


def python_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- phases, each run in its own process --------------------------------------------------

def phase_job(lake: str, manifest_key: str) -> dict:
    """The job refining one manifest, then the local catalog refresh (what a local run does)."""
    from etl.glue_job import refine_run
    from local_mode.duckdb_views import refresh_catalog
    from local_mode.spark import local_spark

    spark = local_spark("bench-history")
    spark.range(1).count()  # JVM start-up is not the run's cost
    began = time.perf_counter()
    counts = refine_run(spark, lake, manifest_key, extra_rounds=0, log=lambda _: None)
    refresh_catalog(Path(lake))
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "counts": counts, "python_mb": python_peak_mb(), "jvm_mb": jvm_peak_mb(spark)}


def phase_duckdb_backfill(lake: str, out: str) -> dict:
    """Baseline: the same refined tables computed by DuckDB SQL and written in the same layout."""
    import duckdb

    began = time.perf_counter()
    Path(out, "refined").mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"""
        CREATE TABLE daily AS
        WITH raw AS (SELECT * FROM read_parquet('{lake}/raw/quotes/*/*.parquet')),
        latest AS (SELECT * FROM raw QUALIFY row_number() OVER (PARTITION BY ticker, trade_date
                   ORDER BY ingested_at DESC, run_id DESC, source DESC) = 1)
        SELECT trade_date, open AS open_price, high AS high_price, low AS low_price, close AS close_price,
               adj_close AS adj_close_price, volume,
               close / lag(close) OVER w - 1 AS daily_return,
               CASE WHEN count(close) OVER w5 = 5 THEN avg(close) OVER w5 END AS ma_5,
               CASE WHEN count(close) OVER w20 = 20 THEN avg(close) OVER w20 END AS ma_20,
               CAST(trade_date - lag(trade_date) OVER w AS INTEGER) AS days_since_prev_session,
               source, ingested_at, strftime(trade_date, '%Y-%m-%d') AS dt, ticker
        FROM latest
        WINDOW w AS (PARTITION BY ticker ORDER BY trade_date),
               w5 AS (PARTITION BY ticker ORDER BY trade_date ROWS BETWEEN 4 PRECEDING AND CURRENT ROW),
               w20 AS (PARTITION BY ticker ORDER BY trade_date ROWS BETWEEN 19 PRECEDING AND CURRENT ROW)
    """)
    con.execute("""
        CREATE TABLE monthly AS
        WITH m AS (SELECT ticker, strftime(trade_date, '%Y-%m') AS month, CAST(count(*) AS INTEGER) AS sessions,
                   min(trade_date) AS first_session, max(trade_date) AS last_session,
                   arg_min(open_price, trade_date) AS open_price, max(high_price) AS high_price,
                   min(low_price) AS low_price, arg_max(close_price, trade_date) AS close_price,
                   sum(volume) AS total_volume, avg(close_price) AS avg_close_price
                   FROM daily GROUP BY ALL)
        SELECT * EXCLUDE (ticker, month),
               close_price / lag(close_price) OVER (PARTITION BY ticker ORDER BY month) - 1 AS monthly_return,
               month, ticker FROM m
    """)
    # One COPY per month: DuckDB holds every open partition's state until the COPY ends: 10 years
    # of the IBOV's dt x ticker partitions (~216 k) in one COPY ran out of memory at 18.8 GiB, and
    # so did one year of the whole market (~187 k).
    months = [r[0] for r in con.execute("SELECT DISTINCT substr(dt, 1, 7) FROM daily ORDER BY 1").fetchall()]
    for table, by, period in (("daily", "dt, ticker", "dt"), ("monthly", "month, ticker", "month")):
        for month in months:
            con.execute(f"COPY (SELECT * FROM {table} WHERE {period} LIKE '{month}%') TO '{out}/refined/quotes_{table}' "
                        f"(FORMAT parquet, PARTITION_BY ({by}), OVERWRITE_OR_IGNORE)")
        con.execute(f"COPY (SELECT *, substr({period}, 1, 4) AS year FROM {table} ORDER BY ticker, {period}) "
                    f"TO '{out}/refined/quotes_{table}_compact' (FORMAT parquet, PARTITION_BY (year))")
    seconds = time.perf_counter() - began
    rows = con.execute("SELECT count(*) FROM daily").fetchone()
    return {"seconds": seconds, "daily_rows": rows[0] if rows else 0, "python_mb": python_peak_mb()}


PHASES = {"job": phase_job, "duckdb-backfill": phase_duckdb_backfill}


def run_phase(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"phase {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed_process(argv: list[str]) -> tuple[float, float]:
    """Wall time and peak memory (MB) of a whole process, sampled from /proc (process_tree)."""
    run = run_command(argv)
    return run.seconds, run.peaks_mb.get("driver", 0.0)


def build_and_backfill(lake: Path, quotes, label: str, with_portfolio: bool = False) -> tuple[str, dict]:
    """Raw for all sessions but the last, refined in one run (the backfill); the last session's raw."""
    last = max(quotes["trade_date"])
    history_key = write_lake(lake, quotes[quotes["trade_date"] < last], f"{label}-history")
    if with_portfolio:
        from scraper.raw_writer import write_portfolio_snapshot
        from scraper.sources.b3_portfolio import parse_portfolio
        from storage import Lake

        write_portfolio_snapshot(Lake.local(lake), parse_portfolio(IBOV_FILE.read_bytes()),
                                 dt.datetime(2025, 4, 7, tzinfo=dt.UTC))
    backfill = run_phase("job", str(lake), history_key)
    daily_key = write_lake(lake, quotes[quotes["trade_date"] == last], f"{label}-daily")
    return daily_key, backfill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase[0]](*args.phase[1:])))
        return

    work = Path(tempfile.mkdtemp(prefix="bench-history-"))
    try:
        tickers = universe()
        quotes = synthetic_quotes(args.years, args.seed, tickers)
        one_year = quotes[quotes["trade_date"] > LAST_SESSION.replace(year=LAST_SESSION.year - 1)]
        print(f"lake: {len(tickers)} IBOV tickers, {quotes['trade_date'].nunique():,} B3 sessions "
              f"({args.years} years to {LAST_SESSION}), {len(quotes):,} rows, seed {args.seed}; "
              f"{SUSPENDED} tickers suspended for three months")

        big, small = work / "lake-big", work / "lake-small"
        big_daily, backfill = build_and_backfill(big, quotes, "big", with_portfolio=True)
        baseline = run_phase("duckdb-backfill", str(big), str(work / "duckdb"))
        print(f"\nbackfill of {args.years} years ({backfill['counts']['daily_rows']:,} daily rows, one run):")
        print(f"  job (Spark compute, pyarrow writes)   {backfill['seconds']:8.1f} s   "
              f"python {backfill['python_mb']:6.0f} MB  jvm {backfill['jvm_mb']:6.0f} MB")
        print(f"  DuckDB baseline, same tables+layout   {baseline['seconds']:8.1f} s   "
              f"python {baseline['python_mb']:6.0f} MB")
        print(f"  ratio job / DuckDB                    {backfill['seconds'] / baseline['seconds']:8.2f}   (goal <= 2)")
        shutil.rmtree(work / "duckdb", ignore_errors=True)

        small_daily, _ = build_and_backfill(small, one_year, "small")
        day_small = run_phase("job", str(small), small_daily)
        day_big = run_phase("job", str(big), big_daily)
        print("\ndaily run (one new session, job + catalog refresh):")
        for label, result in (("1-year lake", day_small), (f"{args.years}-year lake", day_big)):
            print(f"  {label:<14} {result['seconds']:6.2f} s   read {result['counts'].get('raw_days_read', '?')} raw days, "
                  f"wrote {result['counts']['daily_rows']} daily rows   python {result['python_mb']:5.0f} MB  "
                  f"jvm {result['jvm_mb']:5.0f} MB")
        print(f"  ratio {args.years} years / 1 year   {day_big['seconds'] / day_small['seconds']:6.2f}   (goal <= 1.2)")

        print(f"\nqueries over {args.years} years, each a whole `python -m catalog.query` process:")
        query = [sys.executable, "-m", "catalog.query", "--lake-dir", str(big)]
        timed_process([*query, "--sql", "SELECT 1"])  # the catalog's views are defined once, here
        history_sql = "SELECT dt, close_price, ma_20 FROM {} WHERE ticker = 'PETR4' ORDER BY dt"
        cases = [(p.name, [*query, "--file", str(p)]) for p in sorted((REPO / "sql").glob("*.sql"))]
        cases.append(("one-ticker history (compact)", [*query, "--sql", history_sql.format("quotes_daily_compact")]))
        for name, argv in cases:
            seconds, peak = timed_process(argv)
            print(f"  {name:<32} {seconds:6.2f} s   peak {peak:5.0f} MB   (goal <= 2 s)")
        seconds, peak = timed_process([*query, "--sql", history_sql.format("quotes_daily")])
        print(f"  baseline: one-ticker history from quotes_daily (dt/ticker files) {seconds:6.2f} s   peak {peak:5.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
