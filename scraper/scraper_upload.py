"""The scraper's command line: fetch B3 daily quotes, land them as raw Parquet; locally, run the whole pipeline.

Installed (`pip install -e .`, which `make demo` does), it is also the command `b3-scrape`.

Examples:
  python scraper/scraper_upload.py                              # .env tickers, last session
  python scraper/scraper_upload.py --source sample              # bundled real data, offline
  python scraper/scraper_upload.py --tickers PETR4,VALE3 --start 2024-01-02 --end 2024-06-28
  python scraper/scraper_upload.py --source csv --csv-dir ~/quotes --tickers PETR4
  python scraper/scraper_upload.py --source b3 --universe ibov             # official file, IBOV stocks
  python scraper/scraper_upload.py --source b3 --cotahist-file COTAHIST_A2023.ZIP --universe all  # whole market
  python scraper/scraper_upload.py --source b3 --cotahist-file COTAHIST_A2023.ZIP --tickers PETR4
  python scraper/scraper_upload.py --events-only --events-file events.csv    # corporate events alone
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import logging
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pandas as pd

try:
    from b3_quotes.contract.layout import RAW_PREFIX
    from b3_quotes.contract.logs import configure_console
    from b3_quotes.contract.tables import CORPORATE_EVENTS, IBOV_PORTFOLIO
except ModuleNotFoundError as exc:  # a Python the project is not installed in
    sys.exit(f"error: cannot import {exc.name}: install the project first (make demo, or pip install -e .)")
from b3_quotes.config.settings import (  # noqa: E402
    ConfigError,
    Settings,
    load_settings,
    normalize_ticker,
    parse_day,
    parse_tickers,
)
from b3_quotes.runtime import Runtime, build_runtime  # noqa: E402
from b3_quotes.storage import LakeDataMissing  # noqa: E402
from b3_quotes.storage.lock import LakeBusy  # noqa: E402
from scraper import calendar_b3  # noqa: E402
from scraper.errors import SourceDataError, SourceUnavailable  # noqa: E402
from scraper.http_client import run_with_deadline  # noqa: E402
from scraper.run import (  # noqa: E402
    EXIT_BAD_INPUT,
    EXIT_LAKE_BUSY,
    EXIT_LAKE_WRITE_FAILED,
    EXIT_OK,
    EXIT_SOURCE_UNAVAILABLE,
    EXIT_USAGE,
    LakeWriteError,
    ScrapeReport,
    combine_reports,
    first_codes,
    scrape,
)
from scraper.sources.base import FetchResult, MarketSource, PriceSource  # noqa: E402
from scraper.sources.registry import (  # noqa: E402
    file_source_names,
    make_source,
    market_list_refusal,
    source_names,
    sources_help,
)

# Run as a script its __name__ is __main__: its lines go through the scraper package's logger.
logger = logging.getLogger("scraper.command")
SOURCES = source_names()
FILE_SOURCES = file_source_names()
# ibov: the day's IBOV portfolio; all: every code the source's market list holds (b3's COTAHIST files).
UNIVERSES = ("ibov", "all")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickers", help="comma-separated B3 codes (PETR4,VALE3); .SA optional")
    parser.add_argument("--start", type=parse_day, help="first day, inclusive (default: last session)")
    parser.add_argument("--end", type=parse_day, help="last day, inclusive (default: last session)")
    parser.add_argument("--source", choices=SOURCES,
                        help=f"where quotes come from (default SOURCE or yfinance): {sources_help()}")
    parser.add_argument("--csv-dir", type=Path, help="folder of <TICKER>.SA.csv files for --source csv")
    parser.add_argument("--cotahist-file", type=Path, action="append", default=[],
                        help="a COTAHIST file you have (daily, monthly or yearly, .ZIP or .TXT) for --source b3; repeatable")
    parser.add_argument("--all-instruments", action="store_true",
                        help="with --source b3: keep every instrument, not only the cash-market round lot")
    parser.add_argument("--universe", choices=UNIVERSES,
                        help="instead of --tickers: ibov, the day's IBOV portfolio; all, every code of the "
                             "COTAHIST file(s) in the market --source b3 keeps (the round-lot cash market, "
                             "or everything with --all-instruments)")
    parser.add_argument("--ibov-file", type=Path, help="a saved GetPortfolioDay response to use instead of B3's API")
    parser.add_argument("--events-file", type=Path, action="append", default=[],
                        help="corporate events CSV (ticker,ex_date,kind,share_ratio,cash_per_share) loaded with "
                             "the run, for any source; repeatable")
    parser.add_argument("--b3-events-file", action="append", default=[], metavar="[COMPANY=]PATH",
                        help="a saved B3 GetListedSupplementCompany answer (splits, reverse splits, bonus shares, "
                             "dividends, JCP), or COMPANY=PATH for a company's GetListedCashDividends answer "
                             "(dividends, JCP; e.g. ABEV=cash.json), loaded with the run; repeatable")
    parser.add_argument("--b3-events", action="store_true",
                        help="also fetch the tickers' corporate events from B3's listed-company API (online)")
    parser.add_argument("--events-only", action="store_true",
                        help="load only the events files (no quotes fetched): the sessions they change are "
                             "refined again")
    parser.add_argument("--lake-dir", type=Path, help="local lake folder (default LAKE_DIR or ./lake)")
    parser.add_argument("--bucket", help="S3 bucket: write to AWS instead of the local lake")
    parser.add_argument("--quiet", action="store_true",
                        help="print only warnings and errors (no progress, no summary): the exit code tells the rest")
    parser.add_argument("--debug", action="store_true", help="show the traceback behind an error")
    return parser


def resolve_range(source: str, start: dt.date | None, end: dt.date | None,
                  has_files: bool = False) -> tuple[dt.date | None, dt.date | None]:
    """Live sources default to the last closed session; file sources to everything they hold."""
    if source in FILE_SOURCES or has_files:
        return start, end
    if start is None and end is None:
        last = calendar_b3.last_closed_session()
        return last, last
    if start is None or end is None:
        day = start or end
        return day, day
    return start, end


def load_universe(universe: str, ibov_file: Path | None) -> pd.DataFrame:
    """The IBOV constituents of the day (the caller keeps the snapshot in raw/ibov_portfolio/)."""
    from scraper.http_client import RequestsClient
    from scraper.sources.b3_cotahist import read_input_file
    from scraper.sources.b3_portfolio import fetch_ibov_portfolio, parse_portfolio

    if ibov_file is not None:
        try:
            portfolio = parse_portfolio(read_input_file(ibov_file, "--ibov-file"))
        except SourceDataError as exc:
            raise SourceDataError(f"--ibov-file {ibov_file}: {exc}" if str(ibov_file) not in str(exc) else str(exc)) from exc
    else:
        portfolio = run_with_deadline(lambda: fetch_ibov_portfolio(RequestsClient()), 120, "B3 index API")
    try:  # the same rule as --tickers: a code from a file never becomes a path
        portfolio["ticker"] = [normalize_ticker(t) for t in portfolio["ticker"]]
    except ConfigError as exc:
        raise SourceDataError(f"IBOV portfolio {ibov_file or 'from B3'}: {exc}") from exc
    logger.info(f"universe  IBOV portfolio of {portfolio['portfolio_date'].iloc[0]}: {len(portfolio)} stocks "
                f"(weights sum to {portfolio['weight_pct'].sum():.3f} %)")
    return portfolio


def check_universe(universe: str, source: str, ibov_file: Path | None) -> None:
    """A universe the source can give, before anything is downloaded or written."""
    if not universe:
        return
    if universe not in UNIVERSES:
        raise ConfigError(f"UNIVERSE={universe!r}: choose one of {', '.join(UNIVERSES)}")
    if universe == "all" and (refusal := market_list_refusal(source)):
        raise ConfigError(refusal)
    if universe == "all" and ibov_file is not None:
        raise ConfigError("--ibov-file goes with --universe ibov, not --universe all")


def market_universe(source: PriceSource, start: dt.date | None, end: dt.date | None) -> tuple[str, ...]:
    """Every code of the source's market list in the range (check_universe made sure it has one)."""
    market = cast(MarketSource, source)
    tickers = tuple(market.market_tickers(start, end))
    logger.info(f"universe  {market.market_description}: {len(tickers)} codes")
    return tickers


