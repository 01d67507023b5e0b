"""B3's own published data: COTAHIST daily quote files, parsed, downloaded or read."""

from __future__ import annotations

import datetime as dt
import io
import logging
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from b3_quotes.contract.tables import RAW_QUOTES
from scraper.errors import SourceDataError, SourceUnavailable
from scraper.http_client import HttpClient, RequestsClient, get_with_retries
from scraper.progress import progress
from scraper.sources.base import QUOTE_COLUMNS, FetchResult

logger = logging.getLogger(__name__)
RECORD_LENGTH = 245
COTAHIST_URL = "https://bvmf.bmfbovespa.com.br/InstDados/SerHist/COTAHIST_D{day:%d%m%Y}.ZIP"
STANDARD_LOT_BDI = "02"   # CODBDI: round lot
CASH_MARKET = 10          # TPMERC: vista

# Field -> (start, end) as 0-based slices of a 245-character quote record (layout rev. 2017).
QUOTE_FIELDS = {
    "DATA": (2, 10), "CODBDI": (10, 12), "CODNEG": (12, 24), "TPMERC": (24, 27), "NOMRES": (27, 39),
    "ESPECI": (39, 49), "PRAZOT": (49, 52), "PREABE": (56, 69), "PREMAX": (69, 82), "PREMIN": (82, 95), "PREMED": (95, 108),
    "PREULT": (108, 121), "TOTNEG": (147, 152), "QUATOT": (152, 170), "VOLTOT": (170, 188),
    "FATCOT": (210, 217), "CODISI": (230, 242), "DISMES": (242, 245),
}
TRAILER_TOTREG = (31, 42)


class CotahistError(SourceDataError):
    """A COTAHIST file that does not follow the layout: never loaded in part."""


# --- parsing ---------------------------------------------------------------------------------


def _records(text_bytes: bytes, name: str) -> np.ndarray:
    """The file as an (n, 245) uint8 matrix; a record of another length is an error."""
    buffer = np.frombuffer(text_bytes, dtype=np.uint8)
    for eol in (b"\r\n", b"\n"):
        width = RECORD_LENGTH + len(eol)
        if len(buffer) and len(buffer) % width == 0:
            rows = buffer.reshape(-1, width)
            if (rows[:, RECORD_LENGTH:] == np.frombuffer(eol, dtype=np.uint8)).all():
                return rows[:, :RECORD_LENGTH]  # fast path: every record well formed
    lines = text_bytes.split(b"\n")
    if lines and lines[-1].strip() == b"":
        lines.pop()
    lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
    lengths = np.fromiter((len(ln) for ln in lines), dtype=np.int64, count=len(lines))
    bad = np.flatnonzero(lengths != RECORD_LENGTH)
    if bad.size:
        line = int(bad[0])
        raise CotahistError(f"{name}: line {line + 1} has {lengths[line]} characters, expected {RECORD_LENGTH}")
    if not lines:
        raise CotahistError(f"{name}: empty file")
    return np.frombuffer(b"".join(lines), dtype=np.uint8).reshape(len(lines), RECORD_LENGTH)


def _digits(matrix: np.ndarray, start: int, end: int) -> np.ndarray:
    """Fixed-width unsigned integers, vectorised (no per-row Python)."""
    block = matrix[:, start:end].astype(np.int64) - ord("0")
    if ((block < 0) | (block > 9)).any():
        row = int(np.flatnonzero(((block < 0) | (block > 9)).any(axis=1))[0])
        raise ValueError(f"non-digit in columns {start + 1}-{end} of record {row + 1}")
    powers = 10 ** np.arange(end - start - 1, -1, -1, dtype=np.int64)
    return block @ powers


def _text(matrix: np.ndarray, start: int, end: int) -> pd.Series:
    """Fixed-width ASCII text, trimmed, through Arrow's vectorised kernels.

    Handed to pandas as Arrow data (`to_pandas`): pandas' own text dtype, without the
    per-value Python strings a NumPy object array would cost.
    """
    width = end - start
    block = np.ascontiguousarray(matrix[:, start:end])
    array = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(block), [None, pa.py_buffer(block)])
    as_text = pc.cast(pc.cast(array, pa.binary()), pa.string())
    trimmed = pc.utf8_trim_whitespace(as_text)  # pyright: ignore[reportAttributeAccessIssue] - a kernel pyarrow generates at import
    return trimmed.to_pandas()


