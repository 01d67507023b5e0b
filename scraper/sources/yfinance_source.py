"""Yahoo Finance through yfinance: batch downloads under a hard deadline."""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import pandas as pd

from b3_quotes.contract.tables import CORPORATE_EVENTS, QUOTE_NUMBERS, RAW_QUOTES
from b3_quotes.contract.tickers import yahoo_symbol
from scraper.calendar_b3 import B3_TIMEZONE
from scraper.errors import SourceDataError, SourceUnavailable
from scraper.events import as_traded
from scraper.http_client import run_with_deadline
from scraper.sources.base import (
    ACTION_COLUMNS,
    QUOTE_COLUMNS,
    YAHOO_TO_RAW,
    FetchResult,
    empty_quotes,
)

logger = logging.getLogger(__name__)
YF_BATCH_SIZE = 25


def yfinance_frame_to_quotes(frame: pd.DataFrame | None, symbol_to_ticker: dict[str, str]) -> pd.DataFrame:
    """yfinance's wide frame (columns ('Price','Ticker'), date index) to long quotes, with raw's names."""
    if frame is None or frame.empty:
        return empty_quotes()
    if not isinstance(frame.columns, pd.MultiIndex):
        # Single ticker without the ticker level (multi_level_index=False).
        (symbol,) = symbol_to_ticker
        frame = pd.concat({symbol: frame}, axis=1).swaplevel(0, 1, axis=1)
    price_level = 0 if "Close" in frame.columns.get_level_values(0) else 1
    long = frame.stack(level=1 - price_level, future_stack=True)
    long.index = long.index.set_names(["Date", "Symbol"])
    long = long.reset_index().rename(columns=YAHOO_TO_RAW)
    # A batch download aligns tickers on one index: all-empty rows are not sessions of that ticker.
    long = long.dropna(subset=[c for c in QUOTE_NUMBERS if c in long.columns], how="all")
    long["ticker"] = long["Symbol"].map(symbol_to_ticker)
    long["trade_date"] = pd.to_datetime(long["Date"]).dt.date
    for col in QUOTE_NUMBERS:
        long[col] = long[col].astype("float64") if col in long.columns else float("nan")
    # The download's actions (actions=True), for scraper.events.as_traded.
    long = long.rename(columns=ACTION_COLUMNS)
    actions = [name for name in ACTION_COLUMNS.values() if name in long.columns]
    return long.loc[:, [*QUOTE_COLUMNS, *actions]].reset_index(drop=True)


