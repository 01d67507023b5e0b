"""Check a whole lake: every file readable, every refined value equal to its recompute from raw.

    python -m b3_quotes.catalog.verify [--lake-dir DIR | --bucket NAME] [--since DAY] [--repair [--forget-missing]]

Reads every file of every table of the contract (and the run manifests), recomputes every
daily and monthly row from all of raw with the job's own code (a local Spark), and compares
each value of the four refined tables (partitioned and compact) with it, within a stated
tolerance; the first differences are printed with their keys. With --since DAY (the daily
check) every value of the compact tables is still compared, but of the partitioned tables (one
file per ticker and session or month) only the files from DAY on are read: older ones are
checked by their listing (each key raw gives has one file, no other file). A session the refined tables
hold and no raw file does is a missing raw day: it is named with the command that fetches it
again, and nothing that depends on it is rewritten (not by --repair, not by a run) until it
is back, or until `--repair --forget-missing` drops it from the refined tables on purpose.
With --repair the derived tables (everything under refined/) are rebuilt from raw, then
checked again. Raw is never changed. Exit 0 when the lake is consistent, 1 when it is not
(after --repair: when it is still not, or nothing was rebuilt), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from b3_quotes.config.settings import ConfigError, load_settings, parse_day
from b3_quotes.contract.arrow import ARROW_TYPES
from b3_quotes.contract.layout import MANIFESTS, ManifestError, RunManifest
from b3_quotes.contract.logs import configure_console
from b3_quotes.contract.tables import (
    QUOTES_DAILY,
    QUOTES_DAILY_COMPACT,
    RAW_QUOTES,
    REFINED_TABLES,
    TABLES,
    Table,
    compact_of,
)
from b3_quotes.runtime import build_runtime
from b3_quotes.storage import Lake

# Named, not __name__: `python -m b3_quotes.catalog.verify` runs this module as __main__.
logger = logging.getLogger("b3_quotes.catalog.verify")
READ_THREADS = 16
SCAN_FILES = 2_000
SHOWN = 3  # examples per finding


def _read(lake: Lake, key: str, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(lake.path(key), filesystem=lake.filesystem, columns=columns,
                         partitioning=None)  # pyright: ignore[reportArgumentType]


# Each refined table and its compact companion: the same rows, compared with the same recompute.
REFINED = tuple(t for table in REFINED_TABLES for t in (table, compact_of(table)))
# A day as each period key reads it: 2024-03-05 is dt 2024-03-05 and month 2024-03.
PERIOD_CHARACTERS = {"dt": 10, "month": 7}


def _period(key: str, day: str) -> str:
    return day[:PERIOD_CHARACTERS[key]]


def unreadable_files(lake: Lake, tables: list[Table] | None = None) -> list[str]:
    """`location: reason` of every file of these tables (default: all) and of the manifests that cannot be read whole."""
    chosen = list(TABLES.values()) if tables is None else tables
    keys = [k for t in chosen for k in lake.list_files(t.folder, recursive=True) if k.endswith(".parquet")]
    manifests = lake.list_files(MANIFESTS)
    return [p for p in _problems(lake, [*keys, *manifests], set(manifests)) if p]


def _problems(lake: Lake, keys: list[str], manifests: set[str]) -> list[str | None]:
    def problem(key: str) -> str | None:
        try:
            if key in manifests:
                RunManifest.parse(lake.read_bytes(key), key)
            else:
                _read(lake, key)
        except (OSError, pa.ArrowException, ManifestError) as exc:
            return f"{lake.describe(key)}: {' '.join(str(exc).split())[:200]}"
        return None

    with ThreadPoolExecutor(READ_THREADS) as pool:
        return list(pool.map(problem, keys))


def table_files(lake: Lake, table: Table) -> list[str]:
    """The keys of a table's data files (one recursive listing)."""
    return [k for k in lake.list_files(table.folder, recursive=True) if k.endswith(".parquet")]


