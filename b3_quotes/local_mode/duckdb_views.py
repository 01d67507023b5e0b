"""DuckDB views over the local lake's Parquet, named as the Glue tables (what the crawler keeps on AWS)."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb

from b3_quotes.contract.layout import RAW_PREFIX
from b3_quotes.contract.tables import REFINED_TABLES, TABLES, VIEWS, Table, compact_of

CATALOG_FILE = "catalog.duckdb"
logger = logging.getLogger(__name__)


# The partitioned refined tables hold one file per ticker and session (or month); their compact
# companions hold the same rows, written by the same job run, in one file per year. Locally the
# views read the compact files: a query over years of quotes_daily opens ten files, not 226 k.
READ_FROM = {table.name: compact_of(table).name for table in REFINED_TABLES}


def _source(table: str) -> Table:
    return TABLES[READ_FROM.get(table, table)]


def view_sql(lake_dir: Path, table: str) -> str:
    """`CREATE VIEW` over a dataset's files (DuckDB lists them when a query reads the view)."""
    source = _source(table)
    files = "/".join(["*"] * len(source.partition_keys)) + "/*.parquet"
    # Partition values stay strings, as in the Glue catalog (dt = '2024-01-02'). Raw files come
    # from many scraper versions (renamed and added columns): their schemas are merged by name,
    # which makes DuckDB read every file's footer when a query binds the view. Refined files
    # all have the job's schema: DuckDB takes it from one file (merging hundreds of thousands of
    # one-row files' schemas takes minutes and gigabytes).
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


class CatalogUnusable(Exception):
    """The catalog file is not a DuckDB database of our views: empty, truncated, or another program's."""


class QueryRefused(ValueError):
    """A statement that would write, or do anything but read the lake's tables: nothing was run."""