class RefineFailed(RuntimeError):
    """The raw run is committed but refining it here failed; the message says what to do."""


class PartlyCommitted(RuntimeError):
    """A file of several failed after the files before it were committed; `code` is the failure's."""

    def __init__(self, code: int, line: str) -> None:
        super().__init__(line)
        self.code = code


# Error type -> exit code and its one line on stderr (docs/operations.md), the first match wins:
# SourceDataError before ValueError (an unstorable value is bad input, not a bad option).
FAILURES: tuple[tuple[type[Exception], int, str], ...] = (
    (SourceDataError, EXIT_BAD_INPUT, "bad input, nothing written: {}"),
    (ConfigError, EXIT_USAGE, "{}"),
    (ValueError, EXIT_USAGE, "{}"),
    (SourceUnavailable, EXIT_SOURCE_UNAVAILABLE, "source unavailable, nothing written: {}"),
    (LakeBusy, EXIT_LAKE_BUSY, "the lake is busy, nothing written: {}; re-run the same command when it is done "
                               "(or raise LAKE_LOCK_WAIT_S)"),
    (LakeWriteError, EXIT_LAKE_WRITE_FAILED, "writing to the lake failed, run not committed (no manifest, nothing "
                                             "triggered): {}; once that is fixed, re-run the same command"),
    (RefineFailed, EXIT_LAKE_WRITE_FAILED, "{}"),
)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, and turn any error into its exit code and one line."""
    args = build_parser().parse_args(argv)
    configure_console("stdout", quiet=args.quiet)
    try:
        return run(args)
    except PartlyCommitted as exc:
        return fail(args, exc.code, str(exc))
    except KeyboardInterrupt:
        print("error: interrupted; nothing committed after the last manifest: re-run the same command",
              file=sys.stderr)
        return 130
    except Exception as exc:
        for kind, code, line in FAILURES:
            if isinstance(exc, kind):
                return fail(args, code, line.format(exc))
        if args.debug:  # the last resort: one line, the traceback only with --debug
            raise
        print(f"error: unexpected {exc.__class__.__name__}: {exc} (re-run with --debug for the traceback)",
              file=sys.stderr)
        return 1


def fail(args: argparse.Namespace, code: int, line: str) -> int:
    """One line on stderr naming the cause; the traceback too with --debug."""
    if args.debug:
        traceback.print_exc()
    print(f"error: {line}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    """One scrape: settings, universe, download, the writes under the lake's lock, then the refine or the trigger."""
    settings, universe = read_options(args)
    runtime = build_runtime(settings)
    runtime.warm_up()  # local: the JVM starts while the scrape downloads
    with contextlib.ExitStack() as held:
        writes = LakeWrites(runtime, held)
        settings, report = fetch_and_write(args, settings, universe, runtime, writes)
        for line in report.summary_lines(runtime.lake.describe):
            logger.info(line)
        if report.written is not None:
            refine_or_trigger(runtime, report.written.manifest_key)
    return say_outcome(report)


