"""One scrape run: fetch, validate, write raw Parquet and the run's manifest (its command line: scraper_upload.py)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import pandas as pd

from b3_quotes.config.settings import ConfigError
from b3_quotes.contract.tables import CORPORATE_EVENTS, QUOTE_ISSUES, RAW_QUOTES, Table
from b3_quotes.storage import Lake
from b3_quotes.storage.lock import LakeBusy
from scraper import calendar_b3
from scraper.raw_writer import RunStamp, WrittenRun, new_run_id, write_raw_run
from scraper.sources.base import FetchResult, PriceSource
from scraper.validation import (
    ACTION_KEPT,
    ACTION_REJECTED,
    check_storable,
    count_reasons,
    empty_issues,
    last_rows,
    previous_sessions,
    unexplained_distributions,
    validate_quotes,
)

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NO_DATA = 3
EXIT_SOURCE_UNAVAILABLE = 4
EXIT_BAD_INPUT = 5
EXIT_LAKE_WRITE_FAILED = 6
EXIT_LAKE_BUSY = 7


class LakeWriteError(RuntimeError):
    """Writing to the lake failed part-way; no manifest was written, so nothing was triggered."""


@dataclass
class ScrapeReport:
    tickers: list[str]
    start: dt.date | None
    end: dt.date | None
    fetched_rows: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    kept_with_issue: Counter[str] = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)
    missing_why: dict[str, str] = field(default_factory=dict)  # ticker -> what was looked for
    written: WrittenRun | None = None
    notice: str = ""
    issues: pd.DataFrame = field(default_factory=empty_issues)
    issue_keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    events: int = 0  # corporate events loaded
    asked_quotes: bool = True  # False: a run of events files alone (--events-only)
    last_rows: pd.DataFrame | None = None  # each instrument's last valid row: the next file's `earlier`

    @property
    def exit_code(self) -> int:
        """3 when a ticker had no data, or a run asked for quotes wrote none (whatever else it loaded)."""
        return EXIT_NO_DATA if self.missing or (self.asked_quotes and not self.quotes_written and not self.notice) else EXIT_OK

    @property
    def quotes_written(self) -> int:
        return 0 if self.written is None else self.written.rows

    def summary_lines(self, where: Callable[[str], str]) -> list[str]:
        span = f"{self.start or 'first'} .. {self.end or 'last'}"
        lines = [f"tickers   {len(self.tickers)}: {first_codes(self.tickers)}", f"range     {span}"]
        lines += [f"notice    {note}" for note in [self.notice, *self.notes] if note]
        lines.append(f"fetched   {self.fetched_rows} rows")
        lines.append(f"rejected  {_counted(self.rejected)}")
        if self.kept_with_issue:
            lines.append(f"kept      {_counted(self.kept_with_issue)} loaded as the source gave them")
        if self.issue_keys:
            lines.append(f"report    every row with an issue, its reason and action: {where(QUOTE_ISSUES.prefix)} "
                         f"(table {QUOTE_ISSUES.name})")
        if self.events:
            lines.append(f"events    {self.events} corporate events (table corporate_events)")
        if self.written:
            w = self.written
            lines.append(f"written   {w.rows} rows in {len(w.days)} daily partitions "
                         f"({w.days[0]} .. {w.days[-1]}), run {w.run_id}")
            lines.append(f"where     {where(RAW_QUOTES.prefix)}")
        if len(self.missing) <= SUMMARY_TICKERS:
            lines += [f"no data   {ticker}: {self.why_missing(ticker)}" for ticker in self.missing]
            return lines
        # Thousands of unknown codes (a pasted list gone wrong) would print a line each: count them per reason.
        by_reason: dict[str, list[str]] = {}
        for ticker in self.missing:
            by_reason.setdefault(self.why_missing(ticker).replace(ticker, "<TICKER>"), []).append(ticker)
        lines += [f"no data   {len(tickers)} tickers, {why}: {first_codes(tickers)}" for why, tickers in by_reason.items()]
        return lines

    def why_missing(self, ticker: str) -> str:
        return self.missing_why.get(ticker, "unknown ticker, or no session in range")


SUMMARY_TICKERS = 20  # the whole market is 745 codes: the summary names the first ones


def first_codes(tickers: list[str]) -> str:
    """`A, B, ... T ... and 725 more`: the first SUMMARY_TICKERS codes, then how many others."""
    shown = ", ".join(tickers[:SUMMARY_TICKERS])
    return shown + (f" ... and {len(tickers) - SUMMARY_TICKERS} more" if len(tickers) > SUMMARY_TICKERS else "")


def _counted(reasons: Counter[str]) -> str:
    detail = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
    return f"{sum(reasons.values())} rows" + (f" ({detail})" if detail else "")


def scrape(source: PriceSource | None, lake: Lake, tickers: list[str], start: dt.date | None,
           end: dt.date | None, now: dt.datetime, before_write: Callable[[], None] = lambda: None,
           given: FetchResult | None = None, earlier: pd.DataFrame | None = None) -> ScrapeReport:
    """Fetch, validate and write; raises SourceError subclasses for the caller to map to exit codes.

    `given`: tables the command read besides the source (the corporate events of files, the IBOV
    portfolio), validated and written with the source's own, as one run. With no `source`, the
    run is `given` alone (events files: their windows are refined again). `before_write` runs
    once, just before the first write (the local lake takes its lock there). `earlier`: the last
    rows of the files an earlier run of the same command read (the report's `last_rows`), which
    the distribution check continues from.
    """
    report = ScrapeReport(list(tickers), start, end, asked_quotes=source is not None)
    fetched = given = given or FetchResult()
    if source is None:
        if not given.rows():
            report.notice = "no ticker and no corporate event to load"
            return report
        name = "events"
        report.tickers = sorted({str(t) for frame in given.rows().values() for t in frame["ticker"]})
    else:
        name = source.name
        if start is not None and end is not None:
            if end < start:
                raise ValueError(f"--end {end} is before --start {start}")
            report.notes.extend(_calendar_notes(start, end))
            if not calendar_b3.sessions_between(start, end):  # nothing to fetch; what was given is still written
                report.notice = f"no B3 session between {start} and {end} (weekend or holiday): nothing to fetch"
        if not report.notice:
            fetched = source.fetch(list(tickers), start, end)
            report.missing = fetched.missing
            if describe_missing := getattr(source, "missing_detail", None):  # file sources say what they looked for
                report.missing_why = {t: describe_missing(t) for t in fetched.missing}
            fetched = fetched.with_tables(given)
    tables = fetched.rows()
    report.fetched_rows = len(tables.get(RAW_QUOTES, ())) + len(tables.get(QUOTE_ISSUES, ()))
    report.events = len(tables.get(CORPORATE_EVENTS, ()))
    tables, issues, report.last_rows = checked(tables, calendar_b3.session_rules(now), earlier,
                                               lambda row: f"{name} {row['ticker']} {row['trade_date']}")
    report.rejected, report.issues = count_reasons(issues), issues
    report.kept_with_issue = count_reasons(issues, ACTION_KEPT)
    if not tables and issues.empty:
        return report
    try:
        before_write()
        landed = write_raw_run(lake, {**tables, QUOTE_ISSUES: issues},
                               RunStamp(name, fetched.symbols, now, new_run_id(now)))
    except (LakeBusy, LakeWriteError, ConfigError):  # already said what failed: not wrapped a second time
        raise
    except Exception as exc:  # S3 or disk: whatever failed, the run is not committed
        raise LakeWriteError(describe_write_error(exc)) from exc
    report.issue_keys = landed.issue_keys
    report.written = landed if landed.manifest_key else None  # committed: the refine takes it
    return report


def checked(tables: dict[Table, pd.DataFrame], rules: calendar_b3.SessionRules, earlier: pd.DataFrame | None,
            describe: Callable[[pd.Series], str]) -> tuple[dict[Table, pd.DataFrame], pd.DataFrame, pd.DataFrame | None]:
    """A run's tables through the one validation every table takes: the rows to write of each, the
    rows with an issue (quote_issues' shape: the rows the source set aside itself first, then
    what the checks found), and each instrument's last valid quote (for the next file's check).

    Quotes go through validation's rules and the distribution check against the run's events.
    The other tables are written as given: their readers refuse what they cannot read
    (read_events_file, parse_portfolio), with one line naming the file.
    """
    tables = dict(tables)
    issues = [tables.pop(QUOTE_ISSUES, empty_issues()).assign(action=ACTION_REJECTED)]  # a source sets aside what it cannot read
    last = earlier
    if RAW_QUOTES in tables:
        check_storable(tables[RAW_QUOTES], describe)
        valid, found = validate_quotes(tables[RAW_QUOTES], rules)
        valid = valid.assign(prev_b3_session=previous_sessions(cast(pd.Series, valid["trade_date"]), rules))
        issues += [found, unexplained_distributions(valid, tables.get(CORPORATE_EVENTS), earlier)]
        last = last_rows(valid, earlier)
        tables[RAW_QUOTES] = valid
    found = [frame for frame in issues if not frame.empty]
    return ({table: frame for table, frame in tables.items() if not frame.empty},
            pd.concat(found, ignore_index=True) if found else empty_issues(), last)


def combine_reports(reports: list[ScrapeReport]) -> ScrapeReport:
    """One summary of several runs of one command (a run per COTAHIST file): a ticker is missing
    when no file had it; `written` spans every committed run, its manifest key the last one's."""
    first = reports[0]
    tickers = list(dict.fromkeys(t for r in reports for t in r.tickers))
    combined = ScrapeReport(tickers, first.start, first.end, notice=first.notice, notes=first.notes,
                            events=first.events,
                            missing_why={t: why for r in reports for t, why in r.missing_why.items()})
    combined.fetched_rows = sum(r.fetched_rows for r in reports)
    combined.rejected = sum((r.rejected for r in reports), Counter())
    combined.kept_with_issue = sum((r.kept_with_issue for r in reports), Counter())
    combined.missing = [t for t in first.missing if all(t in r.missing for r in reports)]
    combined.issue_keys = [k for r in reports for k in r.issue_keys]
    runs = [r.written for r in reports if r.written is not None]
    if runs:
        run_id = runs[0].run_id if len(runs) == 1 else f"{runs[0].run_id} .. {runs[-1].run_id} ({len(runs)} runs, one a file)"
        combined.written = WrittenRun(run_id, sorted({d for w in runs for d in w.days}),
                                      [k for w in runs for k in w.keys], sum(w.rows for w in runs),
                                      runs[-1].manifest_key, [k for w in runs for k in w.issue_keys])
    return combined


def _calendar_notes(start: dt.date, end: dt.date) -> list[str]:
    """Days before the calendar's first session cannot be checked against it: say so."""
    first = calendar_b3.first_session()
    if end < first:
        raise ValueError(f"the range {start} .. {end} lies before {first}, the first session the B3 calendar "
                         f"knows (exchange_calendars' BVMF): choose days from {first} on")
    if start < first:
        return [f"days before {first} are not in the B3 calendar: their rows are rejected (outside_calendar), "
                "since no holiday check can tell a session from a holiday there"]
    return []


def describe_write_error(exc: Exception) -> str:
    """The cause and, when the error carries one, the path."""
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    return f"{exc.__class__.__name__}: {exc}"