@dataclass
class YFinanceSource:
    """Yahoo Finance through yfinance: batch download, unadjusted Close kept beside Adj Close."""

    timeout_s: float = 120.0
    batch_size: int = YF_BATCH_SIZE
    # Tells an outage from unknown tickers when a batch comes back empty; tests inject it.
    reachable: Callable[[], bool] | None = None
    # Today, in São Paulo: Yahoo adjusts a download for every split up to it (tests fix it).
    today: Callable[[], dt.date] = lambda: dt.datetime.now(B3_TIMEZONE).date()
    name: str = "yfinance"

    def _download(self, symbols: list[str], start: dt.date, end: dt.date) -> pd.DataFrame | None:
        import warnings

        import yfinance as yf

        warnings.filterwarnings("ignore", module="yfinance")  # pandas deprecations inside yfinance, not ours
        return yf.download(
            tickers=symbols,
            start=start.isoformat(),
            end=(end + dt.timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
            auto_adjust=False,
            actions=True,  # the splits its prices are adjusted for: undone, and loaded as events
            group_by="column",
            progress=False,
            threads=True,
            timeout=int(min(self.timeout_s, 30)),
        )

    def fetch(self, tickers: list[str], start: dt.date | None, end: dt.date | None) -> FetchResult:
        if start is None or end is None:
            raise SourceDataError("the yfinance source needs a start and an end date")
        symbol_to_ticker = {yahoo_symbol(t): t for t in tickers}
        symbols = list(symbol_to_ticker)
        frames = []
        batches = [symbols[i : i + self.batch_size] for i in range(0, len(symbols), self.batch_size)]
        for number, batch in enumerate(batches, start=1):
            if len(batches) > 1:
                logger.info(f"  downloading batch {number}/{len(batches)} ({len(batch)} tickers)")
            with _YFinanceErrorLog() as errors:
                # To today: its prices are adjusted for every split up to today, and only the splits
                # the download lists can be undone. The rows are cut to the range after that.
                frame = run_with_deadline(
                    lambda b=batch: self._download(b, start, max(end, self.today())), self.timeout_s, "Yahoo Finance"
                )
            batch_quotes = yfinance_frame_to_quotes(frame, {s: symbol_to_ticker[s] for s in batch})
            if batch_quotes.empty:
                found = [m for m in [_yfinance_errors(), *errors.messages] if m]
                self._check_outage(found[0][:240] + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")
                                   if found else "")
            frames.append(batch_quotes)
        quotes = pd.concat(frames, ignore_index=True) if frames else empty_quotes()
        quotes, events = as_traded(quotes)
        quotes = quotes[(quotes["trade_date"] >= start) & (quotes["trade_date"] <= end)]
        events = events[(events["ex_date"] >= start) & (events["ex_date"] <= end)]
        got = set(quotes["ticker"])
        missing = [t for t in tickers if t not in got]
        return FetchResult({RAW_QUOTES: quotes.loc[:, QUOTE_COLUMNS], CORPORATE_EVENTS: cast(pd.DataFrame, events)},
                           missing, {t: yahoo_symbol(t) for t in tickers if t in got})

    def _check_outage(self, reason: str) -> None:
        """A batch came back empty: unknown tickers, or an outage yfinance swallowed?

        yfinance 1.7 raises nothing offline and returns an empty frame; unknown tickers get
        a "possibly delisted" error in its log. With no such error, a cheap connection probe decides.
        """
        if _looks_like_network_failure(reason) or (reason and not _looks_like_unknown_ticker(reason)):
            raise SourceUnavailable(f"Yahoo Finance returned no data: {reason}")
        if not reason and not (self.reachable or yahoo_reachable)():
            raise SourceUnavailable(f"Yahoo Finance returned no data and {YAHOO_HOST}:443 is unreachable "
                                    "(network down or blocked?)")


YAHOO_HOST = "query2.finance.yahoo.com"
PROBE_TIMEOUT_S = 5.0


def yahoo_reachable() -> bool:
    """Can a TCP connection to Yahoo's API host be opened? (DNS and routing, no request sent)."""
    try:
        with socket.create_connection((YAHOO_HOST, 443), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


class _YFinanceErrorLog(logging.Handler):
    """Collects the per-ticker failures yfinance logs instead of raising."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().strip()
        if text and "failed download" not in text.lower():
            self.messages.append(text)

    def __enter__(self) -> _YFinanceErrorLog:
        logging.getLogger("yfinance").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("yfinance").removeHandler(self)


def _yfinance_errors() -> str:
    try:
        import yfinance.shared as shared

        errors = dict(getattr(shared, "_ERRORS", {}) or {})
    except ImportError:  # pragma: no cover - yfinance is a requirement
        return ""
    return "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))[:300]


def _looks_like_network_failure(reason: str) -> bool:
    # Checked first: offline, yfinance 1.7 logs "Could not resolve host ... (Domain name not found)".
    text = reason.lower()
    return any(w in text for w in ("curl:", "resolve host", "dnserror", "connectionerror", "connection refused",
                                   "connection reset", "timed out", "timeout", "network is unreachable",
                                   "ssl", "proxy"))


def _looks_like_unknown_ticker(reason: str) -> bool:
    text = reason.lower()
    return any(w in text for w in ("delisted", "not found", "no data found", "no timezone", "no price data"))
