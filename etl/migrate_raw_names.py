"""Rewrite raw quote files written before the column rename with today's names, once.

    python -m etl.migrate_raw_names --lake-root s3://my-bucket     # or a local folder: lake

The job and the local catalog read both sets of names; Athena matches Parquet columns by
name, so on AWS old files would show null prices under `open ... adj_close`. Each old file
is replaced by the same rows under the new names (one PUT on S3, an atomic rename locally);
files already renamed are skipped, so the command can be re-run after an interruption.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq

from contract.tables import LEGACY_RAW_NAMES, RAW_QUOTES
from etl.lake_io import (
    IO_THREADS,
    _filesystem,
    list_raw_days,
    visible_files,
    write_file_atomically,
)


def migrate_raw_names(lake_root: str) -> tuple[int, int]:
    """Rename the legacy columns of every raw quote file; returns (files rewritten, files seen)."""
    filesystem, root = _filesystem(lake_root, RAW_QUOTES.folder)

    def migrate(path: str) -> bool:
        with filesystem.open_input_file(path) as handle:
            parquet = pq.ParquetFile(handle)
            if not set(parquet.schema_arrow.names) & set(LEGACY_RAW_NAMES):
                return False
            table = parquet.read()
        renamed = table.rename_columns([LEGACY_RAW_NAMES.get(n, n) for n in table.column_names])
        write_file_atomically(filesystem, path, renamed)
        return True

    with ThreadPoolExecutor(IO_THREADS) as pool:
        paths = [p for files in pool.map(lambda day: visible_files(filesystem, f"{root}/dt={day}"),
                                         list_raw_days(lake_root)) for p in files]
        rewritten = sum(pool.map(migrate, paths))
    return rewritten, len(paths)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake-root", required=True, help="s3://bucket or a local lake folder")
    args = parser.parse_args(argv)
    try:
        rewritten, seen = migrate_raw_names(args.lake_root)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 6
    print(f"raw quote files: {rewritten} rewritten with the new column names, {seen - rewritten} already had them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
