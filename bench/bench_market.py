"""Cost at whole-market scale: the commands a user runs on the B3 cash market, each against a baseline.

    .venv/bin/python bench/bench_market.py [--instruments 750] [--years 10] [--seed 7]
    .venv/bin/python bench/bench_market.py --instruments 60 --years 1     # a quick check
    .venv/bin/python bench/bench_market.py --years 3 --backfill-only       # the market backfill alone
    .venv/bin/python bench/bench_market.py --years 3 --backfill-only --raw-only  # its scrape alone

Like bench_history.py (real B3 sessions, seeded synthetic prices, a few suspended tickers),
but the prices are written as COTAHIST files (one yearly file per year, the last session as
a daily file) and every figure is a whole process, cold JVM included:

1. backfill: `scraper_upload.py --source b3 --cotahist-file ... --universe all` over the
   yearly files, against bench_history's DuckDB baseline (same tables, same layout, from raw);
   the same for the 87 IBOV stocks (`--universe ibov`); the command's phases from its own
   output lines; and the backfill again with the job's Spark at local[1] (scaling);
2. daily run: the last session's file on each lake (scrape, refine, catalog refresh);
3. queries: each sql/*.sql and a whole-history query on quotes_daily, each a whole
   `python -m b3_quotes.catalog.query` process, on the market lake and on the IBOV lake.

Peak memory is sampled from /proc over each command's process tree: the Python driver, the
JVM, and the largest other process (Python workers). Figures on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bench_history  # this folder is on sys.path when the script runs
from bench_history import IBOV_FILE, synthetic_quotes, universe
from process_tree import REPO, CommandRun, run_command

COTAHIST_ZIP = REPO / "data/b3/COTAHIST_D25062021.ZIP"
SCRAPER = str(REPO / "scraper/scraper_upload.py")
WHOLE_HISTORY_SQL = ("SELECT ticker, count(*), avg(close_price) FROM quotes_daily "
                     "WHERE ticker = 'PETR4' GROUP BY ticker")
# Output lines of a local run, in the order they come, and the phase each one closes. A line
# missing from a run (a daily run writes too few partitions for progress lines) merges phases.
PHASE_MARKERS = [
    ("scraping ", "Python start, imports, universe (all: COTAHIST parse)"),
    ("tickers ", "fetch (ibov: COTAHIST parse), validate, write raw"),
    ("writing refined/quotes_daily:", "Spark start, raw read, refine"),
    ("writing refined/quotes_monthly:", "write quotes_daily"),
    ("  job ", "write quotes_monthly and the compact tables"),
    ("  catalog ", "catalog refresh"),
]


# ---- the market: real codes, COTAHIST files ------------------------------------------------

def market_codes(count: int) -> list[str]:
    """`count` real codes of B3's round-lot cash market (2021-06-25), PETR4 always among them.

    Past the file's 745 codes, its real-estate funds (CODBDI 12) fill the list.
    """
    from scraper.sources.b3_cotahist import read_cotahist_bytes, standard_lot

    frame = read_cotahist_bytes(COTAHIST_ZIP.read_bytes(), COTAHIST_ZIP.name)
    round_lot = sorted(set(standard_lot(frame)["ticker"]))
    funds = sorted(set(frame.loc[(frame["codbdi"] == "12") & (frame["tpmerc"] == 10), "ticker"]))
    pool = round_lot + funds
    if count > len(pool):
        raise SystemExit(f"--instruments {count}: the bundled file has {len(pool)} codes to use")
    if count > len(round_lot):
        return round_lot + funds[: count - len(round_lot)]
    step = len(round_lot) / count  # spread over the alphabet, not the first codes only
    chosen = [round_lot[int(i * step)] for i in range(count)]
    if "PETR4" not in chosen:
        chosen[-1] = "PETR4"
    return sorted(chosen)


def cotahist_record(row) -> str:
    """One type-01 record of B3's layout (245 characters), round lot of the cash market."""
    def price(value: float) -> str:
        return f"{round(value * 100):013d}"

    volume = int(row.volume)
    record = (f"01{row.trade_date:%Y%m%d}02{row.ticker:<12}010{'BENCH':<12}{'ON':<10}{'':3}{'R$':<4}"
              f"{price(row.open)}{price(row.high)}{price(row.low)}{price(row.close)}{price(row.close)}"
              f"{'0' * 26}{1000:05d}{volume:018d}{volume * round(row.close * 100):018d}{'0' * 13}0{'99991231'}"
              f"{1:07d}{'0' * 13}{'BRBENCACNOR0':<12}{'000'}")
    assert len(record) == 245, len(record)
    return record


def write_cotahist(path: Path, quotes) -> Path:
    """A COTAHIST file (header, records, trailer counting them all), latin-1 with CRLF as B3 writes it."""
    lines = [f"00COTAHIST.{path.stem[-4:]}BOVESPA {dt.date(2025, 1, 2):%Y%m%d}".ljust(245)]
    lines += [cotahist_record(row) for row in quotes.sort_values(["trade_date", "ticker"]).itertuples()]
    lines.append(f"99COTAHIST.2024BOVESPA {dt.date(2025, 1, 2):%Y%m%d}{len(lines) + 1:011d}".ljust(245))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    return path


