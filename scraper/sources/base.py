"""What every price source shares: the result, the interface, the quote columns and the CSV reader."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from b3_quotes.contract.tables import QUOTE_NUMBERS
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
    """Long-format quotes plus the tickers the source had nothing for."""

    quotes: pd.DataFrame
    missing: list[str] = field(default_factory=list)
    symbols: dict[str, str] = field(default_factory=dict)
    # Rows the source itself set aside (a truncated CSV line), in validation's rejected shape.
    rejected: pd.DataFrame | None = None
    # Corporate events the same download lists (scraper.events' EVENT_COLUMNS); the quotes are
    # already as traded (the download's own splits undone).
    events: pd.DataFrame | None = None


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

