"""Local stand-in for AWS Glue: runs the same job in a local SparkSession."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from pyspark.sql import SparkSession

from etl.glue_job import refine_run
from etl.lake_io import local_lake_root

# Spark's default logging prints start-up warnings on every run; this folder's log4j2.properties
# keeps errors only. Spark reads it from SPARK_CONF_DIR when the JVM starts.
SPARK_CONF_DIR = Path(__file__).with_name("spark-conf")


def local_spark(app_name: str = "b3-quotes-local", cores: int = 2) -> SparkSession:
    """A small local session: UTC, few shuffle partitions, no UI, no .crc side files."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("SPARK_CONF_DIR", str(SPARK_CONF_DIR))
    return (
        SparkSession.builder.master(f"local[{cores}]")  # pyright: ignore[reportAttributeAccessIssue]
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(cores))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
        .config("spark.hadoop.fs.file.impl.disable.cache", "true")
        .config("spark.ui.showConsoleProgress", "false")
        # List partition folders in the driver: a Spark job per listing costs more locally.
        .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "100000")
        .getOrCreate()
    )


class ConcurrentRunsExceededException(Exception):
    """Same name as Glue's, so the handler's retry logic is exercised locally too."""


class LocalGlueClient:
    """The subset of the boto3 Glue client the Lambda handler uses, run in-process."""

    exceptions = SimpleNamespace(ConcurrentRunsExceededException=ConcurrentRunsExceededException)

    def __init__(self, lake_dir: Path, after_write: Callable[[], None] | None = None,
                 spark_factory: Callable[[], SparkSession] = local_spark,
                 log: Callable[[str], None] = print) -> None:
        self.lake_root = local_lake_root(lake_dir)
        self.after_write = after_write
        self.spark_factory = spark_factory
        self.log = log

    def start_job_run(self, JobName: str, Arguments: dict[str, str]) -> dict[str, str]:  # noqa: N803 - boto3's names
        run_id = f"jr_local_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}"
        spark = self.spark_factory()
        counts = refine_run(spark, self.lake_root, Arguments.get("--manifest_key", ""), log=self.log)
        self.log(f"  job {JobName} ({run_id}): refined {counts['runs']} scrape run(s), wrote "
                 f"{counts['daily_rows']} daily and {counts['monthly_rows']} monthly rows")
        if self.after_write is not None:
            self.after_write()
        return {"JobRunId": run_id}