def _defined_views(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """View -> its digest comment; CatalogUnusable when the file cannot be read or holds tables."""
    try:
        defined = dict(con.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
        tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    except duckdb.Error as exc:
        raise CatalogUnusable(_first_line(exc)) from exc
    if tables:
        raise CatalogUnusable(f"it holds table(s) {', '.join(sorted(tables))}, not only the lake's views")
    return defined


def _wanted_views(lake_dir: Path, defined: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Each table's view SQL, and the tables that have files.

    A view already over its files is kept without touching the lake, so this costs the same on
    ten years as on a day; an empty view costs a bounded look for a first file.
    """
    views, present = {}, []
    for table in TABLES:
        full = view_sql(lake_dir, table)
        views[table] = full if defined.get(table) == _digest(full) else wanted_view_sql(lake_dir, table)
        if views[table] == full:
            present.append(table)
    return views, present


def refresh_catalog(lake_dir: Path) -> list[str]:
    """Make the lake's catalog file define a view per table of the contract; return the tables with files.

    A table without files gets an empty view with its columns, replaced by the real one when
    its first file appears. The catalog is derived state, so it is never patched in place:
    when a view must change, or the file is empty, truncated or another program's (a query on
    a full disk used to leave it empty), a whole new catalog is written beside it and renamed
    over it, with one line saying so for a broken one. Nothing opens the catalog file for
    writing: a query's open file never stands in a writer's way, and no writer waits on it.
    """
    path = lake_dir / CATALOG_FILE
    defined: dict[str, str] = {}
    if path.exists():
        try:
            with connect(lake_dir, read_only=True) as con:
                defined = _defined_views(con)
        except (CatalogUnusable, duckdb.Error) as exc:
            if isinstance(exc, duckdb.Error) and (_is_lock_conflict(exc) or _is_permission_error(exc)):
                raise
            logger.info(f"catalog {path} could not be used ({_first_line(exc)}): rebuilt from the contract")
            defined = {}
    views, present = _wanted_views(lake_dir, defined)
    # A contract view left undefined (the refined files lack its columns yet) is tried again.
    if any(defined.get(name) != _digest(sql) for name, sql in views.items()) or any(
            defined.get(name) != _digest(derived_view_sql(name)) for name in VIEWS):
        _write_catalog(lake_dir, views)
    return present


def _write_catalog(lake_dir: Path, views: dict[str, str]) -> None:
    """A new catalog holding `views`, written under a hidden name and renamed over the old one."""
    path = lake_dir / CATALOG_FILE
    temp = lake_dir / f".{CATALOG_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    temp.unlink(missing_ok=True)
    try:
        with duckdb.connect(str(temp)) as con:
            for table, sql in views.items():
                con.execute(sql)
                con.execute(f"COMMENT ON VIEW {table} IS '{_digest(sql)}'")
            define_derived_views(con)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
        Path(f"{temp}.wal").unlink(missing_ok=True)
    # A write-ahead log an older version or a crash left would be replayed into the new file.
    Path(f"{path}.wal").unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def derived_view_sql(name: str) -> str:
    """`CREATE VIEW` of a contract view (b3_quotes.contract.tables.VIEWS) over the tables' views."""
    return f"CREATE OR REPLACE VIEW {name} AS {VIEWS[name].sql}"


def define_derived_views(con: duckdb.DuckDBPyConnection) -> None:
    """The contract's views over the tables (their SQL is the contract's).

    A view whose columns the lake's refined files lack yet (refined by an older version, until the
    next run rebuilds them) is left undefined: the tables stay queryable, and the next refresh
    defines it."""
    for name in VIEWS:
        sql = derived_view_sql(name)
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
    define_derived_views(con)
    return con


def open_catalog(lake_dir: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection that reads the lake's tables and nothing else.

    It takes no lock: a query during a run answers at once from what the run has committed
    (each refined and compact file is replaced whole, the catalog too). When the catalog file
    cannot be written (a lake this user may only read, a full disk) or another program holds
    it open for writing, the same views are built in memory; only an unexpected failure says so.
    """
    try:
        refresh_catalog(lake_dir)
        con = connect(lake_dir, read_only=True)
    except (OSError, duckdb.Error) as exc:
        if not (_is_permission_error(exc) or _is_lock_conflict(exc)):
            logger.warning(f"catalog {lake_dir / CATALOG_FILE} not refreshed ({_first_line(exc)}): "
                           "the query reads views built in memory")
        con = memory_catalog(lake_dir)
    lock_down(con, lake_dir)
    return con


def lock_down(con: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    """No file outside the lake's table folders can be read, no extension loaded, no setting changed.

    `enable_external_access = false` closes every file function (read_csv('/etc/passwd'),
    ATTACH, COPY) except in `allowed_directories`; `lock_configuration` keeps a query from
    undoing it. Writing inside the tables' folders is refused by run_statements (reads only).
    """
    folders = sorted({f"{(lake_dir.resolve() / table.folder).as_posix()}/" for table in TABLES.values()})
    quoted = ", ".join("'" + _sql_text(folder) + "'" for folder in folders)  # a lake path may hold a quote
    con.execute(f"SET allowed_directories = [{quoted}]")
    for setting in ("autoinstall_known_extensions", "autoload_known_extensions", "enable_external_access"):
        con.execute(f"SET {setting} = false")
    con.execute("SET lock_configuration = true")


Rows = tuple[list[str], list[tuple]]


def run_statements(con: duckdb.DuckDBPyConnection, sql: str) -> list[Rows]:
    """Every statement of `sql` in order, each one's columns and rows; QueryRefused before any runs
    if one is not a read (COPY, INSERT, CREATE, ATTACH, SET, PRAGMA, CALL, EXPLAIN ANALYZE of a COPY...)."""
    statements = con.extract_statements(sql)
    if not statements:
        raise QueryRefused("no statement to run (only comments or semicolons)")
    for number, statement in enumerate(statements, 1):
        if statement.type != duckdb.StatementType.SELECT:
            where = f"statement {number} of {len(statements)}" if len(statements) > 1 else "the statement"
            text = " ".join(statement.query.split())
            raise QueryRefused(f"refused: {where} is {statement.type.name} ({text[:60]}{'...' if len(text) > 60 else ''}); "
                               "queries only read the lake's tables (SELECT, WITH, FROM, DESCRIBE, SHOW, "
                               "SUMMARIZE): nothing was run")
    results = []
    for statement in statements:
        try:
            cursor = con.execute(statement.query)
        except duckdb.PermissionException as exc:  # lock_down's refusal: a file outside the lake's tables
            raise QueryRefused(f"refused: {_first_line(exc).removeprefix('Permission Error: ')} "
                               "(queries read only the lake's tables)") from None
        results.append(([d[0] for d in cursor.description or []], cursor.fetchall()))
    return results


def _is_permission_error(exc: Exception) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    text = str(exc).lower()
    return "permission denied" in text or "read-only file system" in text


def _is_lock_conflict(exc: Exception) -> bool:
    """Another program (a DuckDB shell), or a connection of this process (a notebook's), holds the catalog open."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and ("could not set lock" in text or "same database file" in text)
