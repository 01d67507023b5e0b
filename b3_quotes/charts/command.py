"""Write PNG charts of the refined tables, from the local lake (DuckDB) or Athena (when BUCKET is set).

    python -m b3_quotes.charts --tickers PETR4,VALE3 --start 2019-01-02 --end 2020-06-09
    python -m b3_quotes.charts                      # the configured tickers, every session in the lake

One PNG per run with, per ticker, the close with ma_5 and ma_20, the volume and the monthly
returns; a second PNG with the IBOV-weighted daily return when IBOV portfolio snapshots exist.
Exit codes: 0 done; 1 query failed; 2 bad option or configuration; 3 a ticker has no session
in the range (the others are charted).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from b3_quotes.charts import frames, plots
from b3_quotes.config.settings import ConfigError, load_settings, parse_day, parse_tickers
from b3_quotes.contract.logs import configure_console
from b3_quotes.runtime import build_runtime
from b3_quotes.storage import Lake, write_file_atomically

EXIT_OK, EXIT_QUERY_FAILED, EXIT_USAGE, EXIT_NO_DATA = 0, 1, 2, 3
DEFAULT_OUT_DIR = Path("out")
DPI = 110

Query = Callable[[str], tuple[list[str], list[tuple]]]


@dataclass
class ChartRun:
    quotes_png: Path | None = None
    ibov_png: Path | None = None
    charted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # printed after the notices: the charts' paths come last
    notices: list[str] = field(default_factory=list)


def _rows(query: Query, sql: str) -> pd.DataFrame:
    columns, rows = query(sql)
    return pd.DataFrame(rows, columns=columns)


def save_png(fig: Figure, path: Path) -> Path:
    """Write the PNG so that a reader never sees half of it (storage's atomic write)."""
    def draw(_filesystem: object, temp: str) -> None:
        with open(temp, "wb") as handle:
            fig.savefig(handle, format="png", dpi=DPI)

    write_file_atomically(Lake.local(path.parent), path.name, draw)
    return path


def _span(frame: pd.DataFrame) -> str:
    """`2019-01-02_2020-06-09`: the sessions a chart shows, for its file name."""
    dates = list(frame["date"])
    return f"{min(dates):%Y-%m-%d}_{max(dates):%Y-%m-%d}"


def write_charts(query: Query, tickers: list[str], start: dt.date | None, end: dt.date | None,
                 out_dir: Path, database: str | None = None) -> ChartRun:
    """Query, plot and save; `query` runs SQL on the tables (a Runtime's query)."""
    run = ChartRun()
    daily = frames.daily_frame(_rows(query, frames.daily_sql(tickers, start, end)))
    quoted = set(daily["ticker"])
    run.charted = [t for t in tickers if t in quoted]
    run.missing = [t for t in tickers if t not in run.charted]
    if not run.charted:
        return run
    monthly = frames.monthly_frame(_rows(query, frames.monthly_sql(run.charted, start, end)))
    monthly = frames.cut_months_at_end(monthly, daily, end)
    fig = plots.plot_quotes(daily, monthly, tickers=run.charted)
    run.quotes_png = save_png(fig, out_dir / f"quotes_{'-'.join(run.charted)}_{_span(daily)}.png")
    run.lines.append(f"chart     {run.quotes_png} ({', '.join(run.charted)}: {len(daily)} sessions, "
                     f"{monthly['monthly_return'].notna().sum()} monthly returns)")

    _, tables = query(frames.ibov_table_sql(database))
    ibov = frames.ibov_frame(_rows(query, frames.ibov_sql(start, end))) if tables else None
    if ibov is None or ibov.empty:
        run.notices.append("notice    no IBOV portfolio snapshot covers these sessions: no IBOV chart "
                           "(scrape with --universe ibov to add one)")
        return run
    run.ibov_png = save_png(plots.plot_ibov_weighted_return(ibov), out_dir / f"ibov_weighted_{_span(ibov)}.png")
    run.lines.append(f"chart     {run.ibov_png} (IBOV-weighted daily return, {len(ibov)} sessions)")
    return run


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none opened
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickers", help="comma-separated B3 codes (default TICKERS)")
    parser.add_argument("--start", type=parse_day, help="first session, inclusive (default: the first in the lake)")
    parser.add_argument("--end", type=parse_day, help="last session, inclusive (default: the last in the lake)")
    parser.add_argument("--out-dir", type=Path, default=Path(os.environ.get("CHART_DIR") or DEFAULT_OUT_DIR),
                        help="where the PNGs go, from the current folder (default CHART_DIR or ./out)")
    parser.add_argument("--lake-dir", type=Path, help="local lake folder (default LAKE_DIR or ./lake)")
    args = parser.parse_args(argv)
    configure_console("stderr")  # stdout holds the result; the library's lines (a catalog rebuilt) go beside it
    try:
        settings = load_settings().with_overrides(
            lake_dir=args.lake_dir, tickers=parse_tickers(args.tickers) if args.tickers else None)
        if args.start and args.end and args.end < args.start:
            raise ConfigError(f"--end {args.end} is before --start {args.start}")
        runtime = build_runtime(settings)
        run = write_charts(runtime.query, list(settings.tickers), args.start, args.end, args.out_dir,
                           runtime.database)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # duckdb / Athena errors: one clear line, not a traceback
        print(f"error: query failed: {exc}", file=sys.stderr)
        return EXIT_QUERY_FAILED
    for line in run.notices + run.lines:
        print(line)
    if run.missing:
        print(f"error: no session of {', '.join(run.missing)} in the range"
              + ("; the others are charted" if run.charted else ": nothing charted"), file=sys.stderr)
        return EXIT_NO_DATA
    return EXIT_OK
