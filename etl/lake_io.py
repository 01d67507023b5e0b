"""Read raw quotes and run manifests, write refined tables: the job's only storage code."""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

RAW_QUOTES = "raw/quotes"
MANIFESTS = "raw/_manifests"
# One empty object per manifest the job has refined: the others are still pending.
PROCESSED_RUNS = "refined/_processed_runs"
S3_DELETE_BATCH = 1000  # DeleteObjects' limit
REFINED_DAILY = "refined/quotes_daily"
REFINED_MONTHLY = "refined/quotes_monthly"
# Listing and reading many small objects is latency-bound on S3: overlap the requests.
IO_THREADS = 16

# What the job reads from raw quotes, in the lake's current (Athena-safe) names. Types as
# Spark 3.5 reads them: date32 and timestamp[us, UTC], never pandas' nanoseconds.
RAW_READ_SCHEMA = pa.schema([
    ("trade_date", pa.date32()), ("ticker", pa.string()),
    ("open", pa.float64()), ("high", pa.float64()), ("low", pa.float64()), ("close", pa.float64()),
    ("adj_close", pa.float64()), ("volume", pa.int64()),
    ("source", pa.string()), ("ingested_at", pa.timestamp("us", tz="UTC")), ("run_id", pa.string()),
])
# Raw files written before the rename carry the source's names; they stay readable.
LEGACY_RAW_NAMES = {"Open": "open", "High": "high", "Low": "low", "Close": "close",
                    "Adj Close": "adj_close", "Volume": "volume"}


@dataclass(frozen=True)
class RunManifest:
    run_id: str
    partitions: list[str]
    tickers: list[str]


def lake_path(lake_root: str, relative: str) -> str:
    return f"{lake_root.rstrip('/')}/{relative}"


def _parse_manifest(text: str, where: str) -> RunManifest:
    body = json.loads(text)
    if not body.get("partitions") or not body.get("tickers"):
        raise ValueError(f"manifest {where} lists no partitions or tickers")
    return RunManifest(body["run_id"], sorted(body["partitions"]), sorted(body["tickers"]))


def _filesystem(lake_root: str, relative: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's file system and path for a lake location (file:// or s3://)."""
    return pafs.FileSystem.from_uri(lake_path(lake_root, relative))


def read_manifests(lake_root: str, keys: list[str]) -> list[RunManifest]:
    """Read run commit markers (small JSON objects) from the lake."""
    manifests = []
    for key in keys:
        filesystem, path = _filesystem(lake_root, key)
        with filesystem.open_input_stream(path) as stream:
            manifests.append(_parse_manifest(stream.read().decode(), key))
    return manifests


def list_file_names(lake_root: str, folder: str) -> list[str]:
    filesystem, path = _filesystem(lake_root, folder)
    infos = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(info.base_name for info in infos if info.type == pafs.FileType.File)


def pending_manifest_keys(lake_root: str) -> list[str]:
    """Manifests no job run has refined yet: a refused or lost trigger is caught up here."""
    done = set(list_file_names(lake_root, PROCESSED_RUNS))
    return [f"{MANIFESTS}/{name}" for name in list_file_names(lake_root, MANIFESTS)
            if name.endswith(".json") and name not in done]


def mark_processed(lake_root: str, manifest_keys: list[str]) -> None:
    for key in manifest_keys:
        filesystem, path = _filesystem(lake_root, f"{PROCESSED_RUNS}/{key.rsplit('/', 1)[-1]}")
        if isinstance(filesystem, pafs.LocalFileSystem):
            filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with filesystem.open_output_stream(path) as stream:
            stream.write(b"")


def list_raw_days(lake_root: str) -> list[str]:
    """The days raw holds (`dt=` folder names), from one listing of folder names only."""
    filesystem, root = _filesystem(lake_root, RAW_QUOTES)
    infos = filesystem.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    return sorted(info.base_name[3:] for info in infos
                  if info.type == pafs.FileType.Directory and info.base_name.startswith("dt="))


def _visible_files(filesystem: pafs.FileSystem, folder: str) -> list[str]:
    """Data files in one folder; hidden (`.`, `_`) names are temporary or markers."""
    infos = filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return sorted(info.path for info in infos
                  if info.type == pafs.FileType.File and not info.base_name.startswith((".", "_")))


def to_raw_read_schema(table: pa.Table) -> pa.Table:
    """A raw file's rows in RAW_READ_SCHEMA: legacy names mapped, absent columns null."""
    table = table.rename_columns([LEGACY_RAW_NAMES.get(name, name) for name in table.column_names])
    columns = []
    for field in RAW_READ_SCHEMA:
        if field.name in table.column_names:
            columns.append(pc.cast(table[field.name], field.type, safe=False))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=RAW_READ_SCHEMA)


def _read_raw_file(filesystem: pafs.FileSystem, path: str, tickers: frozenset[str] | None) -> pa.Table:
    with filesystem.open_input_file(path) as handle:
        parquet = pq.ParquetFile(handle)
        wanted = {*RAW_READ_SCHEMA.names, *LEGACY_RAW_NAMES}
        table = parquet.read(columns=[n for n in parquet.schema_arrow.names if n in wanted])
    if tickers is not None:
        table = table.filter(pads.field("ticker").isin(sorted(tickers)))
    return to_raw_read_schema(table)