def read_refined(lake: Lake, table: Table, keys: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Every row of these files of a refined table (None: all of it), and `location: reason` of
    the files that cannot be read whole.

    Reading every row is the readability check: all columns of every file are decoded. The
    read is one scan of all files; only when it fails is each file read on its own, to name the
    ones that cannot be read.
    """
    try:
        return _scan(lake, table, keys), []
    except (OSError, pa.ArrowException):
        keys = table_files(lake, table) if keys is None else keys
        found = _problems(lake, keys, set())
        problems = [p for p in found if p]
        return _scan(lake, table, [k for k, p in zip(keys, found) if not p]), problems


def _scan(lake: Lake, table: Table, keys: list[str] | None) -> pd.DataFrame:
    """The rows of these files of a table (None: all), every column as the contract types it, partition keys as strings.

    One pyarrow dataset read (its own threads, local or S3 with the Lake's credentials). DuckDB
    was tried: reading ten years' 216 k one-row files into a table kept about 290 MB a year.
    """
    partitioned = [c for c in table.partition_keys if c.name not in {c.name for c in table.columns}]
    columns = [*((c.name, ARROW_TYPES[c.type]) for c in table.columns), *((c.name, pa.string()) for c in partitioned)]
    schema = pa.schema(columns)
    if keys is None:
        keys = table_files(lake, table)
    if not keys:
        return schema.empty_table().to_pandas()
    partitioning = ds.partitioning(pa.schema([(c.name, pa.string()) for c in partitioned]), flavor="hive")
    # A file's rows are a chunk of their own: 216 k one-row chunks held at once took over 6 GB,
    # so the files are read SCAN_FILES at a time and each batch's chunks joined into one.
    batches = [ds.dataset([lake.path(k) for k in keys[i:i + SCAN_FILES]], schema=schema, format="parquet",
                          filesystem=lake.filesystem, partition_base_dir=lake.path(table.folder),
                          partitioning=partitioning).to_table().combine_chunks()
               for i in range(0, len(keys), SCAN_FILES)]
    return pa.concat_tables(batches).to_pandas()


# A refined value equals its recompute from raw when |lake - raw| <= ABS_TOLERANCE + REL_TOLERANCE * |raw|
# (numpy.isclose). The job writes exactly what it computes; the tolerance only absorbs a sum taken
# in another order (a mean of 20 closes), far below a price's cent or a return's basis point.
REL_TOLERANCE, ABS_TOLERANCE = 1e-9, 1e-12
SHOWN_VALUES = 5  # differing values printed per table


@dataclass(frozen=True)
class Check:
    """A refined table, its key, and the recompute it must equal."""

    table: Table
    key: list[str]
    expected: pd.DataFrame


def _comparable(series: pd.Series, kind: str) -> pd.Series:
    """Both sides in one representation: timestamps as UTC instants, dates as days, numbers as floats."""
    if kind == "timestamp":
        return pd.to_datetime(series, utc=True)
    if kind == "date":
        return pd.to_datetime(series)
    if kind in ("double", "bigint", "int"):
        return pd.to_numeric(series).astype("float64")  # exact for integers below 2**53
    return series.astype(object).where(series.notna(), None)


def value_differences(check: Check, actual: pd.DataFrame, where: str) -> tuple[list[str], set[tuple[str, str]]]:
    """What `actual` (a table's rows) gets wrong against the recompute: lines to print, and the keys
    it holds that raw does not (ticker, period)."""
    key, expected = check.key, check.expected
    merged = expected.merge(actual, on=key, how="outer", suffixes=("", "_lake"), indicator=True)
    extra = merged[merged["_merge"] == "right_only"]
    lacking = merged[merged["_merge"] == "left_only"]
    both = merged[merged["_merge"] == "both"]
    lines = []
    if len(lacking):
        lines.append(f"{where}: {len(lacking)} row(s) raw gives are missing (first: {_keys(lacking, key)}); "
                     "--repair rebuilds them")
    differing: list[tuple[tuple, str, object, object]] = []
    count = 0
    for column in (c for c in check.table.columns if c.name not in key):
        raw, lake = _comparable(both[column.name], column.type), _comparable(both[f"{column.name}_lake"], column.type)
        if column.type == "double":
            same = np.isclose(lake.to_numpy(), raw.to_numpy(), rtol=REL_TOLERANCE, atol=ABS_TOLERANCE, equal_nan=True)
        else:
            same = ((lake == raw) | (lake.isna() & raw.isna())).to_numpy()
        bad = np.flatnonzero(~same)
        count += len(bad)
        for index in bad[:SHOWN_VALUES]:
            row = both.iloc[index]
            differing.append((tuple(row[k] for k in key), column.name, row[f"{column.name}_lake"], row[column.name]))
    if count:
        differing.sort(key=lambda d: (d[0][1], d[0][0], d[1]))
        lines.append(f"{where}: {count} value(s) differ from a recompute from raw (tolerance {REL_TOLERANCE:g} "
                     f"relative, {ABS_TOLERANCE:g} absolute); first:")
        lines += [f"  {keys[0]} {keys[1]} {column}: {_shown(lake)} in the lake, {_shown(raw)} from raw"
                  for keys, column, lake, raw in differing[:SHOWN_VALUES]]
    return lines, set(zip(extra[key[0]], extra[key[1]]))


def _keys(rows: pd.DataFrame, key: list[str]) -> str:
    pairs = sorted(zip(rows[key[1]], rows[key[0]]))[:SHOWN]
    return ", ".join(f"{ticker} {period}" for period, ticker in pairs)


def _shown(value: object) -> str:
    return "null" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)  # pyright: ignore[reportArgumentType]


@dataclass
class Findings:
    """What verify found: lines to print, and the sessions refined holds that raw lacks."""

    lines: list[str] = field(default_factory=list)
    summary: str = ""  # the last line: where, consistent or how many problems, what was compared
    unreadable: list[str] = field(default_factory=list)  # `location: reason`
    missing_raw: dict[tuple[str, str], str] = field(default_factory=dict)  # (ticker, day) -> its refined source


def compare_values(lake: Lake, recomputed: dict[str, pd.DataFrame], since: str | None = None) -> Findings:
    """Every row of the refined tables and their compact companions against the recompute from raw
    (`recomputed`, by refined table name).

    With `since` (a day), only the partitioned tables' files of sessions (months) from that day
    on are read and compared, and the other files of theirs whose key raw does not give or that
    share a folder; the rest of the partitioned tables is checked by its listing.
    """
    findings = Findings()
    checks = [(t, Check(t, refined.compact_key, recomputed[refined.name]))
              for refined in REFINED_TABLES for t in (refined, compact_of(refined))]
    for table, check in checks:
        listed: list[str] = []
        if since is not None and table in REFINED_TABLES:
            check, keys, listed = _from_listing(lake, check, _period(check.key[1], since))
            actual, problems = read_refined(lake, table, keys)
        else:
            actual, problems = read_refined(lake, table)
        findings.unreadable += problems
        twice = actual[actual.duplicated(check.key, keep="first")]
        if len(twice):
            findings.lines.append(f"{table.folder}: {len(twice)} row(s) stored twice (first: {_keys(twice, check.key)})")
            actual = actual.drop_duplicates(check.key, keep="first")
        lines, extra = value_differences(check, actual, table.folder)
        findings.lines += listed
        if table in (QUOTES_DAILY, QUOTES_DAILY_COMPACT) and extra:
            sources = actual.set_index(["ticker", "dt"])["source"]
            findings.missing_raw.update({k: str(sources.get(k, "")) for k in extra})
        elif extra:
            lines.insert(0, f"{table.folder}: {len(extra)} row(s) no raw session gives (first: "
                            f"{', '.join(f'{t} {p}' for t, p in sorted(extra, key=lambda x: (x[1], x[0]))[:SHOWN])})")
        findings.lines += lines
    return findings


def _from_listing(lake: Lake, check: Check, since: str) -> tuple[Check, list[str], list[str]]:
    """A partitioned table checked by its listing: the check narrowed to the files worth reading
    (from `since` on, keys raw does not give, folders with more than one file), those files, and a
    line for the keys raw gives that have no file."""
    ticker, period = check.key
    folders: dict[tuple[str, str], list[str]] = {}
    for key in table_files(lake, check.table):
        parts = dict(p.split("=", 1) for p in key[len(check.table.folder) + 1:].split("/")[:-1] if "=" in p)
        folders.setdefault((parts.get(ticker, ""), parts.get(period, "")), []).append(key)
    expected = check.expected
    given = set(zip(expected[ticker], expected[period]))
    read = {k for k, files in folders.items() if k[1] >= since or k not in given or len(files) > 1}
    lacking = sorted(given - folders.keys(), key=lambda k: (k[1], k[0]))
    lines = []
    if lacking:
        lines.append(f"{check.table.folder}: {len(lacking)} row(s) raw gives are missing (first: "
                     f"{', '.join(f'{t} {p}' for t, p in lacking[:SHOWN])}); --repair rebuilds them")
    wanted = pd.Series([k in read for k in zip(expected[ticker], expected[period])], index=expected.index, dtype=bool)
    narrowed = Check(check.table, check.key, pd.DataFrame(expected[wanted]))
    return narrowed, [f for k in sorted(read) for f in folders[k]], lines


def refetch_commands(missing: dict[tuple[str, str], str], lake: Lake) -> list[str]:
    """A scraper command per source that fetches the missing raw days again (re-running is safe)."""
    lake_dir = "" if lake.is_s3 else f" --lake-dir {shlex.quote(lake.describe())}"
    commands = []
    for source in sorted(set(missing.values())):
        pairs = sorted(k for k, s in missing.items() if s == source)
        tickers = ",".join(sorted({t for t, _ in pairs}))
        days = sorted(d for _, d in pairs)
        how = {"yfinance": "", "csv": " --source csv --csv-dir <the CSV folder>"}.get(source, f" --source {source}")
        commands.append(f"python scraper/scraper_upload.py{lake_dir}{how} --tickers {tickers} "
                        f"--start {days[0]} --end {days[-1]}")
    return commands


def missing_raw_lines(missing: dict[tuple[str, str], str], lake: Lake) -> list[str]:
    if not missing:
        return []
    shown = ", ".join(f"{t} {d}" for t, d in sorted(missing, key=lambda k: (k[1], k[0]))[:SHOWN])
    return [f"missing raw: {len(missing)} session(s) the refined tables hold are in no raw file (first: {shown}); "
            "nothing that depends on them is rewritten until they are back. Fetch them again with:",
            *(f"  {command}" for command in refetch_commands(missing, lake)),
            "  or, to drop them from the refined tables on purpose: python -m b3_quotes.catalog.verify --repair --forget-missing"]


def verify(lake: Lake, recompute: Callable[[Lake], dict[str, pd.DataFrame]] | None = None,
           since: str | None = None) -> Findings:
    """What is wrong with the lake (no lines: consistent), and a summary line saying how much (`report` prints both).

    `since` (a day): the partitioned tables' files before it are checked by their listing only.
    """
    if recompute is None:
        from b3_quotes.local_mode.rebuild import recompute_lake as recompute
    # The refined tables' files are read whole by the comparison; the others' here.
    unreadable = unreadable_files(lake, [t for t in TABLES.values() if t not in REFINED])
    if any(f"/{RAW_QUOTES.folder}/" in p for p in unreadable):
        # Nothing to compare with: every value would differ for a reason already named.
        recomputed: dict[str, pd.DataFrame] = {t.name: pd.DataFrame() for t in REFINED_TABLES}
        found = Findings(lines=["values not compared: raw files cannot be read (above): restore them or "
                                "scrape those days again"])
        found.unreadable = [p for table in REFINED for p in read_refined(lake, table)[1]]
    else:
        recomputed = recompute(lake)
        found = compare_values(lake, recomputed, since)
    found.unreadable = sorted(unreadable + found.unreadable)
    found.lines = ([f"unreadable: {p}" for p in found.unreadable] + missing_raw_lines(found.missing_raw, lake)
                   + found.lines)
    problems = sum(1 for line in found.lines if not line.startswith("  "))
    scope = "" if since is None else f"; partitioned files read from {since} on, older ones listed"
    rows = " and ".join(f"{len(frame)} {name.rsplit('_', 1)[-1]}" for name, frame in recomputed.items())
    found.summary = (f"{lake.describe()}: {'consistent' if not problems else f'{problems} problem(s)'} "
                     f"({rows} rows recomputed from raw and compared{scope})")
    return found


def report(found: Findings, quiet: bool = False) -> None:
    """Print the findings, then the summary line; `quiet` prints the findings only."""
    for line in found.lines:
        print(line)
    if not quiet:
        print(found.summary)


def forget(lake: Lake, missing: dict[tuple[str, str], str]) -> None:
    """Delete the refined partitions of sessions raw lacks, and of their months (the user's decision)."""
    doomed = [k for ticker, day in missing
              for folder in (f"{t.folder}/{t.partition_names[0]}={_period(t.partition_names[0], day)}/ticker={ticker}"
                             for t in REFINED_TABLES)
              for k in lake.list_files(folder, recursive=True, hidden=True)]
    lake.delete(doomed)
    logger.info(f"forgot {len(missing)} session(s) raw lacks: {len(doomed)} refined file(s) deleted, the rest is "
                "rebuilt from raw")


def repair(lake: Lake) -> None:
    """Rebuild every refined table from raw with the job's code, on a local Spark."""
    from b3_quotes.local_mode.rebuild import rebuild_lake

    counts = rebuild_lake(lake)
    logger.info(f"rebuilt from raw: {counts} from {counts.raw_days_read} raw days")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m b3_quotes.catalog.verify", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--lake-dir", type=Path, help="local lake (default: LAKE_DIR)")
    parser.add_argument("--bucket", help="S3 lake (default: BUCKET)")
    parser.add_argument("--since", type=parse_day, metavar="YYYY-MM-DD",
                        help="the daily check: every compact value still compared, but only the partitioned files "
                             "of sessions (months) from this day on read; older ones checked by their listing")
    parser.add_argument("--repair", action="store_true", help="rebuild refined/ from raw, then check again")
    parser.add_argument("--forget-missing", action="store_true",
                        help="with --repair: drop from refined/ the sessions no raw file holds, on purpose")
    parser.add_argument("--quiet", action="store_true",
                        help="print only what is wrong, no summary line (the exit code says consistent)")
    args = parser.parse_args(argv)
    configure_console("stdout", quiet=args.quiet)
    if args.forget_missing and not args.repair:
        parser.error("--forget-missing goes with --repair")
    try:
        runtime = build_runtime(load_settings().with_overrides(lake_dir=args.lake_dir, bucket=args.bucket))
        runtime.require_lake()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    lake = runtime.lake  # the runtime's: on S3, with its boto3 session
    since = args.since.isoformat() if args.since else None
    runtime.refresh_catalog()  # a broken local catalog file is rebuilt here too, with one line
    # Under the lake's lock: a scrape half-way (raw written, refine to come) is not a finding.
    with runtime.holding_lake("verify"):
        found = verify(lake, since=since)
        report(found, args.quiet)
        if not found.lines:
            return 0
        if not args.repair:
            return 1
        if any(f"/{RAW_QUOTES.folder}/" in p or f"/{MANIFESTS}/" in p for p in found.unreadable):
            print("error: raw files cannot be read (restore them or scrape those days again): nothing was rebuilt",
                  file=sys.stderr)
            return 1
        if found.missing_raw and not args.forget_missing:
            print(f"error: raw lacks {len(found.missing_raw)} session(s) the refined tables hold (above): "
                  "nothing was rebuilt, so the values that depend on them stay as they were", file=sys.stderr)
            return 1
        if found.missing_raw:
            forget(lake, found.missing_raw)
        repair(lake)
        found = verify(lake, since=since)
        report(found, args.quiet)
        return 0 if not found.lines else 1


if __name__ == "__main__":
    sys.exit(main())