def write_market_files(folder: Path, quotes) -> tuple[list[Path], Path]:
    """One yearly file per year of history, and the last session as a daily file."""
    folder.mkdir(parents=True, exist_ok=True)
    last = max(quotes["trade_date"])
    history = quotes[quotes["trade_date"] < last]
    years = sorted({d.year for d in history["trade_date"]})
    yearly = [write_cotahist(folder / f"COTAHIST_A{y}.TXT", history[[d.year == y for d in history["trade_date"]]])
              for y in years]
    daily = write_cotahist(folder / f"COTAHIST_D{last:%d%m%Y}.TXT", quotes[quotes["trade_date"] == last])
    return yearly, daily


def scraper_argv(files: list[Path], universe_args: list[str], lake: Path) -> list[str]:
    """The scraper's command line over COTAHIST files into `lake`."""
    args = ["--source", "b3", *[arg for f in files for arg in ("--cotahist-file", str(f))], *universe_args,
            "--lake-dir", str(lake)]
    return [sys.executable, SCRAPER, *args]


def memory(run: CommandRun) -> str:
    p = run.peaks_mb
    return f"driver {p.get('driver', 0):6.0f} MB  jvm {p.get('jvm', 0):6.0f} MB  other {p.get('other', 0):5.0f} MB"


