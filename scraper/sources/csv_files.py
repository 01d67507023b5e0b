"""Yahoo-format CSV files: a folder of `<TICKER>.SA.csv` history, and the bundled sample."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from b3_quotes.config.settings import REPO_ROOT
from b3_quotes.contract.tables import CORPORATE_EVENTS, QUOTE_ISSUES, RAW_QUOTES
from b3_quotes.contract.tickers import INDEX_TICKER, INDEX_YAHOO_SYMBOLS, yahoo_symbol
from scraper.errors import SourceDataError
from scraper.events import as_traded, empty_events
from scraper.sources.base import (
    ACTION_COLUMNS,
    QUOTE_COLUMNS,
    YAHOO_TO_RAW,
    FetchResult,
    empty_quotes,
    read_csv_columns,
)
from scraper.validation import ACTION_REJECTED, REASON_TRUNCATED, check_storable, empty_issues

SAMPLE_DIR = REPO_ROOT / "data" / "sample" / "yahoo"

# What yfinance and Yahoo write: `Adj Close` only with auto_adjust=False (yfinance's default
# since 0.2.51 is True), `Dividends`/`Stock Splits` from Ticker.history(): the file's events.
OPTIONAL_COLUMNS = ["Adj Close"]
REQUIRED_COLUMNS = ["Date", *(c for c in YAHOO_TO_RAW if c not in OPTIONAL_COLUMNS)]


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


@dataclass(frozen=True)
class CsvLayout:
    """How one file is written: the header line it starts with and the lines to skip after it."""

    header: str
    skipped_lines: int  # MultiIndex `to_csv()`: the `Ticker,...` and `Date,,,` lines


def _layout(lines: list[str], path: Path) -> CsvLayout:
    """Yahoo's classic header, or the three-line header of a yfinance MultiIndex `to_csv()`.

    A Brazilian Excel file (`;` separators, decimal commas, dd/mm/yyyy) is refused in one line
    that says which of those it saw: its numbers can be read more than one way.
    """
    first = lines[0] if lines else ""
    if first.count(";") > first.count(","):
        seen = ["';' separators"]
        if any("," in field for line in lines[1:6] for field in line.split(";")):
            seen.append("decimal commas")
        if any(len(line) >= 10 and line[2] == "/" and line[5] == "/" for line in lines[1:6]):
            seen.append("dd/mm/yyyy dates")
        raise SourceDataError(f"{path}: a spreadsheet export ({', '.join(seen)}), not a Yahoo CSV: save it with "
                              "',' separators, '.' decimals and YYYY-MM-DD dates (what yfinance's to_csv() writes)")
    fields = first.split(",")
    if fields[0] == "Price" and len(lines) >= 3 and lines[1].startswith("Ticker,") and lines[2].startswith("Date,"):
        return CsvLayout(",".join(["Date", *fields[1:]]), 2)
    return CsvLayout(first, 0)


def _split_truncated_last_line(lines: list[str], path: Path, offset: int) -> tuple[list[str], dict[str, str] | None]:
    """A last line with fewer fields than the header is a cut-off download: set it aside.

    Any other line of the wrong width is malformed input and stops the run. `lines` start
    with the header; `offset` is how many lines of the file were skipped after it.
    """
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 2:
        return lines, None
    width = lines[0].count(",") + 1
    short = [n for n, line in enumerate(lines[1:-1], start=2) if line.count(",") + 1 < width]
    if short:
        raise SourceDataError(f"{path}:{short[0] + offset}: {lines[short[0] - 1].count(',') + 1} fields, "
                              f"expected {width}")
    last = lines[-1].split(",")
    if len(last) >= width:
        return lines, None
    header = lines[0].split(",")
    return lines[:-1], {**dict(zip(header, last)), "line": str(len(lines) + offset), "fields": f"{len(last)} of {width}"}


def parse_days(text: pd.Series) -> pd.Series:
    """`2019-01-02`, or tz-aware `2019-01-02 00:00:00-03:00` (Ticker.history()): the São Paulo date.

    Unreadable cells are NaT.
    """
    plain = pd.Series(pd.to_datetime(text, format="%Y-%m-%d", errors="coerce"), index=text.index)
    timed = text.str.len() > 10
    if bool(timed.any()):
        stamps = pd.Series(pd.to_datetime(text[timed], utc=True, errors="coerce", format="ISO8601"))
        local = stamps.dt.tz_convert("America/Sao_Paulo").dt.tz_localize(None).dt.normalize()
        plain = plain.where(~timed, local)
    return plain


def read_yahoo_csv_checked(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse one Yahoo or yfinance daily CSV (`null` for missing values); errors name the file and line.

    Returns the rows and the rows set aside (a truncated last line) with their reason.
    """
    lines = _read_text(path).splitlines()
    layout = _layout(lines, path)
    body, truncated = _split_truncated_last_line([layout.header, *lines[1 + layout.skipped_lines:]], path,
                                                 layout.skipped_lines)
    first_row_line = 2 + layout.skipped_lines  # the file's line number of the first row
    frame = read_csv_columns("\n".join(body) + "\n", path, "Yahoo CSV", list(REQUIRED_COLUMNS),
                             f"{','.join(REQUIRED_COLUMNS)} ({', '.join(OPTIONAL_COLUMNS)} optional), in any order",
                             na_values=["null"], keep_default_na=True)
    dates = parse_days(pd.Series(frame["Date"]).fillna(""))
    bad = dates.isna()
    if bad.any():
        line = int(bad.to_numpy().argmax())
        raise SourceDataError(f"{path}:{line + first_row_line}: bad date {frame['Date'].iloc[line]!r} "
                              "(expected YYYY-MM-DD)")
    out = pd.DataFrame({"trade_date": dates.dt.date})
    for col, raw in YAHOO_TO_RAW.items():
        if col not in frame:  # no Adj Close (auto_adjust=True): null, as for B3 rows
            out[raw] = float("nan")
            continue
        values = pd.Series(pd.to_numeric(frame[col], errors="coerce"), index=frame.index)
        bad = pd.Series(values.isna() & frame[col].notna())
        if bool(bad.any()):
            line = int(bad.to_numpy().argmax())
            raise SourceDataError(f"{path}:{line + first_row_line}: bad {col} value {frame[col].iloc[line]!r}")
        out[raw] = values.astype("float64")
    for col, name in ACTION_COLUMNS.items():
        if col in frame:
            values = pd.Series(pd.to_numeric(frame[col], errors="coerce"), index=frame.index)
            bad = pd.Series((values.isna() & frame[col].notna()) | (values < 0))
            if bool(bad.any()):
                line = int(bad.to_numpy().argmax())
                raise SourceDataError(f"{path}:{line + first_row_line}: bad {col} value {frame[col].iloc[line]!r}")
            out[name] = values.fillna(0.0)
    check_storable(out, lambda row: f"{path}:{int(row.name) + first_row_line}")  # pyright: ignore[reportArgumentType]
    return out, _truncated_row(truncated, path)