def _dates(matrix: np.ndarray, start: int, end: int) -> np.ndarray:
    """YYYYMMDD fields to datetime.date, converting each distinct day once."""
    stamps = _digits(matrix, start, end)
    unique, inverse = np.unique(stamps, return_inverse=True)
    days = np.array([dt.date(int(v) // 10000, int(v) // 100 % 100, int(v) % 100) for v in unique], dtype=object)
    return days[inverse]


def parse_cotahist(data: bytes, name: str = "COTAHIST") -> pd.DataFrame:
    """Every quote record (type 01) of a daily, monthly or yearly file, prices per share.

    Prices carry two implied decimals and are quoted per FATCOT shares; QUATOT is shares,
    VOLTOT the traded value in BRL with two implied decimals.
    """
    matrix = _records(data, name)
    try:
        kinds = _digits(matrix, 0, 2)
    except ValueError as exc:
        raise CotahistError(f"{name}: bad record type ({exc})") from exc
    if kinds[0] != 0 or kinds[-1] != 99:
        raise CotahistError(f"{name}: missing header (00) or trailer (99) record: truncated file?")
    try:
        declared = int(_digits(matrix[-1:], *TRAILER_TOTREG)[0])
    except ValueError as exc:
        raise CotahistError(f"{name}: unreadable trailer ({exc})") from exc
    if declared != len(matrix):
        raise CotahistError(f"{name}: trailer declares {declared} records but the file holds {len(matrix)}: truncated or corrupt")
    quotes = matrix[kinds == 1]
    try:
        factor = _digits(quotes, *QUOTE_FIELDS["FATCOT"]).astype("float64")
        factor[factor == 0] = 1.0
        price = {f: _digits(quotes, *QUOTE_FIELDS[f]) / 100.0 / factor
                 for f in ("PREABE", "PREMAX", "PREMIN", "PREULT")}
        frame = pd.DataFrame({
            "ticker": _text(quotes, *QUOTE_FIELDS["CODNEG"]),
            "trade_date": _dates(quotes, *QUOTE_FIELDS["DATA"]),
            "open": price["PREABE"], "high": price["PREMAX"], "low": price["PREMIN"], "close": price["PREULT"],
            "adj_close": np.nan,  # B3 publishes no adjusted price
            "volume": _digits(quotes, *QUOTE_FIELDS["QUATOT"]).astype("float64"),
            "traded_value": _digits(quotes, *QUOTE_FIELDS["VOLTOT"]) / 100.0,
            "trades": _digits(quotes, *QUOTE_FIELDS["TOTNEG"]),
            "codbdi": _text(quotes, *QUOTE_FIELDS["CODBDI"]),
            "tpmerc": _digits(quotes, *QUOTE_FIELDS["TPMERC"]),
            "isin": _text(quotes, *QUOTE_FIELDS["CODISI"]),
            "fatcot": factor.astype("int64"),
            "prazot": _text(quotes, *QUOTE_FIELDS["PRAZOT"]),
            # The distribution number: B3 adds one on each corporate event's ex date.
            "dismes": _digits(quotes, *QUOTE_FIELDS["DISMES"]),
        })
    except ValueError as exc:
        raise CotahistError(f"{name}: {exc}") from exc
    return frame


def read_cotahist_bytes(data: bytes, name: str) -> pd.DataFrame:
    """A COTAHIST file, zipped (as B3 publishes it) or not."""
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [m for m in archive.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise CotahistError(f"{name}: expected one file in the zip, found {len(members)}")
                data = archive.read(members[0])
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise CotahistError(f"{name}: corrupt zip ({exc})") from exc
    return parse_cotahist(data, name)


def standard_lot(frame: pd.DataFrame) -> pd.DataFrame:
    """The cash-market round-lot quotes: what users mean by "PETR4"."""
    return frame.loc[(frame["codbdi"] == STANDARD_LOT_BDI) & (frame["tpmerc"] == CASH_MARKET)]


# --- the source ------------------------------------------------------------------------------


@dataclass
class B3Source:
    """Official daily COTAHIST files: downloaded per session, or read from files the user has."""

    sessions: Callable[[dt.date, dt.date], list[dt.date]]
    files: list[Path] = field(default_factory=list)
    http: HttpClient = field(default_factory=RequestsClient)
    all_instruments: bool = False
    notice: Callable[[str], None] = logger.info
    sleep: Callable[[float], None] = time.sleep
    name: str = "b3"

    def _load(self, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
        if self.files:
            frames = [read_cotahist_bytes(read_input_file(p, "--cotahist-file"), str(p)) for p in self.files]
        else:
            if start is None or end is None:
                raise SourceDataError("the b3 source needs --start/--end or --cotahist-file")
            frames = []
            days = self.sessions(start, end)
            with progress(len(days), "COTAHIST downloads", unit="day", say=self.notice) as shown:
                for day in days:
                    url = COTAHIST_URL.format(day=day)
                    status, body = get_with_retries(self.http, url, sleep=self.sleep)
                    if status == 404:
                        shown.write(f"notice: B3 has no COTAHIST file for {day} (not published yet, or no session)")
                    elif status != 200:
                        raise SourceUnavailable(f"{url}: HTTP {status}")
                    else:
                        frames.append(read_cotahist_bytes(body, url.rsplit("/", 1)[-1]))
                    shown.update(detail=str(day))
        if not frames:
            return pd.DataFrame(columns=QUOTE_COLUMNS)
        return pd.concat(frames, ignore_index=True)

    # The last market frame and the range it was cut to: `market_tickers` then `fetch` read the files once.
    _market: tuple[tuple[dt.date | None, dt.date | None], pd.DataFrame] | None = field(default=None, repr=False)

    @property
    def market_description(self) -> str:
        """What `--universe all` takes from this source, for the run's universe line."""
        if self.all_instruments:
            return "every instrument of the COTAHIST file(s)"
        return (f"every code of the COTAHIST file(s) in the round-lot cash market "
                f"(CODBDI {STANDARD_LOT_BDI}, TPMERC {CASH_MARKET:03d})")

    def _market_frame(self, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
        """The quotes that pass the market filter, within the range."""
        if self._market is not None and self._market[0] == (start, end):
            return self._market[1]
        frame = self._load(start, end)
        if not self.all_instruments and "codbdi" in frame:
            frame = standard_lot(frame)
        elif "codbdi" in frame:
            # One code can name several contracts in a session (forward terms): each is its own row.
            frame = frame.assign(instrument=instrument_ids(frame))
        if start is not None:
            frame = frame.loc[frame["trade_date"] >= start]
        if end is not None:
            frame = frame.loc[frame["trade_date"] <= end]
        self._market = ((start, end), frame)
        return frame

    def market_tickers(self, start: dt.date | None, end: dt.date | None) -> list[str]:
        """Every code that passes the market filter in the range, sorted: the `--universe all` list."""
        return sorted(set(self._market_frame(start, end)["ticker"]))

    def fetch(self, tickers: list[str], start: dt.date | None, end: dt.date | None) -> FetchResult:
        frame = self._market_frame(start, end)
        self._market = None  # the rows are handed on: the source holds no copy after the run
        frame = frame.loc[frame["ticker"].isin(tickers)]
        found = set(frame["ticker"])
        missing = [t for t in tickers if t not in found]
        return FetchResult({RAW_QUOTES: frame.reset_index(drop=True)}, missing, {t: t for t in tickers})


def instrument_ids(frame: pd.DataFrame) -> pd.Series:
    """`CODNEG` alone when it names one record per day, else `CODNEG TPMERC/BDI/term`.

    The forward market (TPMERC 030) quotes one code per term (PRAZOT days): ABEV3T 030/62/060d.
    """
    base = frame["ticker"].astype(str)
    shared = frame.duplicated(subset=["ticker", "trade_date"], keep=False)
    detail = (frame["tpmerc"].map("{:03d}".format) + "/" + frame["codbdi"].astype(str) + "/"
              + frame["prazot"].astype(str) + "d")
    return pd.Series(base.where(~shared, base + " " + detail), index=frame.index)


def read_input_file(path: Path, option: str) -> bytes:
    """A file named on the command line; missing or unreadable is bad input naming it."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceDataError(f"{option} {path}: no such file") from exc
    except IsADirectoryError as exc:
        raise SourceDataError(f"{option} {path}: is a folder, not a file") from exc
    except OSError as exc:
        raise SourceDataError(f"{option} {path}: cannot be read ({exc.strerror or exc})") from exc
