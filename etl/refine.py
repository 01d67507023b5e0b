"""The job's compute core: read what a run needs, recompute it, rewrite only what can change.

A run changes some days of some tickers. Its cost must follow the run, not the lake's
history: it reads, per ticker, the raw sessions its windows need (REACH earlier sessions,
the first changed month, the session before it) up to the last session whose values can
change (REACH sessions later, the next month with sessions), and rewrites only those rows.
Which sessions a ticker has is read from the compact daily table (a few columns of one
file per year), so a ticker suspended for months is widened exactly as far as it needs.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from pyspark.sql import SparkSession

from contract.tables import QUOTES_DAILY, QUOTES_DAILY_COMPACT, QUOTES_MONTHLY, QUOTES_MONTHLY_COMPACT
from etl.lake_io import (
    IO_THREADS,
    collect_arrow,
    compact_years,
    list_raw_days,
    merge_compact,
    read_compact_year,
    read_raw_days,
    spark_frame_from_arrow,
    write_partitions,
)
from etl.transforms import MOVING_AVERAGE_SESSIONS, refine_daily, select_changed, summarize_monthly

# Sessions the longest window reaches back, and so the sessions a change reaches forward.
REACH = max(MOVING_AVERAGE_SESSIONS) - 1


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _month_end(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def _enough_before(known: list[dt.date], first: dt.date) -> bool:
    before = [d for d in known if d < first]
    return len(before) >= REACH and before[0] < _month_start(first)


def _enough_after(known: list[dt.date], last: dt.date) -> bool:
    after = [d for d in known if d > last]
    return len(after) >= REACH and after[-1] > _month_end(last)


def raw_days_needed(sessions: dict[str, list[dt.date]], tickers: list[str], changed_days: list[str]) -> list[str]:
    """The raw days a run over `tickers` and `changed_days` must read, given each ticker's sessions.

    Per ticker: from the earliest of its REACH-th session before the first changed day, the
    first changed month's start and its last session before that month; to the latest of
    its REACH-th session after the last changed day, the last changed month's end and the
    end of its next month with sessions. Widened per ticker: a gap costs only that ticker's days.
    """
    first, last = dt.date.fromisoformat(changed_days[0]), dt.date.fromisoformat(changed_days[-1])
    days = set(changed_days)
    for ticker in tickers:
        known = sorted(sessions.get(ticker, ()))
        before = [d for d in known if d < first]
        after = [d for d in known if d > last]
        lo = min([_month_start(first), *before[-REACH:][:1], *[d for d in before if d < _month_start(first)][-1:]])
        next_month = [_month_end(d) for d in after if d > _month_end(last)][:1]
        hi = max([_month_end(last), *after[:REACH][-1:], *next_month])
        days.update(d.isoformat() for d in known if lo <= d <= hi)
    return sorted(days)


def known_sessions(lake_root: str, tickers: list[str], first: dt.date, last: dt.date) -> dict[str, list[dt.date]] | None:
    """Each ticker's refined sessions around [first, last], from the compact daily table.

    Reads two columns of the years the run spans, then earlier (later) years only while a
    ticker still lacks the sessions its windows need before (after) them. None when the lake
    has no compact table yet: its first run, or a lake refined before that table existed.
    """
    years = compact_years(lake_root, QUOTES_DAILY_COMPACT.folder)
    if not years:
        return None
    found: dict[str, set[dt.date]] = defaultdict(set)

    def load(year_list: list[str]) -> None:
        with ThreadPoolExecutor(max(1, min(IO_THREADS, len(year_list)))) as pool:
            for table in pool.map(lambda y: read_compact_year(lake_root, QUOTES_DAILY_COMPACT.folder, y,
                                                               ["ticker", "trade_date"], tickers), year_list):
                if table is not None:
                    for ticker, day in zip(table["ticker"].to_pylist(), table["trade_date"].to_pylist()):
                        found[ticker].add(day)

    load([y for y in years if first.year <= int(y) <= last.year])
    for year in reversed([y for y in years if int(y) < first.year]):
        if all(_enough_before(sorted(found[t]), first) for t in tickers):
            break
        load([year])
    for year in [y for y in years if int(y) > last.year]:
        if all(_enough_after(sorted(found[t]), last) for t in tickers):
            break
        load([year])
    return {t: sorted(days) for t, days in found.items()}


def refine_changes(spark: SparkSession, lake_root: str, tickers: list[str], changed_days: list[str]) -> dict:
    """Recompute and rewrite every refined row a change to `tickers` on `changed_days` can move.

    Equal to a full recompute: the rows read hold every session each rewritten row depends
    on, and the rows rewritten are all those that can differ. Writes the partitioned tables,
    then folds the same rows into the compact tables (only the years touched).
    """
    changed_days = sorted(set(changed_days))
    first, last = dt.date.fromisoformat(changed_days[0]), dt.date.fromisoformat(changed_days[-1])
    sessions = known_sessions(lake_root, sorted(tickers), first, last)
    if sessions is None:
        # Nothing says which sessions exist: recompute every ticker from all of raw, once.
        days = list_raw_days(lake_root)
        read_tickers, changed_days = None, days
    else:
        days = raw_days_needed(sessions, sorted(tickers), changed_days)
        read_tickers = sorted(tickers)
    raw = spark_frame_from_arrow(spark, read_raw_days(lake_root, days, read_tickers))
    daily = refine_daily(raw).cache()
    daily_out, monthly_out = select_changed(daily, summarize_monthly(daily), changed_days)
    daily_rows, monthly_rows = collect_arrow(daily_out), collect_arrow(monthly_out)
    daily.unpersist()
    write_partitions(daily_rows, lake_root, QUOTES_DAILY.folder, QUOTES_DAILY.partition_names)
    write_partitions(monthly_rows, lake_root, QUOTES_MONTHLY.folder, QUOTES_MONTHLY.partition_names)
    # Sorted by ticker, then by the table's period (dt or month).
    merge_compact(lake_root, QUOTES_DAILY_COMPACT.folder, daily_rows, list(reversed(QUOTES_DAILY.partition_names)))
    merge_compact(lake_root, QUOTES_MONTHLY_COMPACT.folder, monthly_rows,
                  list(reversed(QUOTES_MONTHLY.partition_names)))
    return {"raw_days_read": len(days), "daily_rows": daily_rows.num_rows, "monthly_rows": monthly_rows.num_rows,
            "written": {QUOTES_DAILY.name: partition_folders(daily_rows, QUOTES_DAILY.partition_names),
                        QUOTES_MONTHLY.name: partition_folders(monthly_rows, QUOTES_MONTHLY.partition_names)}}


def partition_folders(rows, partition_by: list[str]) -> list[str]:
    """`dt=2024-01-02/ticker=PETR4` (relative to the table's folder) of every partition `rows` hold, sorted."""
    values = zip(*(rows[c].to_pylist() for c in partition_by))
    return sorted({"/".join(f"{c}={v}" for c, v in zip(partition_by, key)) for key in values})
