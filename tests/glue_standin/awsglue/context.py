"""GlueContext stand-in: the Spark session, and create_dynamic_frame.from_options for S3 Parquet.

from_options reads its paths with Spark's Parquet reader, as Glue does: eagerly enough to list
them and infer the schema, so a path with no Parquet under it fails ("Unable to infer schema").
`s3://<bucket>/<key>` is read from $AWSGLUE_STANDIN_S3_ROOT/<key> when that is set (a local lake).
"""

from __future__ import annotations

import os
import re

from pyspark.sql import SparkSession

from awsglue.dynamicframe import DynamicFrame


def _local_path(path: str) -> str:
    root = os.environ.get("AWSGLUE_STANDIN_S3_ROOT")
    return re.sub(r"^s3://[^/]+/", root.rstrip("/") + "/", path) if root else path


class _DynamicFrameReader:
    def __init__(self, glue_context: GlueContext) -> None:
        self._glue_context = glue_context

    def from_options(self, connection_type: str, connection_options: dict | None = None, format: str | None = None,  # noqa: A002 - Glue's name
                     format_options: dict | None = None, transformation_ctx: str = "", **kwargs) -> DynamicFrame:
        if connection_type != "s3" or format != "parquet":
            raise NotImplementedError(f"stand-in reads s3 parquet only, not {connection_type} {format}")
        options = connection_options or {}
        reader = self._glue_context.spark_session.read
        if options.get("recurse"):
            reader = reader.option("recursiveFileLookup", "true")
        frame = reader.parquet(*[_local_path(p) for p in options["paths"]])
        return DynamicFrame(frame, self._glue_context, transformation_ctx)


class GlueContext:
    def __init__(self, spark_context) -> None:
        self.spark_session = SparkSession(spark_context)
        # Glue's sessions run in UTC.
        self.spark_session.conf.set("spark.sql.session.timeZone", "UTC")
        self.create_dynamic_frame = _DynamicFrameReader(self)
