"""Price sources behind one interface: `fetch(tickers, start, end) -> DataFrame`."""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from pipeline.settings import REPO_ROOT

# The columns every source returns, with Yahoo's names for the prices.
PRICE_COLUMNS = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
QUOTE_COLUMNS = ["ticker", "trade_date", *PRICE_COLUMNS]
SAMPLE_DIR = REPO_ROOT / "data" / "sample" / "yahoo"
YF_BATCH_SIZE = 25


class SourceError(Exception):
    """A source could not deliver data. Subclasses say why."""


class SourceUnavailable(SourceError):
    """Network failure, time-out or a service error: retry later."""


class SourceDataError(SourceError):
    """The source answered, but with data that cannot be parsed."""


@dataclass
class FetchResult:
    """Long-format quotes plus the tickers the source had nothing for."""

    quotes: pd.DataFrame
    missing: list[str] = field(default_factory=list)
    symbols: dict[str, str] = field(default_factory=dict)


class PriceSource(Protocol):
    name: str

    def fetch(self, tickers: list[str], start: dt.date | None, end: dt.date | None) -> FetchResult: ...


def empty_quotes() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in PRICE_COLUMNS})
    frame.insert(0, "trade_date", pd.Series(dtype="object"))
    frame.insert(0, "ticker", pd.Series(dtype="object"))
    return frame


def yahoo_symbol(ticker: str) -> str:
    return f"{ticker}.SA"


# --- Yahoo-format CSV files -------------------------------------------------------------

YAHOO_CSV_HEADER = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]


def read_yahoo_csv(path: Path) -> pd.DataFrame:
    """Parse one Yahoo daily CSV (`null` for missing values); errors name the file and line."""
    text = path.read_text(encoding="utf-8", errors="strict")
    try:
        frame = pd.read_csv(io.StringIO(text), na_values=["null"], keep_default_na=True, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SourceDataError(f"{path}: not a Yahoo CSV ({exc})") from exc
    missing = [c for c in YAHOO_CSV_HEADER if c not in frame.columns]
    if missing:
        raise SourceDataError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(YAHOO_CSV_HEADER)}")
    dates = pd.to_datetime(frame["Date"], format="%Y-%m-%d", errors="coerce")
    bad = dates.isna()
    if bad.any():
        line = int(bad.to_numpy().argmax()) + 2  # header is line 1
        raise SourceDataError(f"{path}:{line}: bad date {frame['Date'].iloc[line - 2]!r}")
    out = pd.DataFrame({"trade_date": dates.dt.date})
    for col in PRICE_COLUMNS:
        values = pd.Series(pd.to_numeric(frame[col], errors="coerce"), index=frame.index)
        bad = pd.Series(values.isna() & frame[col].notna())
        if bool(bad.any()):
            line = int(bad.to_numpy().argmax()) + 2
            raise SourceDataError(f"{path}:{line}: bad {col} value {frame[col].iloc[line - 2]!r}")
        out[col] = values.astype("float64")
    return out


@dataclass
class CsvSource:
    """Yahoo-format files named `<TICKER>.SA.csv` in a folder: history users already have."""

    directory: Path
    name: str = "csv"

    def fetch(self, tickers: list[str], start: dt.date | None, end: dt.date | None) -> FetchResult:
        if not self.directory.is_dir():
            raise SourceDataError(f"CSV folder {self.directory} does not exist")
        frames, missing, symbols = [], [], {}
        for ticker in tickers:
            path = self.directory / f"{yahoo_symbol(ticker)}.csv"
            if not path.is_file():
                missing.append(ticker)
                continue
            frame = read_yahoo_csv(path)
            if start is not None:
                frame = frame.loc[frame["trade_date"] >= start]
            if end is not None:
                frame = frame.loc[frame["trade_date"] <= end]
            if frame.empty:
                missing.append(ticker)
                continue
            frame.insert(0, "ticker", ticker)
            frames.append(frame)
            symbols[ticker] = path.name
        quotes = pd.concat(frames, ignore_index=True) if frames else empty_quotes()
        return FetchResult(quotes.loc[:, QUOTE_COLUMNS], missing, symbols)


def sample_source() -> CsvSource:
    """The bundled real quotes (see data/sample/README.md): the offline default for demos."""
    return CsvSource(SAMPLE_DIR, name="sample")


# --- yfinance ------------------------------------------------------------------------------


