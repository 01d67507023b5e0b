"""Read raw quotes and run manifests, write refined tables: the job's only storage code."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from contract.arrow import arrow_schema
from contract.layout import MANIFEST_SUFFIX, MANIFESTS, PROCESSED_RUNS, REJECTED_MANIFESTS, RunManifest
from contract.tables import LEGACY_RAW_NAMES, RAW_QUOTES
from etl.progress import tracked

S3_DELETE_BATCH = 1000  # DeleteObjects' limit
COMPACT_ROW_GROUP_ROWS = 2048
# Listing and reading many small objects is latency-bound on S3: overlap the requests.
IO_THREADS = 16
S3_PUT_THREADS = 64
# Partitions in the thread pool's hands at once (memory), and how many rewritten top-level
# folders make one listing of the table's top level cheaper than checking each.
WRITE_BATCH = 2048
LIST_TABLE_ABOVE = 64

# What the job reads from raw quotes, in the lake's current (Athena-safe) names.
RAW_READ_SCHEMA = arrow_schema(RAW_QUOTES, ["trade_date", "ticker", "open", "high", "low", "close", "adj_close",
                                            "volume", "source", "ingested_at", "run_id"])


def lake_path(lake_root: str, relative: str) -> str:
    return f"{lake_root.rstrip('/')}/{relative}"


@functools.lru_cache(maxsize=4)
def _s3_filesystem(region: str, endpoint: str) -> pafs.S3FileSystem:
    """pyarrow's S3 client with the region given and boto3's credentials.

    Region: without one pyarrow asks the bucket's region anonymously, which a bucket
    policy or a VPC without internet access refuses. Credentials: boto3 resolves the Glue
    job role's (and AWS_PROFILE, env variables, SSO locally) in one chain; pyarrow's own
    chain (the C++ SDK's) is used only when boto3 finds none. AWS_ENDPOINT_URL (moto,
    LocalStack) is honoured like boto3 does.
    """
    import boto3

    options: dict = {"region": region}
    credentials = boto3.Session().get_credentials()
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        options.update(access_key=frozen.access_key, secret_key=frozen.secret_key,
                       session_token=frozen.token)
    if endpoint:
        parsed = urlsplit(endpoint)
        options.update(endpoint_override=parsed.netloc or parsed.path, scheme=parsed.scheme or "https")
    return pafs.S3FileSystem(**options)


def s3_region() -> str:
    """The region the job works in: AWS_REGION (the job sets it from --aws_region)."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        import boto3

        region = boto3.Session().region_name
    if not region:
        raise RuntimeError("no AWS region: set AWS_REGION (the Glue job takes it from --aws_region)")
    return region


