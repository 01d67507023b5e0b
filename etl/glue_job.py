"""Glue job entry point: refine the raw quotes one scrape run delivered.

Runs unchanged on AWS Glue 5.0 (`awsglue` is imported inside `main`) and on a local
SparkSession through `etl.local_runner`.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable

from pyspark.sql import SparkSession

from etl.lake_io import (
    REFINED_DAILY,
    REFINED_MONTHLY,
    mark_processed,
    pending_manifest_keys,
    read_manifests,
    read_raw_quotes,
    write_partitions,
)
from etl.transforms import refine_daily, select_changed, summarize_monthly

JOB_ARGUMENTS = ["JOB_NAME", "lake_root", "manifest_key", "crawler_name"]


def refine_run(spark: SparkSession, lake_root: str, manifest_key: str) -> dict[str, int]:
    """Recompute and overwrite every refined partition the run can have changed.

    The windows need each ticker's earlier sessions, so the job reads the raw history and
    writes only the changed partitions: an incremental run equals a full recompute.
    Manifests that no run has refined yet (a trigger refused while another run was busy,
    or lost) are refined along with this one, then every one of them is marked processed.
    """
    keys = sorted({manifest_key, *pending_manifest_keys(lake_root)})
    manifests = read_manifests(lake_root, keys)
    tickers = sorted({t for m in manifests for t in m.tickers})
    first_dt = min(m.partitions[0] for m in manifests)
    raw = read_raw_quotes(spark, lake_root, tickers)
    daily = refine_daily(raw).cache()
    monthly = summarize_monthly(daily)
    daily_out, monthly_out = select_changed(daily, monthly, tickers, first_dt)
    write_id = uuid.uuid4().hex[:12]
    counts = {
        "runs": len(manifests),
        "daily_rows": write_partitions(daily_out, lake_root, REFINED_DAILY, ["dt", "ticker"], write_id),
        "monthly_rows": write_partitions(monthly_out, lake_root, REFINED_MONTHLY, ["month", "ticker"], write_id),
    }
    daily.unpersist()
    mark_processed(lake_root, keys)
    return counts


def start_crawler(crawler_name: str, glue_client=None) -> None:
    """Ask the crawler to pick up new partitions; one already running will see them too."""
    import boto3

    glue = glue_client or boto3.client("glue")
    try:
        glue.start_crawler(Name=crawler_name)
    except glue.exceptions.CrawlerRunningException:
        pass


def main(argv: list[str], after_write: Callable[[str], None] | None = None) -> None:
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions

    args = getResolvedOptions(argv, JOB_ARGUMENTS)
    session = SparkSession.builder.getOrCreate()  # pyright: ignore[reportAttributeAccessIssue]
    glue_context = GlueContext(session.sparkContext)
    spark = glue_context.spark_session
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    counts = refine_run(spark, args["lake_root"], args["manifest_key"])
    print(f"refined {counts} from {args['manifest_key']}")
    (after_write or start_crawler)(args["crawler_name"])
    job.commit()


if __name__ == "__main__":
    main(sys.argv)