def read_options(args: argparse.Namespace) -> tuple[Settings, str]:
    """The settings with the command line's overrides, and the universe; ConfigError when they do not fit."""
    tickers = parse_tickers(args.tickers) if args.tickers is not None else None
    if args.tickers is not None and not tickers:
        raise ConfigError("--tickers is empty: give B3 codes such as PETR4,VALE3, or leave the option "
                          "out to use TICKERS from .env")
    settings = load_settings().with_overrides(
        tickers=tickers, source=args.source, lake_dir=args.lake_dir, bucket=args.bucket,
    )
    if settings.source not in SOURCES:
        raise ConfigError(f"SOURCE={settings.source!r}: choose one of {', '.join(SOURCES)}")
    if args.cotahist_file and settings.source != "b3":
        raise ConfigError("--cotahist-file goes with --source b3")
    universe = args.universe or settings.universe
    check_universe(universe, settings.source, args.ibov_file)
    return settings, universe


@dataclass
class LakeWrites:
    """Every write of a run happens under the lake's lock, taken once, after the download."""

    runtime: Runtime
    held: contextlib.ExitStack
    holding: bool = False

    def hold(self) -> None:
        """Take the lock (once) and sweep what a killed run left."""
        if self.holding:
            return
        try:
            self.held.enter_context(self.runtime.holding_lake())
        except OSError as exc:
            raise LakeWriteError(f"cannot lock the lake: {exc.filename or self.runtime.settings.lake_dir}: "
                                 f"{exc.strerror or exc}") from exc
        if removed := self.runtime.lake.remove_temp_files(RAW_PREFIX):
            logger.info(f"removed {removed} half-written raw file(s) an interrupted run left behind")
        self.holding = True


