"""Price sources behind one interface: `fetch(tickers, start, end) -> DataFrame`."""

from __future__ import annotations

import datetime as dt
import io
import logging
import socket
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
    # Rows the source itself set aside (a truncated CSV line), in validation's rejected shape.
    rejected: pd.DataFrame | None = None


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


def _read_text(path: Path) -> str:
    """The file as UTF-8 text; binary, UTF-16 or unreadable files are bad input that names the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceDataError(f"{path}: no such file") from exc
    except OSError as exc:
        raise SourceDataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise SourceDataError(f"{path}: UTF-16 text; save it as UTF-8 (a Yahoo CSV is plain ASCII)")
    if b"\x00" in data:
        raise SourceDataError(f"{path}: binary data, not a CSV text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceDataError(f"{path}: not UTF-8 text (byte {exc.start}): binary or another encoding?") from exc


def _split_truncated_last_line(text: str, path: Path) -> tuple[str, dict[str, str] | None]:
    """A last line with fewer fields than the header is a cut-off download: set it aside.

    Any other line of the wrong width is malformed input and stops the run.
    """
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 2:
        return text, None
    width = lines[0].count(",") + 1
    short = [n for n, line in enumerate(lines[1:-1], start=2) if line.count(",") + 1 < width]
    if short:
        raise SourceDataError(f"{path}:{short[0]}: {lines[short[0] - 1].count(',') + 1} fields, expected {width}")
    last = lines[-1].split(",")
    if len(last) >= width:
        return text, None
    header = lines[0].split(",")
    kept = "\n".join(lines[:-1]) + "\n"
    return kept, {**dict(zip(header, last)), "line": str(len(lines)), "fields": f"{len(last)} of {width}"}


def read_yahoo_csv_checked(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse one Yahoo daily CSV (`null` for missing values); errors name the file and line.

    Returns the rows and the rows set aside (a truncated last line) with their reason.
    """
    text, truncated = _split_truncated_last_line(_read_text(path), path)
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
    from scraper.validation import check_storable

    check_storable(out, lambda row: f"{path}:{int(row.name) + 2}")  # pyright: ignore[reportArgumentType]
    return out, _truncated_row(truncated, path)


def _truncated_row(fields: dict[str, str] | None, path: Path) -> pd.DataFrame:
    """The cut-off line as a rejected row, with whatever values it still holds."""
    from scraper.validation import REASON_TRUNCATED, empty_rejected

    if fields is None:
        return empty_rejected().drop(columns="ticker")
    day = pd.to_datetime(fields.get("Date", ""), format="%Y-%m-%d", errors="coerce")
    row: dict[str, object] = {"trade_date": None if pd.isna(day) else day.date()}
    for col in PRICE_COLUMNS:
        row[col] = pd.to_numeric(fields.get(col, ""), errors="coerce")
    row["reason"] = REASON_TRUNCATED
    row["detail"] = f"{path.name}:{fields['line']}: {fields['fields']} fields (cut-off last line)"
    return pd.DataFrame([row])


def read_yahoo_csv(path: Path) -> pd.DataFrame:
    """The rows of a Yahoo daily CSV (a truncated last line is left out)."""
    return read_yahoo_csv_checked(path)[0]


def safe_file_in(directory: Path, name: str) -> Path:
    """`directory/name`, refusing any name that would lead outside the folder."""
    path = directory / name
    if Path(name).name != name or name.startswith(".") or path.parent != directory:
        raise SourceDataError(f"{name!r} is not a file name inside {directory}")
    return path


@dataclass
class CsvSource:
    """Yahoo-format files named `<TICKER>.SA.csv` in a folder: history users already have."""

    directory: Path
    name: str = "csv"

    def fetch(self, tickers: list[str], start: dt.date | None, end: dt.date | None) -> FetchResult:
        if not self.directory.is_dir():
            raise SourceDataError(f"CSV folder {self.directory} does not exist")
        frames, missing, symbols, rejected = [], [], {}, []
        for ticker in tickers:
            if not ticker.isalnum():
                raise SourceDataError(f"invalid ticker {ticker!r}: expected a B3 code such as PETR4")
            path = safe_file_in(self.directory, f"{yahoo_symbol(ticker)}.csv")
            if not path.is_file():
                missing.append(ticker)
                continue
            frame, cut = read_yahoo_csv_checked(path)
            cut.insert(0, "ticker", ticker)
            frame, cut = _in_range(frame, start, end), _in_range(cut, start, end, keep_undated=True)
            rejected.append(cut)
            if frame.empty:
                if cut.empty:
                    missing.append(ticker)
                continue
            frame.insert(0, "ticker", ticker)
            frames.append(frame)
            symbols[ticker] = path.name
        quotes = pd.concat(frames, ignore_index=True) if frames else empty_quotes()
        return FetchResult(quotes.loc[:, QUOTE_COLUMNS], missing, symbols, _concat_rejected(rejected))


def _in_range(frame: pd.DataFrame, start: dt.date | None, end: dt.date | None,
              keep_undated: bool = False) -> pd.DataFrame:
    days = frame["trade_date"]
    inside = pd.Series(True, index=frame.index)
    if start is not None:
        inside &= days.map(lambda d: d is None or pd.isna(d) or d >= start)
    if end is not None:
        inside &= days.map(lambda d: d is None or pd.isna(d) or d <= end)
    if not keep_undated:
        inside &= days.notna()
    return frame.loc[inside.astype(bool)].copy()


def _concat_rejected(frames: list[pd.DataFrame]) -> pd.DataFrame:
    from scraper.validation import empty_rejected

    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else empty_rejected()


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
    # Tells an outage from unknown tickers when a batch comes back empty; tests inject it.
    reachable: Callable[[], bool] | None = None
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
            with _YFinanceErrorLog() as errors:
                frame = run_with_deadline(
                    lambda b=batch: self._download(b, start, end), self.timeout_s, "Yahoo Finance"
                )
            batch_quotes = yfinance_frame_to_quotes(frame, {s: symbol_to_ticker[s] for s in batch})
            if batch_quotes.empty:
                found = [m for m in [_yfinance_errors(), *errors.messages] if m]
                self._check_outage(found[0][:240] + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")
                                   if found else "")
            frames.append(batch_quotes)
        quotes = pd.concat(frames, ignore_index=True) if frames else empty_quotes()
        got = set(quotes["ticker"])
        missing = [t for t in tickers if t not in got]
        return FetchResult(quotes, missing, {t: yahoo_symbol(t) for t in tickers if t in got})

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
