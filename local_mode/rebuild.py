"""Rebuild every refined table of a lake from its raw data, with the job's own code on a local Spark."""

from __future__ import annotations

from etl.refine import rebuild
from local_mode.spark import local_spark


def rebuild_lake(lake_root: str) -> dict:
    """What a Glue run would write from all of raw: the partitioned and compact refined tables."""
    return rebuild(local_spark("b3-quotes-repair"), lake_root)