def run_with_deadline(fn: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Run `fn` in a daemon thread and give up after `timeout_s`.

    yfinance's own `timeout=` does not bound a black-holed network; a daemon thread does
    not keep the process alive after we give up on it.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"deadline:{what}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise SourceUnavailable(f"{what} did not answer within {timeout_s:g} s (network unreachable?)")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def yfinance_frame_to_quotes(frame: pd.DataFrame | None, symbol_to_ticker: dict[str, str]) -> pd.DataFrame:
    """yfinance's wide frame (columns ('Price','Ticker'), date index) to long quotes."""
    if frame is None or frame.empty:
        return empty_quotes()
    if not isinstance(frame.columns, pd.MultiIndex):
        # Single ticker without the ticker level (multi_level_index=False).
        (symbol,) = symbol_to_ticker
        frame = pd.concat({symbol: frame}, axis=1).swaplevel(0, 1, axis=1)
    price_level = 0 if "Close" in frame.columns.get_level_values(0) else 1
    long = frame.stack(level=1 - price_level, future_stack=True)
    long.index = long.index.set_names(["Date", "Symbol"])
    long = long.reset_index()
    # A batch download aligns tickers on one index: all-empty rows are not sessions of that ticker.
    long = long.dropna(subset=[c for c in PRICE_COLUMNS if c in long.columns], how="all")
    long["ticker"] = long["Symbol"].map(symbol_to_ticker)
    long["trade_date"] = pd.to_datetime(long["Date"]).dt.date
    for col in PRICE_COLUMNS:
        long[col] = long[col].astype("float64") if col in long.columns else float("nan")
    return long.loc[:, QUOTE_COLUMNS].reset_index(drop=True)


@dataclass
class YFinanceSource:
    """Yahoo Finance through yfinance: batch download, unadjusted Close kept beside Adj Close."""

    timeout_s: float = 120.0
    batch_size: int = YF_BATCH_SIZE
    progress: Callable[[str], None] = print
    name: str = "yfinance"

    def _download(self, symbols: list[str], start: dt.date, end: dt.date) -> pd.DataFrame | None:
        import yfinance as yf

        return yf.download(
            tickers=symbols,
            start=start.isoformat(),
            end=(end + dt.timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
            auto_adjust=False,
            actions=False,
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
                self.progress(f"  downloading batch {number}/{len(batches)} ({len(batch)} tickers)")
            frame = run_with_deadline(
                lambda b=batch: self._download(b, start, end), self.timeout_s, "Yahoo Finance"
            )
            frames.append(yfinance_frame_to_quotes(frame, {s: symbol_to_ticker[s] for s in batch}))
        quotes = pd.concat(frames, ignore_index=True) if frames else empty_quotes()
        got = set(quotes["ticker"])
        missing = [t for t in tickers if t not in got]
        if missing and len(missing) == len(tickers):
            # yfinance swallows network errors and returns an empty frame.
            reason = _yfinance_errors()
            if reason and not _looks_like_unknown_ticker(reason):
                raise SourceUnavailable(f"Yahoo Finance returned no data: {reason}")
        return FetchResult(quotes, missing, {t: yahoo_symbol(t) for t in tickers if t in got})


def _yfinance_errors() -> str:
    try:
        import yfinance.shared as shared

        errors = dict(getattr(shared, "_ERRORS", {}) or {})
    except ImportError:  # pragma: no cover - yfinance is a requirement
        return ""
    return "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))[:300]


def _looks_like_unknown_ticker(reason: str) -> bool:
    text = reason.lower()
    return any(w in text for w in ("delisted", "not found", "no data found", "no timezone", "no price data"))


def make_source(name: str, *, csv_dir: Path | None = None, timeout_s: float = 120.0,
                progress: Callable[[str], None] = print, cotahist_files: list[Path] | None = None,
                all_instruments: bool = False) -> PriceSource:
    """The source named on the command line or in `.env`."""
    if name == "b3":
        from scraper import calendar_b3
        from scraper.b3 import B3Source

        return B3Source(sessions=calendar_b3.sessions_between, files=list(cotahist_files or []),
                        all_instruments=all_instruments, notice=progress)
    if name == "yfinance":
        return YFinanceSource(timeout_s=timeout_s, progress=progress)
    if name == "sample":
        return sample_source()
    if name == "csv":
        if csv_dir is None:
            raise SourceDataError("--source csv needs --csv-dir DIR with <TICKER>.SA.csv files")
        return CsvSource(csv_dir)
    raise SourceDataError(f"unknown source {name!r}: choose yfinance, b3, sample or csv")
