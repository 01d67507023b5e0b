"""The refined tables written from Spark tasks: partitioned tables and their compact yearly companions.

Refined tables hold one row per partition (a ticker's session or month): the rows are few,
the files many. Spark's own writer pays ~11 ms a file here, pyarrow's under 1 ms
(bench/bench_refine_write.py), so each task writes its partitions' files itself with pyarrow,
on a folder or straight to S3 (DataFrame.mapInArrow, public since Spark 3.3). The rows are
shuffled by the table's first partition key (dt, month), so one task owns each top-level
folder: it writes every partition file under the fixed name DATA_FILE, atomically, then
deletes the other files of the folders it rewrote. The driver receives one small row per
top-level folder (what was written), never the data.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from b3_quotes.contract.tables import Table
from b3_quotes.storage import Lake
from etl.task_errors import LakeFileError, lake_file_errors, writes_named

# Every data file the job writes has this name in its partition folder: a rewrite replaces it
# in place (an atomic rename locally, one PUT on S3), so no reader ever sees two versions.
DATA_FILE = "part-0.snappy.parquet"
COMPACT_ROW_GROUP_ROWS = 2048
# Threads per task: local writes are CPU-bound, S3 PUTs latency-bound.
LOCAL_THREADS, S3_THREADS = 4, 32
# What a write task tells the driver, one row per top-level folder (Arrow, and as Spark DDL).
WRITTEN_SCHEMA = pa.schema([("folder", pa.string()), ("partitions", pa.string()), ("rows", pa.int64())])
WRITTEN_DDL = "folder string, partitions string, rows bigint"
TASKS_PER_CORE = 4


@dataclass
class Written:
    """The partitions a write created or replaced, held per top-level folder (compact for a driver).

    Iterating yields each partition's folder relative to the table (`dt=2024-01-02/ticker=PETR4`).
    """

    by_folder: dict[str, list[str]] = field(default_factory=dict)
    rows: int = 0

    def __iter__(self) -> Iterator[str]:
        for top in sorted(self.by_folder):
            for sub in self.by_folder[top]:
                yield f"{top}/{sub}" if sub else top

    def __len__(self) -> int:
        return sum(len(subs) or 1 for subs in self.by_folder.values())


def partition_runs(rows: pa.Table, partition_by: list[str]) -> tuple[pa.Table, list[tuple[str, int, int]]]:
    """The rows sorted by partition without the partition columns, and `(key=value/key=value, start, length)` per partition."""
    ordered = rows.sort_by([(c, "ascending") for c in partition_by])
    keys = list(zip(*(ordered[c].to_pylist() for c in partition_by)))
    runs, start = [], 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            runs.append(("/".join(f"{c}={v}" for c, v in zip(partition_by, keys[start])), start, i - start))
            start = i
    return ordered.drop_columns(partition_by).combine_chunks(), runs


def write_folder_partitions(lake: Lake, folder: str, rows: pa.Table, partition_by: list[str]) -> list[str]:
    """Replace exactly the partitions in `rows` under `folder` (the table's); return them.

    Each file is written atomically; then the other files of the rewritten partition folders
    (older writers' names, leftovers of a killed run) are deleted: one recursive listing per
    rewritten top-level folder.
    """
    body, runs = partition_runs(rows, partition_by)
    fresh = {f"{folder}/{part}/{DATA_FILE}" for part, _, _ in runs}

    def write(run: tuple[str, int, int]) -> None:
        part, start, length = run
        lake.write_parquet(f"{folder}/{part}/{DATA_FILE}", body.slice(start, length))

    with ThreadPoolExecutor(S3_THREADS if lake.is_s3 else LOCAL_THREADS) as pool:
        list(pool.map(write, runs))
        rewritten = {key.rsplit("/", 1)[0] for key in fresh}
        tops = sorted({part.split("/", 1)[0] for part, _, _ in runs})
        listed = pool.map(lambda top: lake.list_files(f"{folder}/{top}", recursive=True, hidden=True), tops)
        stale = [key for keys in listed for key in keys if key.rsplit("/", 1)[0] in rewritten and key not in fresh]
    lake.delete(stale)
    return [part for part, _, _ in runs]


def _write_task(lake: Lake, folder: str, partition_by: list[str],
                batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    batch_list = list(batches)
    if not batch_list or not sum(b.num_rows for b in batch_list):
        return
    rows = pa.Table.from_batches(batch_list)
    with writes_named():
        parts = write_folder_partitions(lake, folder, rows, partition_by)
    by_top: dict[str, list[str]] = {}
    for part in parts:
        top, _, sub = part.partition("/")
        by_top.setdefault(top, []).append(sub)
    counts = rows.group_by(partition_by[0]).aggregate([([], "count_all")])
    per_top = dict(zip((f"{partition_by[0]}={v}" for v in counts[partition_by[0]].to_pylist()),
                       counts["count_all"].to_pylist()))
    yield pa.RecordBatch.from_pydict({"folder": list(by_top), "partitions": ["\n".join(s) for s in by_top.values()],
                                      "rows": [per_top[top] for top in by_top]},
                                     schema=WRITTEN_SCHEMA)


def _tasks(frame: DataFrame, at_most: int | None) -> int:
    """Tasks for a write: a few per core, but no more than the top-level folders it can touch
    (a daily run touches one `dt=` folder: one task, not eight mostly empty ones)."""
    tasks = TASKS_PER_CORE * frame.sparkSession.sparkContext.defaultParallelism
    return max(1, min(tasks, at_most)) if at_most else tasks


def write_partitions(frame: DataFrame, lake: Lake, table: Table, folders: int | None = None) -> Written:
    """Replace exactly the partitions present in `frame` (rows with the table's partition columns).

    `folders`, when known, bounds the top-level folders the rows fall in (sizes the shuffle).
    """
    top = table.partition_names[0]
    task = functools.partial(_write_task, lake, table.folder, table.partition_names)
    with lake_file_errors():
        results = frame.repartition(_tasks(frame, folders), top).mapInArrow(task, WRITTEN_DDL).collect()
    written = Written()
    for result in results:
        written.by_folder[result["folder"]] = result["partitions"].split("\n") if result["partitions"] else []
        written.rows += result["rows"]
    return written


# --- compact yearly tables ------------------------------------------------------------------------

def compact_years(lake: Lake, table: Table) -> list[str]:
    """The years a compact table holds (`year=` folder names), from one folder-name listing."""
    return [name[5:] for name in lake.list_folders(table.folder, "year=")]


def compact_file(table: Table, year: str) -> str:
    return f"{table.folder}/year={year}/{DATA_FILE}"


def read_compact_year(lake: Lake, table: Table, year: str, columns: list[str] | None = None,
                      tickers: list[str] | None = None) -> pa.Table | None:
    """One year of a compact table (one file), or None when it holds no such year.

    LakeFileError when the file is there but cannot be read (truncated, not Parquet).
    """
    key = compact_file(table, year)
    if not lake.exists(key):
        return None
    filters = None if tickers is None else [("ticker", "in", sorted(tickers))]
    try:
        return pq.read_table(lake.path(key), filesystem=lake.filesystem, columns=columns, filters=filters,
                             partitioning=None)  # pyright: ignore[reportArgumentType] - the year is in the path only
    except (OSError, pa.ArrowException) as exc:
        raise LakeFileError("unreadable", key, str(exc)) from exc


def merge_year(lake: Lake, table: Table, year: str, fresh: pa.Table, key: list[str], replace: bool) -> int:
    """Fold `fresh` rows into one year's compact file (rows of the same key replaced); return its rows.

    With `replace` the year is written from `fresh` alone (a rebuild holds every row of the year).
    """
    period = key[1]
    schema = pa.schema([f.with_nullable(True) for f in fresh.schema])
    fresh = fresh.cast(schema)
    old = None if replace else read_compact_year(lake, table, year)
    if old is not None and (lacking := [n for n in schema.names if n not in old.column_names]):
        # Written before those columns existed: its rows cannot be completed here, the caller
        # rebuilds the refined tables from raw (as for an unreadable file).
        raise LakeFileError("unreadable", compact_file(table, year),
                            f"written by an older version, it lacks {', '.join(lacking)}")
    if old is not None:
        kept = old.select(schema.names).cast(schema).join(fresh.select(key), keys=key, join_type="left anti")
        fresh = pa.concat_tables([kept.select(schema.names).cast(schema), fresh])
    # Sorted by ticker, then period, in row groups of ~2k rows: a one-ticker query reads one or two.
    lake.write_parquet(compact_file(table, year), fresh.sort_by([("ticker", "ascending"), (period, "ascending")]),
                       row_group_size=COMPACT_ROW_GROUP_ROWS)
    return fresh.num_rows


def _merge_task(lake: Lake, table: Table, key: list[str], replace: bool,
                batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    batch_list = [b for b in batches if b.num_rows]
    if not batch_list:
        return
    rows = pa.Table.from_batches(batch_list)
    for year in sorted(set(rows["_year"].to_pylist())):
        year_rows = rows.filter(pc.equal(rows["_year"], year)).drop_columns(["_year"])  # pyright: ignore[reportAttributeAccessIssue]
        with writes_named():
            total = merge_year(lake, table, year, year_rows, key, replace)
        yield pa.RecordBatch.from_pydict({"folder": [f"year={year}"], "partitions": [""], "rows": [total]},
                                         schema=WRITTEN_SCHEMA)


def merge_compact(frame: DataFrame, lake: Lake, table: Table, key: list[str], replace: bool = False,
                  years: int | None = None) -> list[str]:
    """Fold refined rows into a compact table, one task per year touched; return the years rewritten.

    `key` is (ticker, period); only the years `frame` touches are read and rewritten.
    """
    with_year = frame.withColumn("_year", F.substring(key[1], 1, 4))
    task = functools.partial(_merge_task, lake, table, key, replace)
    with lake_file_errors():
        results = with_year.repartition(_tasks(frame, years), "_year").mapInArrow(task, WRITTEN_DDL).collect()
    return sorted(r["folder"][5:] for r in results)
