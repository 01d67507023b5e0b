"""The local session in a process that runs the pipeline more than once (a notebook, the tests): a
later run of the same shape compiles none of the refine's code again, it warms nothing up, and
pyspark's column functions find their JVM class in Python."""

from __future__ import annotations

from tests.helpers import csv_run


def classes_compiled(spark) -> int:
    """How many times this JVM has compiled generated code (Spark's codegen metric; a cache hit is none)."""
    metrics = spark.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics  # pyright: ignore[reportOptionalMemberAccess]
    return metrics.METRIC_COMPILATION_TIME().getCount()


def test_a_second_run_of_the_same_shape_compiles_nothing(spark, tmp_path):
    assert csv_run(tmp_path / "first", "2020-03-02", "2020-03-13") == 0
    compiled = classes_compiled(spark)
    assert compiled > 0  # the metric counts this JVM's compiles
    assert csv_run(tmp_path / "second", "2020-03-02", "2020-03-13") == 0
    assert classes_compiled(spark) == compiled


def test_a_warm_up_in_a_process_whose_session_is_up_runs_no_spark_job(spark):
    from b3_quotes.local_mode.spark import warm_spark

    tracker = spark.sparkContext.statusTracker()
    spark.range(1).collect()  # a job of this test: the tracker lists jobs
    jobs = set(tracker.getJobIdsForGroup(None))
    assert jobs
    warm_spark()
    assert set(tracker.getJobIdsForGroup(None)) == jobs


def test_a_column_function_looks_up_no_class_in_the_jvm(spark, monkeypatch):
    """pyspark reads `functions` off the JVM view for every F.col, F.lit, ...: the local session's
    view holds it, so the call sends the JVM the call alone, no lookup of the class's name."""
    from pyspark.sql import functions as F

    from b3_quotes.local_mode.spark import local_spark

    client = local_spark().sparkContext._gateway._gateway_client  # pyright: ignore[reportOptionalMemberAccess]
    real, sent = client.send_command, []
    monkeypatch.setattr(client, "send_command", lambda command, *args, **kwargs: (
        sent.append(command), real(command, *args, **kwargs))[1])
    F.col("ticker")
    assert sent  # the call reached the JVM through this client
    assert not [command for command in sent if command.startswith("r\nu\n")]  # py4j's "unknown name" lookup