def read_event_files(args: argparse.Namespace) -> FetchResult:
    """The events of --events-file and --b3-events-file, each under its source's name."""
    from scraper.events import read_b3_events_arg, read_events_file

    frames = [read_events_file(p).assign(source="events_file") for p in args.events_file]
    frames += [read_b3_events_arg(given, calendar_b3.next_session).assign(source="b3") for given in args.b3_events_file]
    return events_given(frames)


def events_given(frames: list[pd.DataFrame]) -> FetchResult:
    frames = [f for f in frames if not f.empty]
    return FetchResult({CORPORATE_EVENTS: pd.concat(frames, ignore_index=True)} if frames else {})


def _with_b3_events(given: FetchResult, tickers: tuple[str, ...], timeout_s: float) -> FetchResult:
    """The files' tables and the events B3's API lists for the tickers, fetched under the download deadline."""
    from scraper.events import fetch_b3_events
    from scraper.http_client import RequestsClient

    fetched = run_with_deadline(lambda: fetch_b3_events(RequestsClient(), tickers, calendar_b3.next_session),
                                timeout_s, "B3's listed-company API").assign(source="b3")
    return given.with_tables(events_given([fetched]))


def fetch_and_write(args: argparse.Namespace, settings: Settings, universe: str, runtime: Runtime,
                    writes: LakeWrites) -> tuple[Settings, ScrapeReport]:
    """Resolve the range and the tickers, download, validate and write the raw files and the manifest."""
    given = read_event_files(args)
    if args.events_only:
        if not (args.events_file or args.b3_events_file):
            raise ConfigError("--events-only needs --events-file or --b3-events-file")
        logger.info(f"loading corporate events into {runtime.where}")
        return settings, scrape(None, runtime.lake, [], None, None, dt.datetime.now(dt.UTC), before_write=writes.hold,
                                given=given)
    start, end = resolve_range(settings.source, args.start, args.end, bool(args.cotahist_file))
    if len(args.cotahist_file) > 1:
        return settings, scrape_file_by_file(args, settings, universe, runtime, writes, given, start, end)
    source = make_source(settings.source, csv_dir=args.csv_dir, timeout_s=settings.download_timeout_s,
                         cotahist_files=args.cotahist_file, all_instruments=args.all_instruments)
    now = dt.datetime.now(dt.UTC)
    if universe == "all":
        # replace, not with_overrides: an empty market is no tickers, never .env's TICKERS
        settings = dataclasses.replace(settings, tickers=market_universe(source, start, end))
    elif universe:  # the day's portfolio is written with the run, even when no quote is (logged then)
        portfolio = load_universe(universe, args.ibov_file)
        settings = settings.with_overrides(tickers=tuple(portfolio["ticker"]))
        given = given.with_tables(FetchResult({IBOV_PORTFOLIO: portfolio}))
    if args.b3_events:
        given = _with_b3_events(given, settings.tickers, settings.download_timeout_s)
    logger.info(f"scraping {len(settings.tickers)} tickers from {settings.source} into {runtime.where}")
    report = scrape(source, runtime.lake, list(settings.tickers), start, end, now, before_write=writes.hold,
                    given=given)
    return settings, report


