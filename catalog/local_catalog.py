"""The local catalog: DuckDB views over the lake's Parquet, named as the Glue tables."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.tables import TABLES

CATALOG_FILE = "catalog.duckdb"


# Raw quote files written before the columns were renamed say `Open` ... `Adj Close`, `Volume`.
LEGACY_RAW_NAMES = {"open": "Open", "high": "High", "low": "Low", "close": "Close",
                    "adj_close": "Adj Close", "volume": "Volume"}


def _select_list(table: str) -> str:
    """`*`, except for raw quotes: one set of names whichever names each file has.

    union_by_name merges `Open` and `open` (names are case-insensitive) but not `Adj Close`
    and `adj_close`; COLUMNS() is bound at query time, so the view fits old, new and mixed lakes.
    """
    if table != "quotes":
        return "*"
    legacy = ", ".join(f"'{name.lower()}'" for name in (*LEGACY_RAW_NAMES, *LEGACY_RAW_NAMES.values()))
    renamed = [f"coalesce(*COLUMNS('(?i)^({name}|{old})$')) AS {name}" for name, old in LEGACY_RAW_NAMES.items()]
    return ", ".join([*renamed, f"COLUMNS(c -> lower(c) NOT IN ({legacy}))"])


def view_sql(lake_dir: Path, table: str) -> str | None:
    """`CREATE VIEW` over a dataset, or None while it holds no file yet."""
    folder, levels = TABLES[table].folder, len(TABLES[table].partition_keys)
    files = "/".join(["*"] * levels) + "/*.parquet"
    if not any((lake_dir / folder).glob(files)):
        return None
    # Partition values stay strings, as in the Glue catalog (dt = '2024-01-02').
    return (
        f"CREATE OR REPLACE VIEW {table} AS SELECT {_select_list(table)} FROM read_parquet("
        f"'{lake_dir.resolve() / folder}/{files}', hive_partitioning = true, hive_types_autocast = false, "
        "union_by_name = true)"
    )


def connect(lake_dir: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(lake_dir / CATALOG_FILE), read_only=read_only)


def refresh_catalog(lake_dir: Path) -> list[str]:
    """Create or replace a view per dataset present in the lake; return their names."""
    lake_dir.mkdir(parents=True, exist_ok=True)
    created = []
    with connect(lake_dir) as con:
        for table in TABLES:
            sql = view_sql(lake_dir, table)
            if sql is not None:
                con.execute(sql)
                created.append(table)
    return created
