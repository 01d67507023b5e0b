"""Raw Parquet, one file per day and run content, then the run's manifest (what commits the run)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from b3_quotes.contract.arrow import arrow_schema
from b3_quotes.contract.layout import RunManifest, day_file_key, manifest_key
from b3_quotes.contract.tables import CORPORATE_EVENTS, IBOV_PORTFOLIO, QUOTE_ISSUES, QUOTE_NUMBERS, RAW_QUOTES, Table
from b3_quotes.storage import Lake
from scraper.progress import tracked
from scraper.validation import ACTION_KEPT, ACTION_REJECTED, REASON_FUTURE, REASON_OUTSIDE_CALENDAR

logger = logging.getLogger(__name__)
UNDATED_REASONS = (REASON_FUTURE, REASON_OUTSIDE_CALENDAR)

# traded_value and trades are published by B3 only (COTAHIST VOLTOT, TOTNEG).
RAW_QUOTES_SCHEMA = arrow_schema(RAW_QUOTES)


def parquet_bytes(table: pa.Table) -> bytes:
    """A small Parquet file (snappy), whole in memory: the lake writes it in one piece."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="snappy")
    return buffer.getvalue()


def new_run_id(now: dt.datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class WrittenRun:
    run_id: str
    days: list[str]  # the raw day folders written
    keys: list[str]
    rows: int
    manifest_key: str  # empty when the run wrote no table the refine reads (no manifest, nothing triggered)
    issue_keys: list[str] = field(default_factory=list)
    by_table: dict[str, list[str]] = field(default_factory=dict)  # every file written, by its table's name

    def keys_of(self, table: Table) -> list[str]:
        return self.by_table.get(table.name, [])


def raw_file_name(source: str, tickers: list[str]) -> str:
    """Named by its content, so re-running the same scrape replaces the file, never duplicates it."""
    digest = hashlib.sha1(",".join(sorted(tickers)).encode()).hexdigest()[:12]
    return f"{source}-{digest}.parquet"


def _optional(frame: pd.DataFrame, column: str, dtype: str) -> pd.Series:
    if column in frame:
        return pd.Series(frame[column]).astype(dtype)
    return pd.Series([None] * len(frame), dtype=dtype)


def source_symbols(frame: pd.DataFrame, symbols: dict[str, str]) -> list[str]:
    """The source's name for each row: its instrument when a source tells several apart."""
    if "instrument" in frame:
        return [str(i) for i in frame["instrument"]]
    return [symbols.get(str(t), str(t)) for t in frame["ticker"]]


def to_raw_table(quotes: pd.DataFrame, source: str, symbols: dict[str, str],
                 ingested_at: dt.datetime, run_id: str) -> pa.Table:
    """The rows in raw's schema, by day then ticker: one conversion for a run of any number of days."""
    frame = quotes.sort_values(["trade_date", "ticker"], kind="stable")
    volume = frame["volume"].round().astype("Int64")
    columns = {
        "trade_date": pa.array(list(frame["trade_date"]), pa.date32()),
        "ticker": pa.array(list(frame["ticker"]), pa.string()),
        **{c: pa.array(frame[c].to_numpy(dtype="float64"), pa.float64(), from_pandas=True)
           for c in QUOTE_NUMBERS if c != "volume"},
        "volume": pa.array(volume, pa.int64(), from_pandas=True),
        "traded_value": pa.array(_optional(frame, "traded_value", "float64"), pa.float64(), from_pandas=True),
        "trades": pa.array(_optional(frame, "trades", "Int64"), pa.int64(), from_pandas=True),
        "source": pa.array([source] * len(frame), pa.string()),
        "source_symbol": pa.array(source_symbols(frame, symbols), pa.string()),
        "ingested_at": pa.array([ingested_at] * len(frame), pa.timestamp("us", tz="UTC")),
        "run_id": pa.array([run_id] * len(frame), pa.string()),
        "dismes": pa.array(_optional(frame, "dismes", "Int32"), pa.int32(), from_pandas=True),
        "prev_b3_session": pa.array([None if d is None or pd.isna(d) else d
                                     for d in _optional(frame, "prev_b3_session", "object")], pa.date32()),
    }
    return pa.Table.from_pydict(columns, schema=RAW_QUOTES_SCHEMA)


def days_of(table: pa.Table) -> list[tuple[dt.date, pa.Table]]:
    """Each day of a table sorted by trade_date, and that day's rows (slices: no copy)."""
    if not table.num_rows:
        return []
    days = table["trade_date"].to_numpy()
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    ends = [*starts[1:], len(days)]
    return [(days[start].item(), table.slice(start, end - start)) for start, end in zip(starts, ends)]


@dataclass(frozen=True)
class RunStamp:
    """What every row of a run is written with: the source, its names for the tickers, when, the run."""

    source: str
    symbols: dict[str, str]
    now: dt.datetime
    run_id: str


def write_quotes(lake: Lake, quotes: pd.DataFrame, stamp: RunStamp) -> list[str]:
    """One Parquet file per trading day, named by its content (source and tickers)."""
    keys = []
    by_day = days_of(to_raw_table(quotes, stamp.source, stamp.symbols, stamp.now, stamp.run_id))
    # A backfill writes one file per day: show its progress (a few days need none).
    for day, table in tracked(by_day, len(by_day), "writing raw days", unit="day", min_total=20):
        key = day_file_key(RAW_QUOTES.folder, day.isoformat(), raw_file_name(stamp.source, table["ticker"].to_pylist()))
        lake.write_bytes(key, parquet_bytes(table))
        keys.append(key)
    return keys


@dataclass(frozen=True)
class RawWriter:
    """How one raw table's rows are written, and what the refine makes of them."""

    table: Table
    write: Callable[[Lake, pd.DataFrame, RunStamp], list[str]]
    # The column whose days the refine rewrites when rows of this table arrive; None: the refine
    # does not read the table, and its rows alone commit no run (no manifest, nothing triggered).
    refines_days_of: str | None = None


def write_raw_run(lake: Lake, tables: dict[Table, pd.DataFrame], stamp: RunStamp) -> WrittenRun:
    """Write every table of a run (RAW_WRITERS, in their order), then the run's manifest last when
    a table the refine reads has rows: its days and tickers, even when they come before the
    sessions they change (an events file alone).

    A crash before the manifest leaves complete files and no trigger; re-running the same command
    rewrites the same files and triggers the refinement once. With no manifest, `manifest_key` is
    empty.
    """
    rows = {table: frame for table, frame in tables.items() if frame is not None and not frame.empty}
    unknown = [table.name for table in rows if table not in RAW_WRITERS]
    if unknown:
        raise ValueError(f"no raw writer for {', '.join(unknown)}")
    keys = {table: writer.write(lake, rows[table], stamp) for table, writer in RAW_WRITERS.items() if table in rows}
    refined = {table: frame for table, frame in rows.items() if RAW_WRITERS[table].refines_days_of}
    quote_rows = len(rows.get(RAW_QUOTES, ()))
    written = WrittenRun(stamp.run_id, [], keys.get(RAW_QUOTES, []), quote_rows, "", keys.get(QUOTE_ISSUES, []),
                         {table.name: table_keys for table, table_keys in keys.items()})
    if not refined:
        return written
    days = sorted({str(day) for table, frame in refined.items() for day in frame[RAW_WRITERS[table].refines_days_of]})
    tickers = sorted({str(t) for frame in refined.values() for t in frame["ticker"]})
    issues = rows.get(QUOTE_ISSUES)
    manifest = RunManifest(stamp.run_id, days, tickers, dataset=RAW_QUOTES.folder, source=stamp.source,
                           created_at=stamp.now.isoformat(), rows=quote_rows,
                           files=[*keys.get(RAW_QUOTES, []), *(k for table in refined if table != RAW_QUOTES
                                                                for k in keys[table])],
                           rejected_rows=0 if issues is None else int(sum(a != ACTION_KEPT for a in issues["action"])),
                           issue_files=written.issue_keys)
    written.days, written.manifest_key = days, manifest_key(stamp.run_id)
    lake.write_bytes(written.manifest_key, manifest.to_json())
    return written


# The values as the source gave them: doubles, so inf and -5 fit too.
QUOTE_ISSUES_SCHEMA = arrow_schema(QUOTE_ISSUES)


def to_issues_table(rows: pd.DataFrame, source: str, symbols: dict[str, str], ingested_at: dt.datetime,
                    run_id: str) -> pa.Table:
    frame = rows.sort_values(["ticker", "reason"], kind="stable")
    days = [None if d is None or pd.isna(d) else d for d in frame["trade_date"]]
    columns = {
        "trade_date": pa.array(days, pa.date32()),
        "ticker": pa.array(list(frame["ticker"]), pa.string()),
        "reason": pa.array(list(frame["reason"]), pa.string()),
        "action": pa.array(list(frame["action"].fillna(ACTION_REJECTED)), pa.string()),
        "detail": pa.array(list(frame["detail"]), pa.string()),
        **{c: pa.array(pd.Series(frame[c], dtype="float64").to_numpy(), pa.float64(), from_pandas=True)
           for c in QUOTE_NUMBERS},
        "source": pa.array([source] * len(frame), pa.string()),
        "source_symbol": pa.array(source_symbols(frame, symbols), pa.string()),
        "ingested_at": pa.array([ingested_at] * len(frame), pa.timestamp("us", tz="UTC")),
        "run_id": pa.array([run_id] * len(frame), pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=QUOTE_ISSUES_SCHEMA)


def write_quote_issues(lake: Lake, issues: pd.DataFrame, stamp: RunStamp) -> list[str]:
    """The run's data-quality report: every row with an issue, partitioned by its day like raw.

    Files are named like raw files (source and tickers), so re-running a scrape replaces its
    report instead of adding a copy. A row whose day is no session day to file it under
    (unreadable, in the future, outside the calendar) goes under the run's day: a file of
    made-up dates writes one file, not one per date.
    """
    source, now = stamp.source, stamp.now
    undated = issues["trade_date"].isna() | issues["reason"].isin(UNDATED_REASONS)
    days = pd.Series([f"{now:%Y-%m-%d}" if u else str(d) for d, u in zip(issues["trade_date"], undated)],
                     index=issues.index)
    keys = []
    for day, rows in issues.groupby(days, sort=True):
        table = to_issues_table(rows, source, stamp.symbols, now, stamp.run_id)
        key = day_file_key(QUOTE_ISSUES.folder, str(day), raw_file_name(source, list(rows["ticker"])))
        lake.write_bytes(key, parquet_bytes(table))
        keys.append(key)
    return keys


PORTFOLIO_SCHEMA = arrow_schema(IBOV_PORTFOLIO)


def write_portfolio_snapshot(lake: Lake, portfolio: pd.DataFrame, stamp: RunStamp) -> list[str]:
    """One file per portfolio date: fetching the same day's portfolio again replaces it."""
    day = portfolio["portfolio_date"].iloc[0]
    table = pa.Table.from_pydict({
        "portfolio_date": pa.array(list(portfolio["portfolio_date"]), pa.date32()),
        **{c: pa.array(list(portfolio[c]), PORTFOLIO_SCHEMA.field(c).type)
           for c in ("ticker", "name", "type", "segment", "weight_pct", "theoretical_qty")},
        "ingested_at": pa.array([stamp.now] * len(portfolio), pa.timestamp("us", tz="UTC")),
    }, schema=PORTFOLIO_SCHEMA)
    key = day_file_key(IBOV_PORTFOLIO.folder, day.isoformat(), "ibov.parquet")
    lake.write_bytes(key, parquet_bytes(table))
    logger.info(f"universe  snapshot saved to {lake.describe(key)}")
    return [key]


EVENTS_SCHEMA = arrow_schema(CORPORATE_EVENTS)


def write_corporate_events(lake: Lake, events: pd.DataFrame, stamp: RunStamp) -> list[str]:
    """The events (scraper.events' EVENT_COLUMNS, and `source` when not the run's), one file per ex
    date, source and ticker: loading the same events again replaces that file, so nothing is added twice."""
    now, run_id = stamp.now, stamp.run_id
    if "source" not in events:
        events = events.assign(source=stamp.source)
    else:
        events = events.assign(source=events["source"].fillna(stamp.source))
    keys = []
    for group, rows in events.groupby(["ex_date", "source", "ticker"], sort=True):
        day, source, ticker = cast(tuple[dt.date, str, str], group)
        table = pa.Table.from_pydict({
            "ticker": pa.array(list(rows["ticker"]), pa.string()),
            "ex_date": pa.array(list(rows["ex_date"]), pa.date32()),
            "kind": pa.array(list(rows["kind"]), pa.string()),
            "share_ratio": pa.array(rows["share_ratio"].to_numpy(dtype="float64"), pa.float64()),
            "cash_per_share": pa.array(rows["cash_per_share"].to_numpy(dtype="float64"), pa.float64()),
            "source": pa.array(list(rows["source"]), pa.string()),
            "source_label": pa.array(list(rows["source_label"]), pa.string()),
            "ingested_at": pa.array([now] * len(rows), pa.timestamp("us", tz="UTC")),
            "run_id": pa.array([run_id] * len(rows), pa.string()),
        }, schema=EVENTS_SCHEMA)
        key = day_file_key(CORPORATE_EVENTS.folder, day.isoformat(), f"{source}-{ticker}.parquet")
        lake.write_bytes(key, parquet_bytes(table))
        keys.append(key)
    return keys


# Every raw table a run may hold, in the order a run writes them (the manifest comes after all).
RAW_WRITERS: dict[Table, RawWriter] = {writer.table: writer for writer in (
    RawWriter(QUOTE_ISSUES, write_quote_issues),
    RawWriter(CORPORATE_EVENTS, write_corporate_events, refines_days_of="ex_date"),
    RawWriter(IBOV_PORTFOLIO, write_portfolio_snapshot),
    RawWriter(RAW_QUOTES, write_quotes, refines_days_of="trade_date"),
)}
