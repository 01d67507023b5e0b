"""Read raw quotes and run manifests, write refined tables: the job's only storage code."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
from pyspark.sql import DataFrame, SparkSession

RAW_QUOTES = "raw/quotes"
MANIFESTS = "raw/_manifests"
# One empty object per manifest the job has refined: the others are still pending.
PROCESSED_RUNS = "refined/_processed_runs"
S3_DELETE_BATCH = 1000  # DeleteObjects' limit
REFINED_DAILY = "refined/quotes_daily"
REFINED_MONTHLY = "refined/quotes_monthly"


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


def read_raw_quotes(spark: SparkSession, lake_root: str) -> DataFrame:
    """Every raw quote file; `dt` comes from the folder name, as a string."""
    path = lake_path(lake_root, RAW_QUOTES)
    return spark.read.option("basePath", path).parquet(path)


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