def _truncated_row(fields: dict[str, str] | None, path: Path) -> pd.DataFrame:
    """The cut-off line as a rejected row, with whatever values it still holds."""
    if fields is None:
        return empty_issues().drop(columns="ticker")
    day = parse_days(pd.Series([fields.get("Date", "")])).iloc[0]
    row: dict[str, object] = {"trade_date": None if pd.isna(day) else day.date()}
    for col, raw in YAHOO_TO_RAW.items():
        row[raw] = pd.to_numeric(fields.get(col, ""), errors="coerce")
    row["reason"] = REASON_TRUNCATED
    row["action"] = ACTION_REJECTED
    row["detail"] = f"{path.name}:{fields['line']}: {fields['fields']} fields (cut-off last line)"
    return pd.DataFrame([row])


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

    def file_names(self, ticker: str) -> list[str]:
        """The names a ticker's file may have, preferred first (the index: Yahoo's ^BVSP)."""
        if ticker == INDEX_TICKER:
            return [f"{s}.csv" for s in INDEX_YAHOO_SYMBOLS]
        return [f"{yahoo_symbol(ticker)}.csv"]

    def file_for(self, ticker: str) -> Path:
        """The ticker's file: the first name that exists, else the preferred one."""
        paths = [safe_file_in(self.directory, name) for name in self.file_names(ticker)]
        return next((p for p in paths if p.is_file()), paths[0])

    def missing_detail(self, ticker: str) -> str:
        """What was looked for, for the run's summary."""
        if self.file_for(ticker).is_file():
            return f"{self.file_for(ticker).name} has no row in the range"
        return f"no file {' or '.join(self.file_names(ticker))} in {self.directory}"

    def fetch(self, tickers: list[str], start: dt.date | None, end: dt.date | None) -> FetchResult:
        if not self.directory.is_dir():
            raise SourceDataError(f"CSV folder {self.directory} does not exist")
        frames, missing, symbols, rejected, events = [], [], {}, [], []
        for ticker in tickers:
            if not ticker.isalnum():
                raise SourceDataError(f"invalid ticker {ticker!r}: expected a B3 code such as PETR4")
            path = self.file_for(ticker)
            if not path.is_file():
                missing.append(ticker)
                continue
            frame, cut = read_yahoo_csv_checked(path)
            cut.insert(0, "ticker", ticker)
            frame.insert(0, "ticker", ticker)
            # The whole file's splits, before cutting the range: a split after `end` divided it too.
            frame, file_events = as_traded(frame)
            events.append(_in_range(file_events.rename(columns={"ex_date": "trade_date"}), start, end)
                          .rename(columns={"trade_date": "ex_date"}))
            frame, cut = _in_range(frame, start, end), _in_range(cut, start, end, keep_undated=True)
            rejected.append(cut)
            if frame.empty:
                if cut.empty:
                    missing.append(ticker)
                continue
            frames.append(frame)
            symbols[ticker] = path.name
        quotes = pd.concat(frames, ignore_index=True) if frames else empty_quotes()
        found = [e for e in events if not e.empty]
        return FetchResult({RAW_QUOTES: quotes.loc[:, QUOTE_COLUMNS], QUOTE_ISSUES: _concat_rejected(rejected),
                            CORPORATE_EVENTS: pd.concat(found, ignore_index=True) if found else empty_events()},
                           missing, symbols)


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
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else empty_issues()


def sample_source() -> CsvSource:
    """The bundled real quotes (see data/sample/README.md): the offline default for demos."""
    return CsvSource(SAMPLE_DIR, name="sample")
