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
import logging
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from b3_quotes.contract.layout import PROCESSED_RUNS
from b3_quotes.contract.tables import QUOTES_DAILY, QUOTES_DAILY_COMPACT, RAW_QUOTES, REFINED_TABLES, compact_of
from b3_quotes.storage import Lake, LakeDataMissing
from etl.raw_reader import list_raw_days, raw_files, read_events, read_raw
from etl.refined_writer import compact_years, merge_compact, read_compact_year, write_partitions
from etl.task_errors import LakeFileError, lake_file_errors
from etl.transforms import (
    REACH,
    build_tables,
    events_in_effect,
    refine_daily_with_events,
    select_changed,
)

logger = logging.getLogger(__name__)


@dataclass
class Counts:
    """What a refine did: the rows it wrote of each refined table, the raw days it read, and
    whether it recomputed all of raw (a rebuild: nothing is left for a later step)."""

    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys((t.name for t in REFINED_TABLES), 0))
    raw_days_read: int = 0
    rebuilt: bool = False

    def add(self, other: Counts) -> None:
        for name, rows in other.rows.items():
            self.rows[name] = self.rows.get(name, 0) + rows
        self.raw_days_read += other.raw_days_read

    def __str__(self) -> str:
        """`12 daily and 3 monthly rows`: each refined table's rows, by the table's last word."""
        return " and ".join(f"{rows} {name.rsplit('_', 1)[-1]}" for name, rows in self.rows.items()) + " rows"


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


def sessions_needed(sessions: dict[str, list[dt.date]], tickers: list[str],
                    changed_days: list[str]) -> dict[str, list[dt.date]]:
    """Per ticker, the sessions it is known to have that a run over `changed_days` must read.

    Per ticker: from the earliest of its REACH-th session before the first changed day, the
    first changed month's start and its last session before that month; to the latest of
    its REACH-th session after the last changed day, the last changed month's end and the
    end of its next month with sessions. Widened per ticker: a gap costs only that ticker's days.
    """
    first, last = dt.date.fromisoformat(changed_days[0]), dt.date.fromisoformat(changed_days[-1])
    needed = {}
    for ticker in tickers:
        known = sorted(sessions.get(ticker, ()))
        before = [d for d in known if d < first]
        after = [d for d in known if d > last]
        lo = min([_month_start(first), *before[-REACH:][:1], *[d for d in before if d < _month_start(first)][-1:]])
        next_month = [_month_end(d) for d in after if d > _month_end(last)][:1]
        hi = max([_month_end(last), *after[:REACH][-1:], *next_month])
        needed[ticker] = [d for d in known if lo <= d <= hi]
    return needed


def raw_days_needed(needed: dict[str, list[dt.date]], changed_days: list[str]) -> list[str]:
    """The raw days a run must read: the changed days and every ticker's `needed` sessions
    (sessions_needed's answer)."""
    return sorted({*changed_days, *(d.isoformat() for known in needed.values() for d in known)})