def read_raw_days(lake_root: str, days: Iterable[str], tickers: Iterable[str] | None = None) -> pa.Table:
    """Raw quotes of exactly these days (and tickers), read with pyarrow on a folder or S3."""
    filesystem, root = _filesystem(lake_root, RAW_QUOTES)
    wanted = None if tickers is None else frozenset(tickers)
    with ThreadPoolExecutor(IO_THREADS) as pool:
        folders = list(pool.map(lambda day: _visible_files(filesystem, f"{root}/dt={day}"), sorted(set(days))))
        tables = list(pool.map(lambda path: _read_raw_file(filesystem, path, wanted),
                               [path for files in folders for path in files]))
    return pa.concat_tables(tables) if tables else RAW_READ_SCHEMA.empty_table()


def spark_frame_from_arrow(spark: SparkSession, table: pa.Table) -> DataFrame:
    """An Arrow table as a Spark DataFrame, types kept (date32, timestamp[us, UTC]).

    Spark 3.5 has no public Arrow-to-DataFrame call (createDataFrame takes pandas, which
    costs a conversion each way); this streams the record batches to the JVM the way
    createDataFrame does internally with Arrow enabled.
    """
    from pyspark.sql.pandas.serializers import ArrowStreamSerializer
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(table.schema)
    if table.num_rows == 0:
        return spark.createDataFrame([], schema)
    jvm: Any = spark._jvm
    batches = table.combine_chunks().to_batches(max_chunksize=max(1, -(-table.num_rows // spark.sparkContext.defaultParallelism)))
    jiter = spark.sparkContext._serialize_to_jvm(  # pyright: ignore[reportAttributeAccessIssue]
        batches, ArrowStreamSerializer(), jvm.PythonSQLUtils.readArrowStreamFromFile, jvm.ArrowIteratorServer)
    return DataFrame(jvm.PythonSQLUtils.toDataFrame(jiter, schema.json(), spark._jsparkSession), spark)


def read_raw_quotes(spark: SparkSession, lake_root: str, tickers: Iterable[str] | None = None,
                    days: Iterable[str] | None = None) -> DataFrame:
    """Raw quotes of these tickers and days (default: all) as a Spark DataFrame."""
    chosen = list_raw_days(lake_root) if days is None else days
    return spark_frame_from_arrow(spark, read_raw_days(lake_root, chosen, tickers))


def write_partitions(frame: DataFrame, lake_root: str, table: str, partition_by: list[str],
                     write_id: str) -> int:
    """Replace exactly the partitions present in `frame`; leave every other one alone.

    Refined tables hold one row per partition (a ticker's session or month): the rows are
    few even when the partitions are many, and the cost is one small file each. Spark's
    writer paid ~11 ms a file here, pyarrow's dataset writer under 1 ms
    (bench/bench_refine_write.py), so the rows are collected as Arrow and written by pyarrow,
    on a folder or straight to S3. New files are written first, named after `write_id`; then
    the files they replace are deleted. A run that dies in between leaves its manifest
    pending, and the next run rewrites those partitions and deletes the leftovers.
    """
    batches = frame._collect_as_arrow()  # Arrow types kept: date32, timestamp[us, UTC]
    if not batches:
        return 0
    rows = pa.Table.from_batches(batches)
    filesystem, root = _filesystem(lake_root, table)
    before = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    written: list[str] = []
    pads.write_dataset(
        rows, root, filesystem=filesystem, format="parquet",
        partitioning=pads.partitioning(pa.schema([rows.schema.field(c) for c in partition_by]), flavor="hive"),
        existing_data_behavior="overwrite_or_ignore",
        basename_template=f"part-{write_id}-{{i}}.snappy.parquet",
        max_partitions=rows.num_rows + 1,
        # Object stores need no folders; creating them would leave empty `dir/` marker keys.
        create_dir=isinstance(filesystem, pafs.LocalFileSystem),
        file_visitor=lambda written_file: written.append(written_file.path),
    )
    fresh = set(written)
    rewritten_dirs = {path.rsplit("/", 1)[0] for path in written}
    stale = [info.path for info in before if info.type == pafs.FileType.File
             and info.path.rsplit("/", 1)[0] in rewritten_dirs and info.path not in fresh]
    delete_files(filesystem, stale)
    return rows.num_rows


def delete_files(filesystem: pafs.FileSystem, paths: list[str]) -> None:
    """Delete files; on S3 in batches of 1,000 keys, one request each.

    pyarrow's own S3 delete re-creates an empty `folder/` marker object behind it.
    """
    if not isinstance(filesystem, pafs.S3FileSystem):
        for path in paths:
            filesystem.delete_file(path)
        return
    import boto3

    s3 = boto3.client("s3")
    by_bucket: dict[str, list[str]] = {}
    for path in paths:
        bucket, key = path.split("/", 1)
        by_bucket.setdefault(bucket, []).append(key)
    for bucket, keys in by_bucket.items():
        for start in range(0, len(keys), S3_DELETE_BATCH):
            batch = keys[start : start + S3_DELETE_BATCH]
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            if answer.get("Errors"):
                raise OSError(f"could not delete replaced files in s3://{bucket}: {answer['Errors'][:3]}")