def goal(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def phases(run: CommandRun) -> list[tuple[str, float]]:
    """Each phase's seconds: from the line closing the one before to the line closing it."""
    found, pending, since = [], [], 0.0
    for prefix, name in PHASE_MARKERS:
        pending.append(name)
        at = next((t for t, line in run.lines if line.startswith(prefix)), None)
        if at is not None:
            found.append((" + ".join(pending), at - since))
            pending, since = [], at
    found.append((" + ".join([*pending, "exit (Spark stops)"]), run.seconds - since))
    return found


# ---- one lake: backfill, daily run, queries ------------------------------------------------

@dataclass
class LakeFigures:
    label: str
    backfill: CommandRun
    duckdb: CommandRun
    daily: CommandRun
    queries: dict[str, CommandRun]
    daily_rows: int = 0


def measure_lake(work: Path, label: str, quotes, universe_args: list[str]) -> LakeFigures:
    lake, files = work / f"lake-{label}", work / f"files-{label}"
    yearly, daily_file = write_market_files(files, quotes)
    backfill = run_command(scraper_argv(yearly, universe_args, lake))
    duckdb = run_command([sys.executable, bench_history.__file__, "--phase", "duckdb-backfill", str(lake),
                          str(work / f"duckdb-{label}")])
    shutil.rmtree(work / f"duckdb-{label}", ignore_errors=True)
    daily = run_command(scraper_argv([daily_file], universe_args, lake))
    if "ibov" not in universe_args:  # the weighted-returns query needs the portfolio --universe ibov keeps
        from b3_quotes.storage import Lake
        from scraper.raw_writer import RunStamp, write_portfolio_snapshot
        from scraper.sources.b3_portfolio import parse_portfolio

        write_portfolio_snapshot(Lake.local(lake), parse_portfolio(IBOV_FILE.read_bytes()),
                                 RunStamp("b3", {}, dt.datetime(2025, 4, 7, tzinfo=dt.UTC), "bench-portfolio"))
    query = [sys.executable, "-m", "b3_quotes.catalog.query", "--lake-dir", str(lake)]
    run_command([*query, "--sql", "SELECT 1"])  # the catalog's views are (re)defined once, here
    cases = {p.name: [*query, "--file", str(p)] for p in sorted((REPO / "sql").glob("*.sql"))}
    cases["whole history of PETR4 (quotes_daily)"] = [*query, "--sql", WHOLE_HISTORY_SQL]
    queries = {name: run_command(argv) for name, argv in cases.items()}
    return LakeFigures(label, backfill, duckdb, daily, queries, daily_rows=len(quotes))


def print_lake(f: LakeFigures, n: int, years: int) -> None:
    print(f"\n{f.label}: {n} instruments, {years} year(s), {f.daily_rows:,} quote rows")
    print(f"  backfill, whole command           {f.backfill.seconds:7.1f} s   {memory(f.backfill)}")
    print(f"  DuckDB baseline (from raw)        {f.duckdb.seconds:7.1f} s   {memory(f.duckdb)}")
    print(f"  ratio command / DuckDB            {f.backfill.seconds / f.duckdb.seconds:7.2f}")
    print("  backfill phases (from the command's output lines):")
    for name, seconds in phases(f.backfill):
        print(f"    {name:<46} {seconds:7.2f} s")
    print(f"  daily run (one session), whole    {f.daily.seconds:7.2f} s   {memory(f.daily)}")
    for name, seconds in phases(f.daily):
        print(f"    {name:<46} {seconds:7.2f} s")
    print("  queries, each a whole `python -m b3_quotes.catalog.query` process:")
    for name, run in f.queries.items():
        print(f"    {name:<40} {run.seconds:6.2f} s   peak {run.peaks_mb.get('driver', 0):5.0f} MB")


def print_backfill(work: Path, quotes, n: int, years: int, raw_only: bool = False) -> None:
    """The market backfill alone (`--backfill-only`): what memory per process does as the years grow.

    `raw_only`: stopped at its line `refining locally`, so its figures are the scraper's alone (the
    JVM started in the background meanwhile is in them too)."""
    yearly, _ = write_market_files(work / "files-market", quotes)
    backfill = run_command(scraper_argv(yearly, ["--universe", "all"], work / "lake-market"),
                           stop_at="refining locally" if raw_only else None)
    what = "parse, validate, write raw (stopped as the refine starts)" if raw_only else "whole command"
    print(f"\nmarket: {n} instruments, {years} year(s), {len(quotes):,} quote rows, {len(yearly)} COTAHIST file(s)")
    print(f"  backfill, {what}  {backfill.seconds:7.1f} s   {memory(backfill)}")
    for name, seconds in phases(backfill):
        print(f"    {name:<46} {seconds:7.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instruments", type=int, default=750)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-scaling", action="store_true", help="skip the local[1] backfill")
    parser.add_argument("--backfill-only", action="store_true",
                        help="only the market backfill: its time, phases and peak memory per process")
    parser.add_argument("--raw-only", action="store_true",
                        help="with --backfill-only: stop the backfill as its refine starts (the COTAHIST "
                             "files parsed, validated and written to raw)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-market-"))
    try:
        codes = market_codes(args.instruments)
        market_quotes = synthetic_quotes(args.years, args.seed, codes)
        ibov_quotes = synthetic_quotes(args.years, args.seed, universe())
        print(f"bench: {market_quotes['trade_date'].nunique():,} B3 sessions to {bench_history.LAST_SESSION}, "
              f"seed {args.seed}, {bench_history.SUSPENDED} tickers suspended for three months per lake")
        if args.backfill_only:
            print_backfill(work, market_quotes, len(codes), args.years, args.raw_only)
            return
        market = measure_lake(work, "market", market_quotes, ["--universe", "all"])
        print_lake(market, len(codes), args.years)
        ibov = measure_lake(work, "ibov", ibov_quotes, ["--universe", "ibov", "--ibov-file", str(IBOV_FILE)])
        print_lake(ibov, 87, args.years)

        scaling = None
        if not args.no_scaling:
            yearly = sorted((work / "files-market").glob("COTAHIST_A*.TXT"))
            # The job's Spark with one task slot (b3_quotes.local_mode.spark reads LOCAL_SPARK_CORES).
            scaling = run_command(scraper_argv(yearly, ["--universe", "all"], work / "lake-local1"),
                                  env={"LOCAL_SPARK_CORES": "1"})
            print(f"\nscaling: the market backfill with the job's Spark at local[1] {scaling.seconds:7.1f} s, "
                  f"at local[2] (the default, above) {market.backfill.seconds:7.1f} s: "
                  f"speed-up {scaling.seconds / market.backfill.seconds:5.2f}x   {memory(scaling)}")

        print("\nmarket against IBOV, same years (ratio of seconds):")
        pairs = [("backfill", market.backfill, ibov.backfill), ("daily run", market.daily, ibov.daily)]
        pairs += [(f"query {name}", run, ibov.queries[name]) for name, run in market.queries.items()]
        for name, big, small in pairs:
            print(f"  {name:<46} {big.seconds:7.2f} s vs {small.seconds:7.2f} s   {big.seconds / small.seconds:5.2f}x")

        print("\ngoals:")
        ratio = market.backfill.seconds / market.duckdb.seconds
        print(f"  {goal(ratio <= 1.0)}  market backfill no slower than DuckDB: ratio {ratio:.2f} (<= 1.0)")
        print(f"  {goal(market.daily.seconds <= 10)}  daily run on the market lake {market.daily.seconds:.2f} s (<= 10 s)")
        daily_ratio = market.daily.seconds / ibov.daily.seconds
        print(f"  {goal(daily_ratio <= 1.2)}  daily run market / IBOV {daily_ratio:.2f} (<= 1.2)")
        driver = market.backfill.peaks_mb.get("driver", 0) / max(ibov.backfill.peaks_mb.get("driver", 0), 1)
        print(f"  {goal(driver <= 1.5)}  backfill driver peak memory market / IBOV {driver:.2f} (<= 1.5)")
        for name, run in market.queries.items():
            print(f"  {goal(run.seconds <= 1.0)}  query {name} on the market lake {run.seconds:.2f} s (<= 1 s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