def scrape_file_by_file(args: argparse.Namespace, settings: Settings, universe: str, runtime: Runtime,
                        writes: LakeWrites, given: FetchResult, start: dt.date | None,
                        end: dt.date | None) -> ScrapeReport:
    """Several COTAHIST files, one at a time: each is parsed, validated and committed (its raw days, then
    its own manifest) before the next is read. Memory follows the largest file, not the years; a run
    stopped between files keeps the files it committed (pending: the next refine takes them), and
    running the same command again rewrites the same raw files. The refine runs once, after the last.
    The events given go with every file (each file's distribution check reads them); the IBOV
    portfolio with the first.
    """
    snapshot = FetchResult()
    if universe == "ibov":
        portfolio = load_universe(universe, args.ibov_file)
        settings = settings.with_overrides(tickers=tuple(portfolio["ticker"]))
        snapshot = FetchResult({IBOV_PORTFOLIO: portfolio})
    from scraper.sources.b3_cotahist import read_input_file

    for path in args.cotahist_file:  # a missing file stops the run before any file is committed
        if not path.is_file():
            read_input_file(path, "--cotahist-file")
    reports: list[ScrapeReport] = []
    asked_b3: set[str] = set()
    carried = None  # each instrument's last row so far: the distribution check continues across files
    for number, path in enumerate(args.cotahist_file, 1):
        source = make_source("b3", timeout_s=settings.download_timeout_s, cotahist_files=[path],
                             all_instruments=args.all_instruments)
        tickers = market_universe(source, start, end) if universe == "all" else settings.tickers
        if args.b3_events and (new := tuple(t for t in tickers if t not in asked_b3)):
            given = _with_b3_events(given, new, settings.download_timeout_s)
            asked_b3.update(new)
        logger.info(f"scraping {len(tickers)} tickers from {path.name} ({number} of {len(args.cotahist_file)} files) "
                    f"into {runtime.where}")
        # Each file is its own run, ingested after the one before: of an instrument and day in two
        # files the later file's row is the newest, as when the files were read together.
        try:
            report = scrape(source, runtime.lake, list(tickers), start, end, dt.datetime.now(dt.UTC),
                            before_write=writes.hold, given=given.with_tables(snapshot) if number == 1 else given,
                            earlier=carried)
        except (SourceDataError, LakeWriteError) as exc:
            committed = sum(r.written is not None for r in reports)
            if not committed:
                raise
            what, code = (("bad input", EXIT_BAD_INPUT) if isinstance(exc, SourceDataError)
                          else ("writing to the lake failed", EXIT_LAKE_WRITE_FAILED))
            raise PartlyCommitted(code, f"{what} at {path}: {exc}; the {committed} file(s) before it are committed "
                                        "and stay pending (the next run refines them): once that is fixed, re-run "
                                        "the same command") from exc
        carried = report.last_rows if report.last_rows is not None else carried
        if report.written is not None:
            logger.info(f"committed {report.written.rows} rows in {len(report.written.days)} daily partitions, "
                        f"run {report.written.run_id}")
        reports.append(report)
    return combine_reports(reports)


def refine_or_trigger(runtime: Runtime, manifest_key: str) -> None:
    """After the commit: refine here (local) or say what the bucket notification starts (AWS).

    A local refine that fails leaves the raw run committed and pending: RefineFailed says so.
    """
    committed = runtime.lake.describe(manifest_key)
    try:
        runtime.after_commit(manifest_key)
    except LakeDataMissing as exc:
        raise RefineFailed(f"refining stopped: {exc}. The raw run is committed ({committed}) and stays pending") from exc
    except OSError as exc:
        where = exc.filename or runtime.lake.describe("refined")
        raise RefineFailed(f"refining failed{f' writing {where}' if exc.errno else ''}: {exc.strerror or exc}; "
                           f"the raw run is committed ({committed}) and stays pending: once that is fixed, "
                           "re-run the same command and it is refined") from exc


def say_outcome(report: ScrapeReport) -> int:
    """The run's exit code, with the line that explains a non-zero one."""
    code = report.exit_code
    if code != EXIT_OK and not report.quotes_written:
        print("error: no valid quotes to write", file=sys.stderr)
    elif code != EXIT_OK:
        print(f"error: no data for {first_codes(report.missing)}; the other tickers were written",
              file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
