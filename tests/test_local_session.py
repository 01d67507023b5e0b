"""The local session in a process that runs the pipeline more than once (a notebook, the tests): a
later run of the same shape compiles none of the refine's code again, and warms nothing up."""

from __future__ import annotations

from tests.helpers import csv_run

_KEPT: list[object] = []


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
    from local_mode.spark import warm_spark

    tracker = spark.sparkContext.statusTracker()
    spark.range(1).collect()  # a job of this test: the tracker lists jobs
    jobs = set(tracker.getJobIdsForGroup(None))
    assert jobs
    warm_spark()
    assert set(tracker.getJobIdsForGroup(None)) == jobs


def test_the_classes_pyspark_names_on_every_call_are_imported_by_their_full_names(spark):
    from py4j.java_gateway import JavaObject
    from py4j.protocol import DEFAULT_JVM_ID

    from local_mode.spark import local_spark

    context = local_spark().sparkContext
    view = JavaObject(DEFAULT_JVM_ID[1:], context._gateway._gateway_client)  # pyright: ignore[reportOptionalMemberAccess]
    # A JavaObject collected in Python deletes its object in the JVM: this one is py4j's default view,
    # which every later call of the session needs. Kept for the process's life.
    _KEPT.append(view)
    imports = dict(view.getSingleImportsMap())
    # A short name found by a single import misses once (the bare name), not once per star import.
    assert imports["functions"] == "org.apache.spark.sql.functions"
    assert imports["PythonUtils"] == "org.apache.spark.api.python.PythonUtils"
