"""Read raw quotes and run manifests, write refined tables: the job's only storage code."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

RAW_QUOTES = "raw/quotes"
REFINED_DAILY = "refined/quotes_daily"
REFINED_MONTHLY = "refined/quotes_monthly"


@dataclass(frozen=True)
class RunManifest:
    run_id: str
    partitions: list[str]
    tickers: list[str]


def lake_path(lake_root: str, relative: str) -> str:
    return f"{lake_root.rstrip('/')}/{relative}"


def read_manifest(spark: SparkSession, lake_root: str, manifest_key: str) -> RunManifest:
    """Read a run's commit marker through Spark's file system (local, s3://, file://)."""
    row = spark.read.text(lake_path(lake_root, manifest_key), wholetext=True).first()
    if row is None:
        raise ValueError(f"manifest {manifest_key} is empty")
    body = json.loads(row[0])
    if not body.get("partitions") or not body.get("tickers"):
        raise ValueError(f"manifest {manifest_key} lists no partitions or tickers")
    return RunManifest(body["run_id"], sorted(body["partitions"]), sorted(body["tickers"]))


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
