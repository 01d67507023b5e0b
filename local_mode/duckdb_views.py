"""DuckDB views over the local lake's Parquet, named as the Glue tables (what the crawler keeps on AWS)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb

from contract.layout import RAW_PREFIX
from contract.tables import TABLES, VIEWS, Table
from pipeline.lake import DEFAULT_LOCK_WAIT_S, lake_lock

CATALOG_FILE = "catalog.duckdb"


# The partitioned refined tables hold one file per ticker and session (or month); their compact
# companions hold the same rows, written by the same job run, in one file per year. Locally the
# views read the compact files: a query over years of quotes_daily opens ten files, not 226 k.
READ_FROM = {"quotes_daily": "quotes_daily_compact", "quotes_monthly": "quotes_monthly_compact"}


def _source(table: str) -> Table:
    return TABLES[READ_FROM.get(table, table)]


def view_sql(lake_dir: Path, table: str) -> str:
    """`CREATE VIEW` over a dataset's files (DuckDB lists them when a query reads the view)."""
    source = _source(table)
    files = "/".join(["*"] * len(source.partition_keys)) + "/*.parquet"
    # Partition values stay strings, as in the Glue catalog (dt = '2024-01-02'). Raw files come
    # from many scraper versions (renamed and added columns): their schemas are merged by name,
    # which makes DuckDB read every file's footer when a query binds the view. Refined files
    # all have the job's schema: DuckDB takes it from one file (on 216 k quotes_daily files,
    # merging took minutes and 8 GB).
    union = str(source.folder.startswith(RAW_PREFIX)).lower()
    columns = "* EXCLUDE (year)" if table in READ_FROM else "*"  # the compact file's year is its folder's
    return (
        f"CREATE OR REPLACE VIEW {table} AS SELECT {columns} FROM read_parquet("
        f"'{_sql_text(str(lake_dir.resolve() / source.folder))}/{files}', hive_partitioning = true, "
        f"hive_types_autocast = false, union_by_name = {union})"
    )


# The contract's catalog types as DuckDB's (raw and refined files store timestamps in UTC).
DUCKDB_TYPES = {"string": "VARCHAR", "double": "DOUBLE", "bigint": "BIGINT", "int": "INTEGER", "date": "DATE",
                "timestamp": "TIMESTAMP WITH TIME ZONE", "boolean": "BOOLEAN"}


def empty_view_sql(table: str) -> str:
    """A view with the table's columns and types and no row: a table without files is still queryable."""
    spec: Table = TABLES[table]
    columns = ", ".join(f"CAST(NULL AS {DUCKDB_TYPES[c.type]}) AS {c.name}"
                        for c in (*spec.columns, *spec.partition_keys))
    return f"CREATE OR REPLACE VIEW {table} AS SELECT {columns} WHERE false"


def wanted_view_sql(lake_dir: Path, table: str) -> str:
    """Over the table's files once it has one, else empty with its columns."""
    source = _source(table)
    if has_data_file(lake_dir / source.folder, len(source.partition_keys)):
        return view_sql(lake_dir, table)
    return empty_view_sql(table)


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def has_data_file(folder: Path, levels: int) -> bool:
    """Whether a dataset holds a visible Parquet file: stops at the first one found."""
    if levels == 0:
        return any(entry.is_file() and entry.name.endswith(".parquet") and not entry.name.startswith((".", "_"))
                   for entry in _entries(folder))
    return any(entry.is_dir() and "=" in entry.name and has_data_file(Path(entry.path), levels - 1)
               for entry in _entries(folder))


def _entries(folder: Path) -> Iterator[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            yield from entries
    except (FileNotFoundError, NotADirectoryError):
        return


def connect(lake_dir: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(lake_dir / CATALOG_FILE), read_only=read_only)


def refresh_catalog(lake_dir: Path) -> list[str]:
    """Define a view per table of the contract; return the tables that have files.

    A table without files gets an empty view with its columns, replaced by the real one when
    its first file appears. A view already defined as wanted is left alone without touching
    the lake, so this costs the same on a lake of ten years as on one of a day; an empty
    view costs a bounded look for a first file, never a listing of the table.
    """
    lake_dir.mkdir(parents=True, exist_ok=True)
    present = []
    with connect(lake_dir) as con:
        # DuckDB rewrites a view's SQL as it stores it: the comment keeps a digest of ours.
        defined = dict(con.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
        for table in TABLES:
            full = view_sql(lake_dir, table)
            if defined.get(table) == _digest(full):
                present.append(table)
                continue
            sql = wanted_view_sql(lake_dir, table)
            if defined.get(table) != _digest(sql):
                con.execute(sql)
                con.execute(f"COMMENT ON VIEW {table} IS '{_digest(sql)}'")
            if sql == full:
                present.append(table)
        define_derived_views(con, defined)
    return present


def derived_view_sql(name: str) -> str:
    """`CREATE VIEW` of a contract view (contract.tables.VIEWS) over the tables' views."""
    return f"CREATE OR REPLACE VIEW {name} AS {VIEWS[name].sql}"


def define_derived_views(con: duckdb.DuckDBPyConnection, defined: dict[str, str]) -> None:
    """The contract's views over the tables (their SQL is the contract's), each defined once.

    A view whose columns the lake's refined files lack yet (refined by an older version, until the
    next run rebuilds them) is left undefined: the tables stay queryable, and the next refresh
    defines it."""
    for name in VIEWS:
        sql = derived_view_sql(name)
        if defined.get(name) == _digest(sql):
            continue
        try:
            con.execute(sql)
        except duckdb.BinderException:
            continue
        con.execute(f"COMMENT ON VIEW {name} IS '{_digest(sql)}'")


def _digest(sql: str) -> str:
    return hashlib.sha1(sql.encode()).hexdigest()


def memory_catalog(lake_dir: Path) -> duckdb.DuckDBPyConnection:
    """The same views in memory, for a lake this user may only read (nothing is written)."""
    con = duckdb.connect(":memory:")
    for table in TABLES:
        con.execute(wanted_view_sql(lake_dir, table))
    define_derived_views(con, {})
    return con


def open_catalog(lake_dir: Path, wait_s: float = DEFAULT_LOCK_WAIT_S) -> duckdb.DuckDBPyConnection:
    """A connection to query the lake: its refreshed catalog file, or views in memory if it is read-only."""
    try:
        refresh_catalog_locked(lake_dir, wait_s)
        return connect(lake_dir, read_only=True)
    except (OSError, duckdb.IOException, duckdb.PermissionException) as exc:
        if not _is_permission_error(exc):
            raise
        return memory_catalog(lake_dir)


def _is_permission_error(exc: Exception) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    text = str(exc).lower()
    return "permission denied" in text or "read-only file system" in text


def refresh_catalog_locked(lake_dir: Path, wait_s: float = DEFAULT_LOCK_WAIT_S) -> list[str]:
    """refresh_catalog under the lake's lock, so a query never meets a run's refresh.

    A lake we may not write to (read-only) has no writer to wait for: refresh without the lock.
    """
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(lake_lock(lake_dir, wait_s, log=lambda line: print(line, file=sys.stderr),
                                         what="query"))
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
        return refresh_catalog(lake_dir)
