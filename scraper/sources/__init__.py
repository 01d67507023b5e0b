"""Price sources behind one interface: `fetch(tickers, start, end) -> DataFrame`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scraper.sources.base import PriceSource, SourceDataError


def make_source(name: str, *, csv_dir: Path | None = None, timeout_s: float = 120.0,
                progress: Callable[[str], None] = print, cotahist_files: list[Path] | None = None,
                all_instruments: bool = False) -> PriceSource:
    """The source named on the command line or in `.env`."""
    if name == "b3":
        from scraper import calendar_b3
        from scraper.sources.b3_cotahist import B3Source

        return B3Source(sessions=calendar_b3.sessions_between, files=list(cotahist_files or []),
                        all_instruments=all_instruments, notice=progress)
    if name == "yfinance":
        from scraper.sources.yfinance_source import YFinanceSource

        return YFinanceSource(timeout_s=timeout_s, progress=progress)
    if name == "sample":
        from scraper.sources.csv_files import sample_source

        return sample_source()
    if name == "csv":
        from scraper.sources.csv_files import CsvSource

        if csv_dir is None:
            raise SourceDataError("--source csv needs --csv-dir DIR with <TICKER>.SA.csv files")
        return CsvSource(csv_dir)
    raise SourceDataError(f"unknown source {name!r}: choose yfinance, b3, sample or csv")
