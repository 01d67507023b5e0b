"""One scrape run: fetch, validate, write raw Parquet and the run's commit marker."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.lake import RAW_QUOTES_PREFIX, LakeStorage
from scraper import calendar_b3
from scraper.raw_writer import WrittenRun, new_run_id, write_raw_quotes
from scraper.sources import PriceSource
from scraper.validation import validate_quotes

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NO_DATA = 3
EXIT_SOURCE_UNAVAILABLE = 4
EXIT_BAD_INPUT = 5
EXIT_LAKE_WRITE_FAILED = 6


class LakeWriteError(RuntimeError):
    """Writing to the lake failed part-way; no manifest was written, so nothing was triggered."""


@dataclass
class ScrapeReport:
    tickers: list[str]
    start: dt.date | None
    end: dt.date | None
    fetched_rows: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)
    written: WrittenRun | None = None
    notice: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT_NO_DATA if self.missing or (self.written is None and not self.notice) else EXIT_OK

    def summary_lines(self, where: Callable[[str], str]) -> list[str]:
        span = f"{self.start or 'first'} .. {self.end or 'last'}"
        lines = [f"tickers   {len(self.tickers)}: {', '.join(self.tickers)}", f"range     {span}"]
        if self.notice:
            lines.append(f"notice    {self.notice}")
        lines.append(f"fetched   {self.fetched_rows} rows")
        rejected = sum(self.rejected.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items()))
        lines.append(f"rejected  {rejected} rows" + (f" ({detail})" if detail else ""))
        if self.written:
            w = self.written
            lines.append(f"written   {w.rows} rows in {len(w.partitions)} daily partitions "
                         f"({w.partitions[0]} .. {w.partitions[-1]}), run {w.run_id}")
            lines.append(f"where     {where(RAW_QUOTES_PREFIX)}")
        if self.missing:
            lines.append(f"no data   {', '.join(self.missing)} (unknown ticker, or no session in range)")
        return lines


def scrape(source: PriceSource, storage: LakeStorage, tickers: list[str], start: dt.date | None,
           end: dt.date | None, now: dt.datetime) -> ScrapeReport:
    """Fetch and write; raises SourceError subclasses for the caller to map to exit codes."""
    report = ScrapeReport(list(tickers), start, end)
    if start is not None and end is not None:
        if end < start:
            raise ValueError(f"--end {end} is before --start {start}")
        if not calendar_b3.sessions_between(start, end):
            report.notice = f"no B3 session between {start} and {end} (weekend or holiday): nothing to fetch"
            return report
    fetched = source.fetch(list(tickers), start, end)
    report.fetched_rows = len(fetched.quotes)
    report.missing = fetched.missing
    valid, report.rejected = validate_quotes(fetched.quotes, calendar_b3.is_session)
    if valid.empty:
        return report
    try:
        report.written = write_raw_quotes(storage, valid, source=source.name, symbols=fetched.symbols,
                                          now=now, run_id=new_run_id(now))
    except Exception as exc:  # S3 or disk: whatever failed, the run is not committed
        raise LakeWriteError(f"{exc.__class__.__name__}: {exc}") from exc
    return report
