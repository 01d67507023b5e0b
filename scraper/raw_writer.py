"""Raw Parquet, one file per day and run content, then the run's manifest (what commits the run)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import secrets
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from b3_quotes.contract.arrow import arrow_schema
from b3_quotes.contract.layout import RunManifest, day_file_key, manifest_key
from b3_quotes.contract.tables import CORPORATE_EVENTS, IBOV_PORTFOLIO, QUOTE_ISSUES, QUOTE_NUMBERS, RAW_QUOTES
from b3_quotes.storage import Lake
from scraper.progress import tracked
from scraper.validation import ACTION_KEPT, ACTION_REJECTED, REASON_FUTURE, REASON_OUTSIDE_CALENDAR

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
    manifest_key: str
    issue_keys: list[str] = field(default_factory=list)


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


def write_raw_quotes(lake: Lake, quotes: pd.DataFrame, *, source: str,
                     symbols: dict[str, str], now: dt.datetime, run_id: str,
                     issues: pd.DataFrame | None = None, events: pd.DataFrame | None = None) -> WrittenRun:
    """Write one Parquet file per trading day, the data-quality issues, the corporate events,
    then the run's manifest last.

    A crash before the manifest leaves complete day files and no trigger; re-running the
    same command rewrites the same files and triggers the refinement once. The manifest names
    the events' ex dates and tickers too: the refine rewrites what they change, even when they
    come after the sessions they affect (an events file alone).
    """
    issue_keys = write_quote_issues(lake, issues, source=source, symbols=symbols, now=now, run_id=run_id)
    event_keys = write_corporate_events(lake, events, now=now, run_id=run_id)
    keys, partitions = [], []
    by_day = days_of(to_raw_table(quotes, source, symbols, now, run_id)) if len(quotes) else []
    # A backfill writes one file per day: show its progress (a few days need none).
    for day, table in tracked(by_day, len(by_day), "writing raw days", unit="day", min_total=20):
        dt_value = day.isoformat()
        key = day_file_key(RAW_QUOTES.folder, dt_value, raw_file_name(source, table["ticker"].to_pylist()))
        lake.write_bytes(key, parquet_bytes(table))
        keys.append(key)
        partitions.append(dt_value)
    if events is not None and not events.empty:
        partitions = sorted({*partitions, *(d.isoformat() for d in events["ex_date"])})
    tickers = sorted(str(t) for t in {*quotes["ticker"], *([] if events is None else events["ticker"])})
    manifest = RunManifest(run_id, partitions, tickers, dataset=RAW_QUOTES.folder,
                           source=source, created_at=now.isoformat(), rows=int(len(quotes)), files=[*keys, *event_keys],
                           rejected_rows=0 if issues is None else int(sum(a != ACTION_KEPT for a in issues["action"])),
                           issue_files=issue_keys)
    key = manifest_key(run_id)
    lake.write_bytes(key, manifest.to_json())
    return WrittenRun(run_id, partitions, keys, int(len(quotes)), key, issue_keys)


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


def write_quote_issues(lake: Lake, issues: pd.DataFrame | None, *, source: str,
                       symbols: dict[str, str], now: dt.datetime, run_id: str) -> list[str]:
    """The run's data-quality report: every row with an issue, partitioned by its day like raw.

    Files are named like raw files (source and tickers), so re-running a scrape replaces its
    report instead of adding a copy. A row whose day is no session day to file it under
    (unreadable, in the future, outside the calendar) goes under the run's day: a file of
    made-up dates writes one file, not one per date.
    """
    if issues is None or issues.empty:
        return []
    undated = issues["trade_date"].isna() | issues["reason"].isin(UNDATED_REASONS)
    days = pd.Series([f"{now:%Y-%m-%d}" if u else str(d) for d, u in zip(issues["trade_date"], undated)],
                     index=issues.index)
    keys = []
    for day, rows in issues.groupby(days, sort=True):
        table = to_issues_table(rows, source, symbols, now, run_id)
        key = day_file_key(QUOTE_ISSUES.folder, str(day), raw_file_name(source, list(rows["ticker"])))
        lake.write_bytes(key, parquet_bytes(table))
        keys.append(key)
    return keys


PORTFOLIO_SCHEMA = arrow_schema(IBOV_PORTFOLIO)


def write_portfolio_snapshot(lake: Lake, portfolio: pd.DataFrame, now: dt.datetime) -> str:
    """One file per portfolio date: fetching the same day's portfolio again replaces it."""
    day = portfolio["portfolio_date"].iloc[0]
    table = pa.Table.from_pydict({
        "portfolio_date": pa.array(list(portfolio["portfolio_date"]), pa.date32()),
        **{c: pa.array(list(portfolio[c]), PORTFOLIO_SCHEMA.field(c).type)
           for c in ("ticker", "name", "type", "segment", "weight_pct", "theoretical_qty")},
        "ingested_at": pa.array([now] * len(portfolio), pa.timestamp("us", tz="UTC")),
    }, schema=PORTFOLIO_SCHEMA)
    key = day_file_key(IBOV_PORTFOLIO.folder, day.isoformat(), "ibov.parquet")
    lake.write_bytes(key, parquet_bytes(table))
    return key


EVENTS_SCHEMA = arrow_schema(CORPORATE_EVENTS)


def write_corporate_events(lake: Lake, events: pd.DataFrame | None, *, now: dt.datetime,
                           run_id: str) -> list[str]:
    """The events (scraper.events' EVENT_COLUMNS plus `source`), one file per ex date, source and
    ticker: loading the same events again replaces that file, so nothing is added twice."""
    if events is None or events.empty:
        return []
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
