"""Rebuild every refined table of a lake from its raw data, with the job's own code on a local Spark."""

from __future__ import annotations

import pandas as pd

from b3_quotes.local_mode.spark import local_spark
from b3_quotes.storage import Lake
from etl.refine import Counts, rebuild, recompute


def rebuild_lake(lake: Lake) -> Counts:
    """What a Glue run would write from all of raw: the partitioned and compact refined tables."""
    return rebuild(local_spark("b3-quotes-repair"), lake)


def recompute_lake(lake: Lake) -> dict[str, pd.DataFrame]:
    """Every refined table's rows a rebuild would write (by table name), computed by the job's code,
    as pandas frames.

    The job's code, not a second implementation: verify checks that the lake holds what the
    rules give from raw (the rules themselves are checked by the tests, against pandas).
    """
    spark = local_spark("b3-quotes-verify")
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")  # columnar collect: seconds for 200 k rows
    return {name: rows.toPandas() for name, rows in recompute(spark, lake).items()}
