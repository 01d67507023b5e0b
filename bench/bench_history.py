"""Cost in history: backfill, daily run and queries on years of the IBOV universe, each against a baseline.

    .venv/bin/python bench/bench_history.py [--years 10] [--seed 7]

Builds a lake of synthetic but seeded prices (a random walk per ticker; a few tickers
suspended for three months; a cash dividend a quarter for every ticker, and a 2:1 split, a 10:1
reverse split or a 5 % bonus for a few, as traded) on real B3 sessions (exchange_calendars'
BVMF) for the 87 stocks of the bundled IBOV portfolio, written by the real raw writer (with each
day's previous B3 session, as the scraper writes it) and the corporate_events writer, then
measures in one run:

1. backfill: the job (etl.glue_job.refine_run) refining all `--years` in one run, against a
   DuckDB baseline that computes the same tables, every column (the event-corrected returns and
   averages, total returns, gap_before, share_ratio, cash_per_share), in its own SQL, and writes
   the same layout (dt/ticker and month/ticker files, plus the yearly compact files);
2. daily run: one new session on the 1-year lake and on the `--years` lake, as the job + catalog
   refresh in a warm process, and as the whole command (`scraper_upload.py --source b3` with
   the session's COTAHIST file: a cold JVM, the scrape, the local Lambda, the job, the catalog):
   the ratio is the point (goal <= 1.2);
3. queries: every sql/*.sql and a one-ticker history, each as a whole
   `python -m b3_quotes.catalog.query` process over the `--years` lake; baseline: the same one-ticker
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
from dataclasses import dataclass
from pathlib import Path

from process_tree import REPO, CommandRun, run_command  # this folder is on sys.path when the script runs

IBOV_FILE = REPO / "data/b3/GetPortfolioDay_IBOV_2025-04-07.body.json"
LAST_SESSION = dt.date(2024, 12, 30)
SUSPENDED = 3  # tickers with a three-month gap
# Share events, as traded (prices from the ex date on divided by the ratio): (ticker index, ratio).
SHARE_EVENTS = ((3, 2.0), (4, 0.1), (5, 1.05))
SHARE_KINDS = {2.0: "split", 0.1: "reverse_split", 1.05: "bonus"}
DIVIDEND_YIELD = 0.01  # a cash dividend of 1 % of the eve's close, once a quarter, every ticker


def universe() -> list[str]:
    from scraper.sources.b3_portfolio import parse_portfolio

    return sorted(parse_portfolio(IBOV_FILE.read_bytes())["ticker"])


def synthetic_quotes(years: int, seed: int, tickers: list[str]):
    """Seeded random-walk OHLCV per ticker on the B3 sessions of the last `years` years."""
    import numpy as np
    import pandas as pd

    from scraper.calendar_b3 import session_rules, sessions_between
    from scraper.validation import previous_sessions

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
    quotes = pd.concat(frames, ignore_index=True)
    quotes["prev_b3_session"] = previous_sessions(pd.Series(quotes["trade_date"]), session_rules())
    return quotes


def synthetic_events(quotes, tickers: list[str]):
    """The corporate events of `quotes`, put into its prices as traded (returns the events and the
    quotes with them): a dividend every quarter for every ticker, on its first session of the
    quarter's second month, 1 % of the eve's close; the SHARE_EVENTS mid-way through the history."""
    import pandas as pd

    quotes = quotes.copy()
    rows = []
    sessions = sorted(set(quotes["trade_date"]))
    share_ex = sessions[len(sessions) // 2]
    for index, ratio in SHARE_EVENTS:
        ticker = tickers[index]
        after = (quotes["ticker"] == ticker) & (quotes["trade_date"] >= share_ex)
        for column in ("open", "high", "low", "close", "adj_close"):
            quotes.loc[after, column] = quotes.loc[after, column] / ratio
        quotes.loc[after, "volume"] = (quotes.loc[after, "volume"] * ratio).round().astype("int64")
        rows.append((ticker, share_ex, SHARE_KINDS[ratio], ratio, 0.0))
    for ticker, own in quotes.groupby("ticker", sort=True):
        own = own.sort_values("trade_date")
        days, closes = list(own["trade_date"]), list(own["close"])
        months = {(d.year, d.month) for d in days if d.month % 3 == 2}
        for year, month in sorted(months):
            at = next(i for i, d in enumerate(days) if (d.year, d.month) == (year, month))
            if at > 0:
                rows.append((ticker, days[at], "cash_dividend", 1.0, round(closes[at - 1] * DIVIDEND_YIELD, 2)))
    events = pd.DataFrame(rows, columns=["ticker", "ex_date", "kind", "share_ratio", "cash_per_share"])
    return events.assign(source="bench", source_label=events["kind"]), quotes


def write_lake(lake: Path, quotes, run_id: str, events=None) -> str:
    """Raw quotes (and the events ex in their days), committed by one manifest."""
    from b3_quotes.contract.tables import CORPORATE_EVENTS, RAW_QUOTES
    from b3_quotes.storage import Lake
    from scraper.raw_writer import RunStamp, write_raw_run

    tables = {RAW_QUOTES: quotes}
    if events is not None:
        tables[CORPORATE_EVENTS] = events[events["ex_date"].isin(set(quotes["trade_date"]))]
    stamp = RunStamp("bench", {}, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), run_id)
    return write_raw_run(Lake.local(lake), tables, stamp).manifest_key


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
    from b3_quotes.contract.tables import QUOTES_DAILY
    from b3_quotes.local_mode.duckdb_views import refresh_catalog
    from b3_quotes.local_mode.spark import local_spark
    from b3_quotes.storage import Lake
    from etl.glue_job import refine_run

    spark = local_spark("bench-history")
    spark.range(1).count()  # JVM start-up is not the run's cost
    began = time.perf_counter()
    totals = refine_run(spark, Lake.local(lake), manifest_key, extra_rounds=0)
    refresh_catalog(Path(lake))
    seconds = time.perf_counter() - began
    counts = {"daily_rows": totals.counts.rows[QUOTES_DAILY.name], "raw_days_read": totals.counts.raw_days_read}
    return {"seconds": seconds, "counts": counts, "python_mb": python_peak_mb(), "jvm_mb": jvm_peak_mb(spark)}


def phase_duckdb_backfill(lake: str, out: str) -> dict:
    """Baseline: the same refined tables computed by DuckDB SQL and written in the same layout."""
    import duckdb

    began = time.perf_counter()
    Path(out, "refined").mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.execute("CREATE TABLE events (ticker VARCHAR, ex_date DATE, share_ratio DOUBLE, cash_per_share DOUBLE)")
    if list(Path(lake, "raw/corporate_events").glob("*/*.parquet")):  # one per ticker, ex date and kind: the latest load
        con.execute(f"""
            INSERT INTO events SELECT ticker, ex_date, share_ratio, cash_per_share
            FROM read_parquet('{lake}/raw/corporate_events/*/*.parquet')
            QUALIFY row_number() OVER (PARTITION BY ticker, ex_date, kind
                                       ORDER BY ingested_at DESC, run_id DESC, source DESC) = 1
        """)
    # Prices stay as traded. `basis` is the running product of the share ratios: a close times its
    # session's basis is in the ticker's first basis, and divided by session i's basis in i's.
    con.execute(f"""
        CREATE TABLE daily AS
        WITH raw AS (SELECT * FROM read_parquet('{lake}/raw/quotes/*/*.parquet', union_by_name = true)),
        latest AS (SELECT *, lag(trade_date) OVER w AS prev_trade_date, lag(close) OVER w AS prev_close
                   FROM (SELECT * FROM raw QUALIFY row_number() OVER (PARTITION BY ticker, trade_date
                         ORDER BY ingested_at DESC, run_id DESC, source DESC) = 1)
                   WINDOW w AS (PARTITION BY ticker ORDER BY trade_date)),
        -- the events ex on a session or since the ticker's previous one (on its first, that day's)
        per_session AS (SELECT l.ticker, l.trade_date, product(e.share_ratio) AS share_ratio,
                               sum(e.cash_per_share) AS cash_per_share
                        FROM latest l JOIN events e ON e.ticker = l.ticker AND e.ex_date <= l.trade_date
                             AND (e.ex_date > l.prev_trade_date OR (l.prev_trade_date IS NULL AND e.ex_date = l.trade_date))
                        GROUP BY ALL),
        sessions AS (SELECT l.*, coalesce(p.share_ratio, 1.0) AS share_ratio,
                            coalesce(p.cash_per_share, 0.0) AS cash_per_share,
                            CASE WHEN prev_trade_date IS NOT NULL AND prev_b3_session IS NOT NULL
                                 THEN prev_trade_date < prev_b3_session END AS gap_before
                     FROM latest l LEFT JOIN per_session p USING (ticker, trade_date)),
        based AS (SELECT *, product(share_ratio) OVER (PARTITION BY ticker ORDER BY trade_date
                                                       ROWS UNBOUNDED PRECEDING) AS basis FROM sessions)
        SELECT trade_date, open AS open_price, high AS high_price, low AS low_price, close AS close_price,
               adj_close AS adj_close_price, volume,
               CASE WHEN gap_before IS NOT TRUE THEN close / (prev_close / share_ratio) - 1 END AS daily_return,
               CASE WHEN gap_before IS NOT TRUE THEN (close + cash_per_share) / (prev_close / share_ratio) - 1
                    END AS total_return,
               CASE WHEN count(close) OVER w5 = 5 THEN avg(close * basis) OVER w5 / basis END AS ma_5,
               CASE WHEN count(close) OVER w20 = 20 THEN avg(close * basis) OVER w20 / basis END AS ma_20,
               CAST(trade_date - prev_trade_date AS INTEGER) AS days_since_prev_session,
               gap_before, share_ratio, cash_per_share,
               source, ingested_at, strftime(trade_date, '%Y-%m-%d') AS dt, ticker, basis
        FROM based
        WINDOW w5 AS (PARTITION BY ticker ORDER BY trade_date ROWS BETWEEN 4 PRECEDING AND CURRENT ROW),
               w20 AS (PARTITION BY ticker ORDER BY trade_date ROWS BETWEEN 19 PRECEDING AND CURRENT ROW)
    """)
    # Monthly prices in the basis of the month's last session: times the session's basis, divided by that one's.
    con.execute("""
        CREATE TABLE monthly AS
        WITH m AS (SELECT ticker, strftime(trade_date, '%Y-%m') AS month, CAST(count(*) AS INTEGER) AS sessions,
                   min(trade_date) AS first_session, max(trade_date) AS last_session,
                   arg_max(basis, trade_date) AS last_basis,
                   arg_min(open_price * basis, trade_date) AS open_based, max(high_price * basis) AS high_based,
                   min(low_price * basis) AS low_based, arg_max(close_price, trade_date) AS close_price,
                   sum(volume) AS total_volume, avg(close_price * basis) AS avg_close_based,
                   product(share_ratio) AS month_ratio, product(1 + cash_per_share / close_price) AS reinvested
                   FROM daily GROUP BY ALL),
        r AS (SELECT *, close_price / (lag(close_price) OVER (PARTITION BY ticker ORDER BY month) / month_ratio) - 1
                        AS monthly_return FROM m)
        SELECT sessions, first_session, last_session, open_based / last_basis AS open_price,
               high_based / last_basis AS high_price, low_based / last_basis AS low_price, close_price,
               total_volume, avg_close_based / last_basis AS avg_close_price, monthly_return,
               (1 + monthly_return) * reinvested - 1 AS monthly_total_return, month, ticker
        FROM r
    """)
    con.execute("ALTER TABLE daily DROP COLUMN basis")
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


@dataclass
class BenchLake:
    """A lake backfilled but for its last two sessions, and what brings each in."""

    path: Path
    backfill: dict
    next_manifest: str  # the second-to-last session's raw, committed: the job's warm daily run
    last_file: Path  # the last session as B3's daily COTAHIST file: the whole command's daily run


def build_and_backfill(work: Path, quotes, events, label: str, with_portfolio: bool = False) -> BenchLake:
    """Raw for all sessions but the last two, refined in one run (the backfill)."""
    from bench_market import write_cotahist  # imports this module: only when it runs

    lake = work / f"lake-{label}"
    last, before_last = sorted(set(quotes["trade_date"]))[-1:-3:-1]
    history_key = write_lake(lake, quotes[quotes["trade_date"] < before_last], f"{label}-history", events)
    if with_portfolio:
        from b3_quotes.storage import Lake
        from scraper.raw_writer import RunStamp, write_portfolio_snapshot
        from scraper.sources.b3_portfolio import parse_portfolio

        write_portfolio_snapshot(Lake.local(lake), parse_portfolio(IBOV_FILE.read_bytes()),
                                 RunStamp("b3", {}, dt.datetime(2025, 4, 7, tzinfo=dt.UTC), "bench-portfolio"))
    backfill = run_phase("job", str(lake), history_key)
    next_key = write_lake(lake, quotes[quotes["trade_date"] == before_last], f"{label}-daily", events)
    (work / f"files-{label}").mkdir()
    last_file = write_cotahist(work / f"files-{label}" / f"COTAHIST_D{last:%d%m%Y}.TXT", quotes[quotes["trade_date"] == last])
    return BenchLake(lake, backfill, next_key, last_file)


def daily_command(lake: BenchLake) -> CommandRun:
    """The last session's daily file into the lake: the scraper's whole process, cold JVM and all."""
    return run_command([sys.executable, str(REPO / "scraper/scraper_upload.py"), "--source", "b3", "--cotahist-file",
                        str(lake.last_file), "--universe", "ibov", "--ibov-file", str(IBOV_FILE),
                        "--lake-dir", str(lake.path)])


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
        events, quotes = synthetic_events(synthetic_quotes(args.years, args.seed, tickers), tickers)
        one_year = quotes[quotes["trade_date"] > LAST_SESSION.replace(year=LAST_SESSION.year - 1)]
        print(f"lake: {len(tickers)} IBOV tickers, {quotes['trade_date'].nunique():,} B3 sessions "
              f"({args.years} years to {LAST_SESSION}), {len(quotes):,} rows, seed {args.seed}; "
              f"{SUSPENDED} tickers suspended for three months; {len(events):,} corporate events "
              f"({(events['share_ratio'] != 1).sum()} share events)")

        big = build_and_backfill(work, quotes, events, "big", with_portfolio=True)
        backfill = big.backfill
        baseline = run_phase("duckdb-backfill", str(big.path), str(work / "duckdb"))
        print(f"\nbackfill of {args.years} years ({backfill['counts']['daily_rows']:,} daily rows, one run):")
        print(f"  job (Spark compute, pyarrow writes)   {backfill['seconds']:8.1f} s   "
              f"python {backfill['python_mb']:6.0f} MB  jvm {backfill['jvm_mb']:6.0f} MB")
        print(f"  DuckDB baseline, same tables+layout   {baseline['seconds']:8.1f} s   "
              f"python {baseline['python_mb']:6.0f} MB")
        print(f"  ratio job / DuckDB                    {backfill['seconds'] / baseline['seconds']:8.2f}   (goal <= 2)")
        shutil.rmtree(work / "duckdb", ignore_errors=True)

        small = build_and_backfill(work, one_year, events, "small")
        day_small, day_big = run_phase("job", str(small.path), small.next_manifest), run_phase(
            "job", str(big.path), big.next_manifest)
        print("\ndaily run (one new session), the job + catalog refresh in a warm process:")
        for label, result in (("1-year lake", day_small), (f"{args.years}-year lake", day_big)):
            print(f"  {label:<14} {result['seconds']:6.2f} s   read {result['counts'].get('raw_days_read', '?')} raw days, "
                  f"wrote {result['counts']['daily_rows']} daily rows   python {result['python_mb']:5.0f} MB  "
                  f"jvm {result['jvm_mb']:5.0f} MB")
        print(f"  ratio {args.years} years / 1 year   {day_big['seconds'] / day_small['seconds']:6.2f}   (goal <= 1.2)")
        command_small, command_big = daily_command(small), daily_command(big)
        print("daily run (the next session), the whole command: scraper_upload.py --source b3 --cotahist-file D")
        for label, run in (("1-year lake", command_small), (f"{args.years}-year lake", command_big)):
            peaks = run.peaks_mb
            print(f"  {label:<14} {run.seconds:6.2f} s   driver {peaks.get('driver', 0):5.0f} MB  "
                  f"jvm {peaks.get('jvm', 0):5.0f} MB")
        print(f"  ratio {args.years} years / 1 year   {command_big.seconds / command_small.seconds:6.2f}   (goal <= 1.2)")

        print(f"\nqueries over {args.years} years, each a whole `python -m b3_quotes.catalog.query` process:")
        query = [sys.executable, "-m", "b3_quotes.catalog.query", "--lake-dir", str(big.path)]
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
