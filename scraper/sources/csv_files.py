"""Yahoo-format CSV files: a folder of `<TICKER>.SA.csv` history, and the bundled sample."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.settings import REPO_ROOT
from scraper.sources.base import (
    PRICE_COLUMNS,
    QUOTE_COLUMNS,
    FetchResult,
    SourceDataError,
    empty_quotes,
    yahoo_symbol,
)

SAMPLE_DIR = REPO_ROOT / "data" / "sample" / "yahoo"

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