def known_sessions(lake: Lake, tickers: list[str], first: dt.date, last: dt.date) -> dict[str, list[dt.date]] | None:
    """Each ticker's refined sessions around [first, last], from the compact daily table.

    Reads two columns of the years the run spans, then earlier (later) years only while a
    ticker still lacks the sessions its windows need before (after) them. None when the lake
    has no compact table yet: its first run, or a lake refined before that table existed.
    LakeFileError when a year's file cannot be read.
    """
    years = compact_years(lake, QUOTES_DAILY_COMPACT)
    if not years:
        return None
    found: dict[str, set[dt.date]] = defaultdict(set)

    def load(year_list: list[str]) -> None:
        with ThreadPoolExecutor(max(1, min(8, len(year_list)))) as pool:
            for table in pool.map(lambda y: read_compact_year(lake, QUOTES_DAILY_COMPACT, y,
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


def _check_files_exist(lake: Lake, files: dict[str, list[str]], expected: Sequence[str]) -> None:
    """Every raw file a manifest lists must still be there."""
    present = {key for keys in files.values() for key in keys}
    for key in sorted(set(expected)):
        if key.startswith(RAW_QUOTES.prefix) and key not in present:
            raise LakeDataMissing(f"raw file {lake.describe(key)} is missing (a scrape run's "
                                 "manifest lists it): restore it or re-run that scrape; nothing was refined")


def _check_sessions_read(spark: SparkSession, daily: DataFrame, needed: dict[str, list[dt.date]], lake: Lake) -> None:
    """Every session the lake's history says a ticker has, and the run reads, must be in raw."""
    pairs = [(t, d) for t, days in needed.items() for d in days]
    if not pairs:
        return
    expected = spark.createDataFrame(pairs, "ticker string, trade_date date")
    missing = sorted(expected.join(daily.select("ticker", "trade_date"), ["ticker", "trade_date"], "left_anti")
                     .limit(3).collect(), key=lambda row: (row["trade_date"], row["ticker"]))
    if missing:
        first = missing[0]
        folder = lake.describe(f"{RAW_QUOTES.folder}/dt={first['trade_date']}/")
        raise LakeDataMissing(f"raw day {first['trade_date']} of {first['ticker']} is missing: the refined history "
                             f"has that session but no raw file in {folder} holds it (restore the file or re-run "
                             "the scrape of that day); nothing was refined")


def refine_changes(spark: SparkSession, lake: Lake, tickers: list[str], changed_days: list[str],
                   expected_files: Sequence[str] = ()) -> Counts:
    """Recompute and rewrite every refined row a change to `tickers` on `changed_days` can move.

    Equal to a full recompute: the rows read hold every session each rewritten row depends
    on, and the rows rewritten are all those that can differ. Raw that the run needs and
    cannot find stops it before anything is written (LakeDataMissing). A compact file that
    cannot be read is derived data: it is named and every refined table is rebuilt from raw.
    `expected_files` are the raw files the run's manifests list: each must be there.
    """
    changed_days = sorted(set(changed_days))
    first, last = dt.date.fromisoformat(changed_days[0]), dt.date.fromisoformat(changed_days[-1])
    try:
        sessions = known_sessions(lake, sorted(tickers), first, last)
        if sessions is None and not refined_before(lake):
            sessions = {}  # nothing refined yet: a first backfill, refined like any run (a year a step)
        if sessions is None:  # refined by an older version: every ticker from all of raw, once
            return rebuild(spark, lake, expected_files)
        needed = sessions_needed(sessions, sorted(tickers), changed_days)
        return _refine(spark, lake, read_days=raw_days_needed(needed, changed_days), tickers=sorted(tickers),
                       changed_days=changed_days, expected_files=expected_files, needed=needed)
    except LakeFileError as exc:
        if exc.key.startswith(RAW_QUOTES.prefix):
            raise _raw_missing(lake, exc) from None
        logger.warning(f"{lake.describe(exc.key)} cannot be read ({exc.reason}): "
                       "rebuilding the refined tables from raw")
        return rebuild(spark, lake, expected_files)


def refined_before(lake: Lake) -> bool:
    """Whether a run has ever finished refining in this lake (its records of processed runs).

    A lake with refined files but no compact table and no such record is a first backfill that was
    stopped part-way: its next run goes on step by step. With a record, the lake was refined by a
    version that wrote no compact table, and is rebuilt once.
    """
    return bool(lake.list_files(PROCESSED_RUNS))


def rebuild(spark: SparkSession, lake: Lake, expected_files: Sequence[str] = ()) -> Counts:
    """Recompute every refined table from all of raw and replace the compact years whole.

    Every session the partitioned daily table holds must be in raw: a rebuild without it would
    rewrite its neighbours' returns and averages as if it had never traded (LakeDataMissing).
    """
    days = list_raw_days(lake)
    refined = refined_sessions(lake)
    if not days:
        if refined:
            ticker = min(refined, key=lambda t: (min(refined[t]), t))
            raise LakeDataMissing(f"raw holds no day, but the refined history has {sum(map(len, refined.values()))} "
                                  f"sessions (first: {ticker} {min(refined[ticker])}): restore raw or re-run those "
                                  "scrapes; nothing was refined")
        return Counts(rebuilt=True)
    try:
        counts = _refine(spark, lake, read_days=days, tickers=None, changed_days=days,
                         expected_files=expected_files, needed=refined, replace_compact=True)
    except LakeFileError as exc:
        raise _raw_missing(lake, exc) from None
    counts.rebuilt = True
    return counts


def refined_sessions(lake: Lake) -> dict[str, list[dt.date]]:
    """Each ticker's sessions in the partitioned daily table, from its folder names (one listing)."""
    found: dict[str, list[dt.date]] = defaultdict(list)
    for key in lake.list_files(QUOTES_DAILY.folder, recursive=True):
        parts = dict(p.split("=", 1) for p in key.split("/") if "=" in p)
        if "dt" in parts and "ticker" in parts:
            found[parts["ticker"]].append(dt.date.fromisoformat(parts["dt"]))
    return dict(found)


def recompute(spark: SparkSession, lake: Lake) -> dict[str, DataFrame]:
    """Every refined table's rows from all of raw, as a rebuild would write them (nothing is written)."""
    days = list_raw_days(lake)
    return build_tables(refined_daily_from_raw(spark, lake, days, raw_files(lake, days), None))


def refined_daily_from_raw(spark: SparkSession, lake: Lake, days: list[str], files: dict[str, list[str]],
                           tickers: list[str] | None) -> DataFrame:
    """The daily rows of `days` of raw (their `files`) for `tickers` (all when None), corrected for
    the corporate events whose ex date falls in those days: what a run and verify both compute."""
    raw = read_raw(spark, lake, [key for keys in files.values() for key in keys], tickers)
    events = read_events(spark, lake, days[0], days[-1], tickers) if days else None
    return refine_daily_with_events(raw, None if events is None else events_in_effect(events))


def _raw_missing(lake: Lake, exc: LakeFileError) -> LakeDataMissing:
    return LakeDataMissing(f"raw file {lake.describe(exc.key)} is {exc.kind} ({exc.reason}): "
                           "restore it or re-run that scrape; nothing was refined")


def _refine(spark: SparkSession, lake: Lake, *, read_days: list[str], tickers: list[str] | None,
            changed_days: list[str], expected_files: Sequence[str], needed: dict[str, list[dt.date]],
            replace_compact: bool = False) -> Counts:
    """Read `read_days` of raw for `tickers` (all when None) in Spark tasks, check them, rewrite what
    `changed_days` can move: each refined table's partitions, then its compact years."""
    files = raw_files(lake, read_days)
    _check_files_exist(lake, files, list(expected_files))
    daily = refined_daily_from_raw(spark, lake, read_days, files, tickers).cache()
    try:
        with lake_file_errors():
            _check_sessions_read(spark, daily, needed, lake)
        # A changed day may be an event's ex date that is no session of a ticker (a late events
        # file): the session the event applies to is changed too (select_changed's event_days).
        changed = {name: rows.cache() for name, rows in select_changed(build_tables(daily), changed_days,
                                                                         changed_days).items()}
        # What the rewritten rows can span: the days read from the first changed one on.
        later = [d for d in read_days if d >= changed_days[0]] or changed_days
        folders = {"dt": len(later), "month": len({d[:7] for d in later}) + 1}
        years = len({d[:4] for d in later}) + 1
        # Independent Spark jobs, submitted together: a small run's latency is one job's, not four.
        with ThreadPoolExecutor(2) as pool:
            written = {table.name: pool.submit(write_partitions, changed[table.name], lake, table,
                                               folders[table.partition_names[0]]) for table in REFINED_TABLES}
            counts = Counts({name: done.result().rows for name, done in written.items()}, len(read_days))
            # Sorted by ticker, then by the table's period (dt or month).
            compacts = [pool.submit(merge_compact, changed[table.name], lake, compact_of(table), table.compact_key,
                                    replace_compact, years) for table in REFINED_TABLES]
            for done in compacts:
                done.result()
    finally:
        spark.catalog.clearCache()
    return counts