def _filesystem(lake_root: str, relative: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's file system and path for a lake location: s3://bucket, or a local folder.

    A local root may be a plain path (see contract.layout.lake_root) or a file:// URI, decoded here.
    """
    location = lake_path(lake_root, relative)
    if location.startswith("s3://"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
        return _s3_filesystem(s3_region(), endpoint), location.removeprefix("s3://")
    if location.startswith("file:"):
        location = unquote(urlsplit(location).path)
    return pafs.LocalFileSystem(), location


def read_manifest(lake_root: str, key: str) -> RunManifest:
    """One run commit marker (a small JSON object); ManifestError when it is not one."""
    filesystem, path = _filesystem(lake_root, key)
    with filesystem.open_input_stream(path) as stream:
        return RunManifest.parse(stream.read(), key)


def list_file_names(lake_root: str, folder: str) -> list[str]:
    filesystem, path = _filesystem(lake_root, folder)
    infos = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(info.base_name for info in infos if info.type == pafs.FileType.File)


def pending_manifest_keys(lake_root: str) -> list[str]:
    """Manifests no job run has refined or set aside yet: a refused or lost trigger is caught up here."""
    done = set(list_file_names(lake_root, PROCESSED_RUNS)) | set(list_file_names(lake_root, REJECTED_MANIFESTS))
    return [f"{MANIFESTS}/{name}" for name in list_file_names(lake_root, MANIFESTS)
            if name.endswith(MANIFEST_SUFFIX) and name not in done]


def _put_small_file(lake_root: str, relative: str, data: bytes) -> None:
    filesystem, path = _filesystem(lake_root, relative)
    if isinstance(filesystem, pafs.LocalFileSystem):
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(path) as stream:
        stream.write(data)


def mark_processed(lake_root: str, manifest_keys: list[str]) -> None:
    for key in manifest_keys:
        _put_small_file(lake_root, f"{PROCESSED_RUNS}/{key.rsplit('/', 1)[-1]}", b"")


def set_aside_manifest(lake_root: str, key: str, reason: str) -> str:
    """Record a manifest the job cannot refine, so that no later run retries it; return the record's key.

    The manifest itself stays where it is (nothing is lost, and the job may not delete raw
    data); deleting the record makes the next run try it again.
    """
    record = f"{REJECTED_MANIFESTS}/{key.rsplit('/', 1)[-1]}"
    body = {"manifest_key": key, "reason": reason, "set_aside_at": dt.datetime.now(dt.UTC).isoformat()}
    _put_small_file(lake_root, record, json.dumps(body).encode())
    return record


def list_raw_days(lake_root: str) -> list[str]:
    """The days raw holds (`dt=` folder names), from one listing of folder names only."""
    filesystem, root = _filesystem(lake_root, RAW_QUOTES.folder)
    infos = filesystem.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    return sorted(info.base_name[3:] for info in infos
                  if info.type == pafs.FileType.Directory and info.base_name.startswith("dt="))


def visible_files(filesystem: pafs.FileSystem, folder: str) -> list[str]:
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
    filesystem, root = _filesystem(lake_root, RAW_QUOTES.folder)
    wanted = None if tickers is None else frozenset(tickers)
    with ThreadPoolExecutor(IO_THREADS) as pool:
        folders = list(pool.map(lambda day: visible_files(filesystem, f"{root}/dt={day}"), sorted(set(days))))
        paths = [path for files in folders for path in files]
        tables = list(tracked(pool.map(lambda path: _read_raw_file(filesystem, path, wanted), paths), len(paths),
                              "reading raw files", unit="file", min_total=50))
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


# Every data file the job writes has this name in its partition folder: a rewrite replaces it
# in place (an atomic rename locally, one PUT on S3), so no reader ever sees two versions.
DATA_FILE = "part-0.snappy.parquet"
# Temporary names are hidden (Spark and pyarrow's readers skip them) and do not end in
# .parquet (DuckDB's `*.parquet` glob matches hidden names too).
TEMP_PREFIX, TEMP_SUFFIX = ".tmp-", ".partial"


def _is_local(filesystem: pafs.FileSystem) -> bool:
    return isinstance(filesystem, pafs.LocalFileSystem)


def _rename(filesystem: pafs.FileSystem, source: str, target: str) -> None:
    """Replace `target` by `source` in one step (rename(2) on a local file system)."""
    filesystem.move(source, target)


def write_file_atomically(filesystem: pafs.FileSystem, path: str, table: pa.Table, **parquet_options: Any) -> None:
    """One Parquet file that appears whole or not at all.

    Locally it is written under a hidden temporary name beside its target, then renamed
    (atomic within a folder); a kill leaves at most a hidden file, which readers skip and
    the next rewrite of that partition deletes. On S3 an object appears when its upload
    completes, so it is written in place.
    """
    folder, name = path.rsplit("/", 1)
    if not _is_local(filesystem):
        pq.write_table(table, path, filesystem=filesystem, compression="snappy", **parquet_options)
        return
    filesystem.create_dir(folder, recursive=True)
    temp = f"{folder}/{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}{TEMP_SUFFIX}"
    try:
        pq.write_table(table, temp, filesystem=filesystem, compression="snappy", **parquet_options)
        _rename(filesystem, temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            filesystem.delete_file(temp)
        raise


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


def write_partitions(frame: DataFrame | pa.Table, lake_root: str, table: str, partition_by: list[str]) -> int:
    """Replace exactly the partitions present in `frame`; leave every other one alone.

    Refined tables hold one row per partition (a ticker's session or month): the rows are
    few even when the partitions are many, and the cost is one small file each. Spark's
    writer paid ~11 ms a file here, pyarrow's Parquet writer under 1 ms
    (bench/bench_refine_write.py), so the rows are collected as Arrow and each partition's
    file is written by pyarrow from a pool of threads, on a folder or straight to S3, under
    the fixed name DATA_FILE. (pyarrow's dataset writer slows down as partitions grow: 3.5 k
    files in 5 s but 13 k in 55 s here; one write_table per file stays linear.) Partitions
    are handed to the pool WRITE_BATCH at a time, so a backfill's 200 k partitions cost the
    memory of a batch. Each file is written atomically (write_file_atomically): a reader
    sees the old or the new file, never half of one nor both. Then the other files of the
    rewritten folders (older writers' names, leftovers of a killed run) are deleted: only
    rewritten top-level partitions that existed before this write are listed.
    """
    rows: pa.Table = collect_arrow(frame) if isinstance(frame, DataFrame) else frame
    if rows.num_rows == 0:
        return 0
    filesystem, root = _filesystem(lake_root, table)
    body, runs = partition_runs(rows, partition_by)
    top_level = sorted({folder.split("/", 1)[0] for folder, _, _ in runs})
    if len(top_level) > LIST_TABLE_ABOVE:  # a backfill: one listing of the table's top level beats a listing each
        infos = filesystem.get_file_info(pafs.FileSelector(root, allow_not_found=True))
        existing = {info.base_name for info in infos if info.type == pafs.FileType.Directory}
        top_level = [folder for folder in top_level if folder in existing]

    def write(run: tuple[str, int, int]) -> None:
        folder, start, length = run
        write_file_atomically(filesystem, f"{root}/{folder}/{DATA_FILE}", body.slice(start, length))

    threads = IO_THREADS if _is_local(filesystem) else S3_PUT_THREADS  # S3: latency-bound PUTs
    with ThreadPoolExecutor(threads) as pool:
        def written() -> Iterator[None]:
            for first in range(0, len(runs), WRITE_BATCH):
                yield from pool.map(write, runs[first : first + WRITE_BATCH])

        list(tracked(written(), len(runs), f"writing {table}", unit="partition", min_total=100))
    fresh = {f"{root}/{folder}/{DATA_FILE}" for folder, _, _ in runs}
    rewritten_dirs = {path.rsplit("/", 1)[0] for path in fresh}
    with ThreadPoolExecutor(IO_THREADS) as pool:
        listed = pool.map(lambda folder: filesystem.get_file_info(
            pafs.FileSelector(f"{root}/{folder}", recursive=True, allow_not_found=True)), top_level)
        stale = [info.path for infos in listed for info in infos if info.type == pafs.FileType.File
                 and info.path.rsplit("/", 1)[0] in rewritten_dirs and info.path not in fresh]
    delete_files(filesystem, stale)
    return rows.num_rows


def collect_arrow(frame: DataFrame) -> pa.Table:
    """A Spark DataFrame's rows as Arrow, types kept (date32, timestamp[us, UTC]).

    DataFrame.toArrow() is public from Spark 4.0. PySpark 3.5 (Glue 5.0 runs 3.5.4) has the
    same collection only as the private _collect_as_arrow(); this is its one caller.
    toPandas() is no substitute: it turns timestamps into nanoseconds, which Spark 3.5 cannot
    read back from Parquet.
    """
    if hasattr(frame, "toArrow"):  # Spark 4
        return frame.toArrow()  # pyright: ignore[reportAttributeAccessIssue, reportCallIssue]
    batches = frame._collect_as_arrow()
    if batches:
        return pa.Table.from_batches(batches)
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(frame.schema).empty_table()


def compact_years(lake_root: str, table: str) -> list[str]:
    """The years a compact table holds (`year=` folder names), from one folder-name listing."""
    filesystem, root = _filesystem(lake_root, table)
    infos = filesystem.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    return sorted(info.base_name[5:] for info in infos
                  if info.type == pafs.FileType.Directory and info.base_name.startswith("year="))


def read_compact_year(lake_root: str, table: str, year: str, columns: list[str] | None = None,
                      tickers: Iterable[str] | None = None) -> pa.Table | None:
    """One year of a compact table (one file), or None when it holds no such year."""
    filesystem, root = _filesystem(lake_root, table)
    path = f"{root}/year={year}/{DATA_FILE}"
    if filesystem.get_file_info(path).type != pafs.FileType.File:
        return None
    filters = None if tickers is None else [("ticker", "in", sorted(tickers))]
    return pq.read_table(path, filesystem=filesystem, columns=columns, filters=filters,
                         partitioning=None)  # pyright: ignore[reportArgumentType] - the year is in the path only


def merge_compact(lake_root: str, table: str, rows: pa.Table, key: list[str]) -> list[str]:
    """Fold refined rows into a compact table: one file per year, sorted by ticker then key.

    Only the years `rows` touch are read and rewritten; in each, the rows with the same key
    are replaced and the others kept. Returns the years rewritten.
    """
    if rows.num_rows == 0:
        return []
    period = key[1]  # dt or month: its first four characters are the year
    years = [value[:4] for value in rows[period].to_pylist()]
    filesystem, root = _filesystem(lake_root, table)
    order = [("ticker", "ascending"), (period, "ascending")]

    schema = pa.schema([field.with_nullable(True) for field in rows.schema])

    def rewrite(year: str) -> None:
        fresh = rows.filter(pa.array([y == year for y in years])).cast(schema)
        old = read_compact_year(lake_root, table, year)
        if old is not None:
            kept = old.select(schema.names).cast(schema).join(fresh.select(key), keys=key, join_type="left anti")
            fresh = pa.concat_tables([kept.select(schema.names).cast(schema), fresh])
        # Row groups of ~2k rows: a one-ticker query reads one or two of a year's groups.
        write_file_atomically(filesystem, f"{root}/year={year}/{DATA_FILE}", fresh.sort_by(order),
                              row_group_size=COMPACT_ROW_GROUP_ROWS)

    touched = sorted(set(years))
    with ThreadPoolExecutor(min(IO_THREADS, len(touched))) as pool:
        list(pool.map(rewrite, touched))
    return touched


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
