"""Read raw quotes and run manifests, write refined tables: the job's only storage code."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

RAW_QUOTES = "raw/quotes"
MANIFESTS = "raw/_manifests"
# One empty object per manifest the job has refined: the others are still pending.
PROCESSED_RUNS = "refined/_processed_runs"
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


def read_manifests(spark: SparkSession, lake_root: str, keys: list[str]) -> list[RunManifest]:
    """Read run commit markers through Spark's file system (local, s3://, file://)."""
    rows = spark.read.text([lake_path(lake_root, k) for k in keys], wholetext=True).collect()
    if len(rows) != len(keys):
        raise ValueError(f"expected {len(keys)} manifests, read {len(rows)}: {', '.join(keys)}")
    return [_parse_manifest(row[0], ", ".join(keys)) for row in rows]


def read_manifest(spark: SparkSession, lake_root: str, manifest_key: str) -> RunManifest:
    (manifest,) = read_manifests(spark, lake_root, [manifest_key])
    return manifest


def _hadoop_fs(spark: SparkSession, uri: str):
    """Hadoop's file system for a URI: the one Spark itself uses (local, S3 on Glue)."""
    path = spark._jvm.org.apache.hadoop.fs.Path(uri)  # type: ignore[union-attr]
    return path.getFileSystem(spark._jsc.hadoopConfiguration()), path  # type: ignore[union-attr]


def list_file_names(spark: SparkSession, lake_root: str, folder: str) -> list[str]:
    fs, path = _hadoop_fs(spark, lake_path(lake_root, folder))
    if not fs.exists(path):
        return []
    return sorted(str(status.getPath().getName()) for status in fs.listStatus(path) if status.isFile())


def pending_manifest_keys(spark: SparkSession, lake_root: str) -> list[str]:
    """Manifests no job run has refined yet: a refused or lost trigger is caught up here."""
    done = set(list_file_names(spark, lake_root, PROCESSED_RUNS))
    return [f"{MANIFESTS}/{name}" for name in list_file_names(spark, lake_root, MANIFESTS)
            if name.endswith(".json") and name not in done]


def mark_processed(spark: SparkSession, lake_root: str, manifest_keys: list[str]) -> None:
    for key in manifest_keys:
        fs, path = _hadoop_fs(spark, lake_path(lake_root, f"{PROCESSED_RUNS}/{key.rsplit('/', 1)[-1]}"))
        fs.create(path, True).close()


def read_raw_quotes(spark: SparkSession, lake_root: str) -> DataFrame:
    """Every raw quote file; `dt` comes from the folder name, as a string."""
    path = lake_path(lake_root, RAW_QUOTES)
    return spark.read.option("basePath", path).parquet(path)


def write_partitions(frame: DataFrame, lake_root: str, table: str, partition_by: list[str]) -> None:
    """Replace exactly the partitions present in `frame`; leave every other one alone."""
    (
        frame.repartition(2, *partition_by)
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy(*partition_by)
        .parquet(lake_path(lake_root, table))
    )
