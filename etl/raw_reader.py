"""Raw quotes as a Spark DataFrame, read inside Spark tasks: no data row passes through the driver.

The driver lists the day folders a run needs (file names only); the files are handed to the
tasks as a small DataFrame of keys, and each task reads its files with pyarrow, on a folder
or S3 (DataFrame.mapInArrow, public since Spark 3.3), keeping only the tickers asked for.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from b3_quotes.contract.arrow import arrow_schema
from b3_quotes.contract.tables import CORPORATE_EVENTS, QUOTE_NUMBERS, RAW_QUOTES
from b3_quotes.storage import Lake
from etl.task_errors import LakeFileError

# What the job reads of raw quotes.
RAW_READ_COLUMNS = ["trade_date", "ticker", *QUOTE_NUMBERS, "source", "ingested_at", "run_id", "prev_b3_session"]
RAW_READ_SCHEMA = arrow_schema(RAW_QUOTES, RAW_READ_COLUMNS)
# The same as Spark DDL: the contract's types are Hive's, which Spark's DDL reads as they are.
RAW_READ_DDL = ", ".join(f"{c.name} {c.type}" for c in RAW_QUOTES.columns if c.name in RAW_READ_COLUMNS)
# Listing many small folders on S3 is latency-bound: overlap the requests.
LIST_THREADS = 16
FILES_PER_TASK = 8


def list_raw_days(lake: Lake) -> list[str]:
    """The days raw holds (`dt=` folder names), from one listing of folder names only."""
    return [name[3:] for name in lake.list_folders(RAW_QUOTES.folder, "dt=")]


def raw_files(lake: Lake, days: Iterable[str]) -> dict[str, list[str]]:
    """The data files of each of these raw days (keys), one listing per day folder."""
    days = sorted(set(days))
    with ThreadPoolExecutor(LIST_THREADS) as pool:
        listed = pool.map(lambda day: lake.list_files(f"{RAW_QUOTES.folder}/dt={day}"), days)
        return dict(zip(days, listed))


def to_raw_read_schema(table: pa.Table) -> pa.Table:
    """A raw file's rows in RAW_READ_SCHEMA: absent columns null (older files lack some)."""
    columns = [pc.cast(table[f.name], f.type, safe=False) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in RAW_READ_SCHEMA]
    return pa.Table.from_arrays(columns, schema=RAW_READ_SCHEMA)


def read_raw_file(lake: Lake, key: str, tickers: frozenset[str] | None) -> pa.Table:
    """One raw file's rows of `tickers` (all when None); LakeFileError names it when it cannot be read."""
    try:
        with lake.filesystem.open_input_file(lake.path(key)) as handle:
            parquet = pq.ParquetFile(handle)
            table = parquet.read(columns=[n for n in parquet.schema_arrow.names if n in RAW_READ_COLUMNS])
    except FileNotFoundError as exc:
        raise LakeFileError("missing", key, str(exc)) from exc
    except (OSError, pa.ArrowException) as exc:
        raise LakeFileError("unreadable", key, str(exc)) from exc
    if tickers is not None:
        table = table.filter(pc.is_in(table["ticker"], pa.array(sorted(tickers), pa.string())))  # pyright: ignore[reportAttributeAccessIssue]
    return to_raw_read_schema(table)


def _read_task(lake: Lake, keys: list[str], tickers: frozenset[str] | None,
               batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for index in batch.column("id").to_pylist():
            yield from read_raw_file(lake, keys[index], tickers).to_batches()


def warm_task(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """A task that does nothing: run once, it leaves a Python worker with this module imported."""
    yield from batches


def read_raw(spark: SparkSession, lake: Lake, files: list[str], tickers: Iterable[str] | None) -> DataFrame:
    """The rows of these raw files (keys) for `tickers` (all when None), read in Spark tasks.

    The tasks get the file numbers from spark.range (no Python data goes through the JVM) and the
    keys with the task's function.
    """
    wanted = None if tickers is None else frozenset(tickers)
    slices = max(1, min(len(files), -(-len(files) // FILES_PER_TASK), 4 * spark.sparkContext.defaultParallelism))
    task = functools.partial(_read_task, lake, list(files), wanted)
    return spark.range(len(files), numPartitions=slices).mapInArrow(task, RAW_READ_DDL)


EVENTS_SCHEMA = arrow_schema(CORPORATE_EVENTS)
EVENTS_DDL = ", ".join(f"{c.name} {c.type}" for c in CORPORATE_EVENTS.columns)


def read_events(spark: SparkSession, lake: Lake, first: str, last: str,
                tickers: Iterable[str] | None) -> DataFrame | None:
    """The corporate_events rows with an ex date in [first, last] (ISO days) for `tickers` (all when
    None); None when there are none.

    Events are a few rows a ticker and year, so they are read here, with pyarrow, from the ex-date
    folders in range (one listing of folder names, then one per folder), not in tasks.
    """
    days = [name[3:] for name in lake.list_folders(CORPORATE_EVENTS.folder, "dt=") if first <= name[3:] <= last]
    with ThreadPoolExecutor(LIST_THREADS) as pool:
        keys = [key for keys in pool.map(lambda d: lake.list_files(f"{CORPORATE_EVENTS.folder}/dt={d}"), days)
                for key in keys]
    wanted = None if tickers is None else frozenset(tickers)
    tables = []
    for key in keys:
        try:
            with lake.filesystem.open_input_file(lake.path(key)) as handle:
                table = pq.read_table(handle)
        except (OSError, pa.ArrowException) as exc:
            raise LakeFileError("unreadable", key, str(exc)) from exc
        if wanted is not None:
            table = table.filter(pc.is_in(table["ticker"], pa.array(sorted(wanted), pa.string())))  # pyright: ignore[reportAttributeAccessIssue]
        tables.append(table.select(EVENTS_SCHEMA.names).cast(EVENTS_SCHEMA))
    rows = pa.concat_tables(tables) if tables else None
    if rows is None or not rows.num_rows:
        return None
    # As Python rows, not through pandas: pandas 3 holds strings in Arrow arrays, which Spark 3.5's
    # Arrow conversion (on when verify has run in the process) cannot take, and a few rows need neither.
    return spark.createDataFrame([tuple(row.values()) for row in rows.to_pylist()], EVENTS_DDL)
