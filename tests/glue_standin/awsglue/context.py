"""GlueContext stand-in: only the Spark session the job uses."""

from pyspark.sql import SparkSession


class GlueContext:
    def __init__(self, spark_context) -> None:
        self.spark_session = SparkSession(spark_context)
