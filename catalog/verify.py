"""Check a whole lake: every file readable, the refined tables consistent with raw and with each other.

    python -m catalog.verify [--lake-dir DIR | --bucket NAME] [--repair]

Reads every file of every table of the contract (and the run manifests), then compares the
sessions raw holds with quotes_daily's, and each refined table with its compact companion.
With --repair the derived tables (everything under refined/) are rebuilt from raw by the job's
own code on a local Spark, then checked again. Raw is never changed: an unreadable raw file is
named, to be restored or scraped again. Exit 0 when the lake is consistent, 1 when it is not
(after --repair: when it is still not), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from contract.layout import MANIFESTS, ManifestError, RunManifest
from contract.tables import (
    QUOTES_DAILY,
    QUOTES_DAILY_COMPACT,
    QUOTES_MONTHLY,
    QUOTES_MONTHLY_COMPACT,
    RAW_QUOTES,
    TABLES,
)
from pipeline.settings import ConfigError, load_settings
from runtime import build_runtime
from storage import Lake

READ_THREADS = 16
SHOWN = 3  # examples per finding


def _read(lake: Lake, key: str, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(lake.path(key), filesystem=lake.filesystem, columns=columns,
                         partitioning=None)  # pyright: ignore[reportArgumentType]


def unreadable_files(lake: Lake) -> list[str]:
    """`location: reason` of every lake file that cannot be read whole."""
    keys = [k for t in TABLES.values() for k in lake.list_files(t.folder, recursive=True) if k.endswith(".parquet")]
    manifests = lake.list_files(MANIFESTS)

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
        return [p for p in pool.map(problem, [*keys, *manifests]) if p]


def _partition_keys(lake: Lake, folder: str, first: str, second: str) -> set[tuple[str, str]]:
    """(ticker, period) of every `first=.../ticker=...` partition file of a table."""
    found = set()
    for key in lake.list_files(folder, recursive=True):
        parts = dict(p.split("=", 1) for p in key.split("/") if "=" in p)
        if first in parts and second in parts:
            found.add((parts[second], parts[first]))
    return found


def _compact_keys(lake: Lake, folder: str, period: str) -> set[tuple[str, str]]:
    found = set()
    for key in lake.list_files(folder, recursive=True):
        try:
            table = _read(lake, key, ["ticker", period])
        except (OSError, pa.ArrowException):
            continue  # named by unreadable_files
        found.update(zip(table["ticker"].to_pylist(), table[period].to_pylist()))
    return found


def _raw_sessions(lake: Lake) -> set[tuple[str, str]]:
    found = set()
    for key in lake.list_files(RAW_QUOTES.folder, recursive=True):
        try:
            table = _read(lake, key, ["ticker", "trade_date"])
        except (OSError, pa.ArrowException):
            continue
        found.update((t, d.isoformat()) for t, d in zip(table["ticker"].to_pylist(), table["trade_date"].to_pylist()))
    return found


def _differ(what: str, left: set, right: set, left_name: str, right_name: str) -> list[str]:
    lines = []
    for only, has, lacks in ((left - right, left_name, right_name), (right - left, right_name, left_name)):
        if only:
            shown = ", ".join(f"{t} {p}" for t, p in sorted(only, key=lambda x: (x[1], x[0]))[:SHOWN])
            lines.append(f"{what}: {len(only)} in {has} but not in {lacks} (first: {shown})")
    return lines


def inconsistencies(lake: Lake) -> list[str]:
    """What raw, the partitioned refined tables and their compact companions disagree on."""
    daily = _partition_keys(lake, QUOTES_DAILY.folder, "dt", "ticker")
    monthly = _partition_keys(lake, QUOTES_MONTHLY.folder, "month", "ticker")
    return [
        *_differ("sessions", _raw_sessions(lake), daily, RAW_QUOTES.folder, QUOTES_DAILY.folder),
        *_differ("sessions", daily, _compact_keys(lake, QUOTES_DAILY_COMPACT.folder, "dt"),
                 QUOTES_DAILY.folder, QUOTES_DAILY_COMPACT.folder),
        *_differ("months", monthly, _compact_keys(lake, QUOTES_MONTHLY_COMPACT.folder, "month"),
                 QUOTES_MONTHLY.folder, QUOTES_MONTHLY_COMPACT.folder),
    ]


def verify(lake: Lake, log: Callable[[str], None] = print) -> bool:
    """Print what is wrong with the lake; True when nothing is."""
    problems = [f"unreadable: {p}" for p in unreadable_files(lake)] + inconsistencies(lake)
    for line in problems:
        log(line)
    log(f"{lake.describe()}: {'consistent' if not problems else f'{len(problems)} problem(s)'}")
    return not problems


def repair(lake_root: str) -> None:
    """Rebuild every refined table from raw with the job's code, on a local Spark."""
    from local_mode.rebuild import rebuild_lake

    counts = rebuild_lake(lake_root)
    print(f"rebuilt from raw: {counts['daily_rows']} daily and {counts['monthly_rows']} monthly rows "
          f"from {counts['raw_days_read']} raw days")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m catalog.verify", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--lake-dir", type=Path, help="local lake (default: LAKE_DIR)")
    parser.add_argument("--bucket", help="S3 lake (default: BUCKET)")
    parser.add_argument("--repair", action="store_true", help="rebuild refined/ from raw, then check again")
    args = parser.parse_args(argv)
    try:
        runtime = build_runtime(load_settings().with_overrides(lake_dir=args.lake_dir, bucket=args.bucket))
        runtime.require_lake()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    lake = runtime.lake  # the runtime's: on S3, with its boto3 session
    if verify(lake):
        return 0
    if not args.repair:
        return 1
    if any(f"/{RAW_QUOTES.folder}/" in p or f"/{MANIFESTS}/" in p for p in unreadable_files(lake)):
        print("error: raw files cannot be read (restore them or scrape those days again): nothing was rebuilt",
              file=sys.stderr)
        return 1
    with runtime.holding_lake("repair"):  # no scrape may write while the refined tables are rebuilt
        repair(runtime.settings.lake_root)
    return 0 if verify(lake) else 1

if __name__ == "__main__":
    sys.exit(main())
