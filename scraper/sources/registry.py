"""Price sources behind one interface: `fetch(tickers, start, end) -> DataFrame`.

`SOURCES` below is the registry: the only place that lists the sources. The command line's
`--source` choices, the `SOURCE=` check and the error for an unknown name all come from it.
Each source family lives in its own module, built on `base`; none of them imports this one.
The builders import their module when called, so that a run loads only the source it uses
(yfinance and its dependencies are the heaviest import of the scraper).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scraper.errors import SourceDataError
from scraper.sources.base import PriceSource


@dataclass(frozen=True)
class SourceOptions:
    """What the command line and `.env` say about a source; each builder takes what it needs."""

    csv_dir: Path | None = None
    timeout_s: float = 120.0
    cotahist_files: list[Path] = field(default_factory=list)
    all_instruments: bool = False


@dataclass(frozen=True)
class SourceSpec:
    name: str
    build: Callable[[SourceOptions], PriceSource]
    # True: with no dates, everything the files hold; False: the last closed session.
    reads_files: bool
    help: str
    # Why `--universe all` is refused with this source; empty when it lists a whole market.
    no_market_list: str = ""


def _yfinance(options: SourceOptions) -> PriceSource:
    from scraper.sources.yfinance_source import YFinanceSource

    return YFinanceSource(timeout_s=options.timeout_s)


def _b3(options: SourceOptions) -> PriceSource:
    from scraper import calendar_b3
    from scraper.sources.b3_cotahist import B3Source

    return B3Source(sessions=calendar_b3.sessions_between, files=list(options.cotahist_files),
                    all_instruments=options.all_instruments)


def _sample(options: SourceOptions) -> PriceSource:
    from scraper.sources.csv_files import sample_source

    return sample_source()


def _csv(options: SourceOptions) -> PriceSource:
    if options.csv_dir is None:
        raise SourceDataError("--source csv needs --csv-dir DIR with <TICKER>.SA.csv files")
    from scraper.sources.csv_files import CsvSource

    return CsvSource(options.csv_dir)


SOURCES: dict[str, SourceSpec] = {spec.name: spec for spec in (
    SourceSpec("yfinance", _yfinance, reads_files=False, help="Yahoo Finance through yfinance",
               no_market_list="Yahoo has no market list"),
    SourceSpec("b3", _b3, reads_files=False,
               help="B3's official COTAHIST files, downloaded per session or given with --cotahist-file"),
    SourceSpec("sample", _sample, reads_files=True, help="the bundled real Yahoo quotes, offline",
               no_market_list="the bundled sample is five stocks, not a market list"),
    SourceSpec("csv", _csv, reads_files=True, help="Yahoo-format <TICKER>.SA.csv files in --csv-dir",
               no_market_list="Yahoo-format CSV files carry no market list"),
)}


def source_names() -> tuple[str, ...]:
    """Every source's name, in the registry's order."""
    return tuple(SOURCES)


def file_source_names() -> tuple[str, ...]:
    """The sources that read files the user has: with no dates they deliver everything they hold."""
    return tuple(name for name, spec in SOURCES.items() if spec.reads_files)


def market_source_names() -> tuple[str, ...]:
    """The sources that list a whole market (`--universe all`)."""
    return tuple(name for name, spec in SOURCES.items() if not spec.no_market_list)


def market_list_refusal(name: str) -> str:
    """Why `--universe all` cannot run on the source, as one line; empty when it can."""
    spec = SOURCES.get(name)
    if spec is None or not spec.no_market_list:
        return ""
    return (f"--universe all takes every code of a market list, which only "
            f"{' or '.join(market_source_names())} has: {name} cannot ({spec.no_market_list})")


def source_choices() -> str:
    """`yfinance, b3, sample or csv`: the names as a sentence ends them."""
    *first, last = source_names()
    return f"{', '.join(first)} or {last}" if first else last


def sources_help() -> str:
    """One line naming each source and what it is, for `--help`."""
    return "; ".join(f"{spec.name}: {spec.help}" for spec in SOURCES.values())


def make_source(name: str, *, csv_dir: Path | None = None, timeout_s: float = 120.0,
                cotahist_files: list[Path] | None = None, all_instruments: bool = False) -> PriceSource:
    """The source named on the command line or in `.env`."""
    spec = SOURCES.get(name)
    if spec is None:
        raise SourceDataError(f"unknown source {name!r}: choose {source_choices()}")
    return spec.build(SourceOptions(csv_dir=csv_dir, timeout_s=timeout_s,
                                    cotahist_files=list(cotahist_files or []), all_instruments=all_instruments))
