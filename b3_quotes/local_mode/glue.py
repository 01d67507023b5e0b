"""A stand-in for the boto3 Glue client: start_job_run runs the job here, in a local SparkSession."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from types import SimpleNamespace

from pyspark.sql import SparkSession

from b3_quotes.local_mode.spark import local_spark
from b3_quotes.storage import Lake
from etl.glue_job import refine_run

logger = logging.getLogger(__name__)


class ConcurrentRunsExceededException(Exception):
    """Same name as Glue's, so the handler's retry logic is exercised locally too."""


class LocalGlueClient:
    """The subset of the boto3 Glue client the Lambda handler uses, run in-process."""

    exceptions = SimpleNamespace(ConcurrentRunsExceededException=ConcurrentRunsExceededException)

    def __init__(self, lake: Lake, after_write: Callable[[], None] | None = None,
                 spark_factory: Callable[[], SparkSession] = local_spark) -> None:
        self.lake = lake
        self.after_write = after_write
        self.spark_factory = spark_factory

    def start_job_run(self, JobName: str, Arguments: dict[str, str]) -> dict[str, str]:  # noqa: N803 - boto3's names
        run_id = f"jr_local_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}"
        spark = self.spark_factory()
        totals = refine_run(spark, self.lake, Arguments.get("--manifest_key", ""))
        logger.info(f"  job {JobName} ({run_id}): refined {totals.runs} scrape run(s), wrote {totals.counts}")
        if self.after_write is not None:
            self.after_write()
        return {"JobRunId": run_id}
