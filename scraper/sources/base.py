"""What every price source shares: the result, the interface, the quote columns and the CSV reader."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from b3_quotes.contract.tables import CORPORATE_EVENTS, QUOTE_NUMBERS, RAW_QUOTES, Table
from scraper.errors import SourceDataError

# The columns every source returns: a quote's numbers under raw's names (b3_quotes.contract.tables).
QUOTE_COLUMNS = ["ticker", "trade_date", *QUOTE_NUMBERS]


def read_csv_columns(text: str, path: object, what: str, required: list[str], expected: str,
                     **options: object) -> pd.DataFrame:
    """A CSV file's text as strings; SourceDataError naming `path` when it is no CSV (`what`) or
    lacks a `required` column (the message then says `expected`)."""
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, **options)  # pyright: ignore[reportArgumentType, reportCallIssue]
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SourceDataError(f"{path}: not a {what} ({exc})") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise SourceDataError(f"{path}: missing column(s) {', '.join(missing)}; expected {expected}")
    return frame


@dataclass
class FetchResult:
    """What a source returns: the rows of each raw table it read, keyed by the contract's table, the
    tickers it had nothing for, and each ticker's name at the source.

    A price source gives RAW_QUOTES (long format, QUOTE_COLUMNS, as traded: a download's own splits
    undone), QUOTE_ISSUES for the rows it set aside itself (a truncated CSV line, in validation's
    shape) and CORPORATE_EVENTS for the events the same download lists (scraper.events'
    EVENT_COLUMNS; `source` when they are another source's). The command line wraps what it reads
    besides a source the same way: the IBOV portfolio as IBOV_PORTFOLIO, events files as
    CORPORATE_EVENTS. Every table goes through one validation and one raw writer (scraper.run,
    scraper.raw_writer), whatever gave it.
    """

    tables: dict[Table, pd.DataFrame] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    symbols: dict[str, str] = field(default_factory=dict)

    @property
    def quotes(self) -> pd.DataFrame:
        return self.tables.get(RAW_QUOTES, empty_quotes())

    @property
    def events(self) -> pd.DataFrame | None:
        return self.tables.get(CORPORATE_EVENTS)

    def rows(self) -> dict[Table, pd.DataFrame]:
        """The tables that hold a row."""
        return {table: frame for table, frame in self.tables.items() if frame is not None and not frame.empty}

    def with_tables(self, other: FetchResult) -> FetchResult:
        """These rows and `other`'s, table by table (what a run writes: the source's and the files' given with it)."""
        tables = dict(self.rows())
        for table, frame in other.rows().items():
            tables[table] = pd.concat([tables[table], frame], ignore_index=True) if table in tables else frame
        return FetchResult(tables, self.missing, self.symbols)


class PriceSource(Protocol):
    name: str

    def fetch(self, tickers: list[str], start: dt.date | None, end: dt.date | None) -> FetchResult: ...


class MarketSource(PriceSource, Protocol):
    """A source that also lists a whole market: what `--universe all` takes."""

    @property
    def market_description(self) -> str: ...

    def market_tickers(self, start: dt.date | None, end: dt.date | None) -> list[str]: ...


def empty_quotes() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in QUOTE_NUMBERS})
    frame.insert(0, "trade_date", pd.Series(dtype="object"))
    frame.insert(0, "ticker", pd.Series(dtype="object"))
    return frame


# Yahoo's names for a quote's numbers -> raw's, stated once for the two readers of Yahoo's data:
# the header of its CSV files (csv_files) and the columns of yfinance's download frame
# (yfinance_source), mapped right where they are read. No other code uses Yahoo's names.
YAHOO_TO_RAW = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Adj Close": "adj_close",
                "Volume": "volume"}
# Yahoo's corporate actions (yfinance's actions=True, Ticker.history()'s CSV columns) -> the
# names scraper.events.as_traded reads.
ACTION_COLUMNS = {"Dividends": "dividends", "Stock Splits": "splits"}

