"""The local Spark's Python daemon: its workers hold no zip importers and have the job's modules frozen."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa

from b3_quotes.local_mode.python_daemon import is_spark_archive, without_spark_archives

SPARK_HOME = "/venv/lib/python3.11/site-packages/pyspark"


def test_spark_archives_are_its_zips_and_jars_only():
    assert is_spark_archive(f"{SPARK_HOME}/python/lib/pyspark.zip", SPARK_HOME)
    assert is_spark_archive(f"{SPARK_HOME}/python/lib/py4j-0.10.9.7-src.zip", SPARK_HOME)
    assert is_spark_archive(f"{SPARK_HOME}/jars/spark-core_2.12-3.5.8.jar", SPARK_HOME)
    assert not is_spark_archive("/usr/lib/python311.zip", SPARK_HOME)  # Python's own, not Spark's
    assert not is_spark_archive("/tmp/userFiles/job.zip", SPARK_HOME)  # a --py-files zip
    assert not is_spark_archive(f"{SPARK_HOME}/python/lib", SPARK_HOME)
    assert not is_spark_archive("/somewhere/python/lib/pyspark.zip", "")  # no SPARK_HOME: only jars


def test_archives_are_dropped_only_when_pyspark_and_py4j_import_without_them(tmp_path):
    lib = tmp_path / "spark" / "python" / "lib"
    lib.mkdir(parents=True)
    zips = [str(lib / "pyspark.zip"), str(lib / "py4j-0.10.9.7-src.zip"), str(tmp_path / "spark-core.jar")]
    installed = tmp_path / "site-packages"
    (installed / "pyspark").mkdir(parents=True)
    (installed / "pyspark" / "__init__.py").write_text("")
    (installed / "py4j").mkdir()
    (installed / "py4j" / "__init__.py").write_text("")
    spark_home = str(tmp_path / "spark")
    assert without_spark_archives([str(tmp_path / "job"), *zips, str(installed)], spark_home) == [
        str(tmp_path / "job"), str(installed)]
    (installed / "py4j" / "__init__.py").unlink()
    (installed / "py4j").rmdir()
    unchanged = [*zips, str(installed)]
    assert without_spark_archives(unchanged, spark_home) == unchanged  # py4j only in its zip: keep them


def test_local_workers_import_pyspark_from_the_venv_with_the_jobs_modules_frozen(spark):
    # Defined here: Spark pickles a nested function whole (this test module is not on a worker's path).
    def _worker_state(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import gc
        import importlib
        import zipimport

        import pyspark

        for _ in batches:
            importlib.invalidate_caches()  # what pyspark's worker did before this task, once more
            # Spark's archives only: a test's sc.addPyFile zip (the notebook's) is the session's to keep.
            zip_importers = [k for k, v in sys.path_importer_cache.items() if isinstance(v, zipimport.zipimporter)
                             and ("pyspark.zip" in k or "py4j" in k or ".jar" in k)]
            yield pa.RecordBatch.from_pydict({
                "zip_importers": ["\n".join(zip_importers)],
                "archives_on_path": [sum(p.endswith((".zip", ".jar")) and "pyspark" in p for p in sys.path)],
                "pyspark_file": [pyspark.__file__],
                "frozen": [gc.get_freeze_count()],
                "writer_loaded": ["etl.refined_writer" in sys.modules],
            })

    (state,) = spark.range(1, numPartitions=1).mapInArrow(
        _worker_state, "zip_importers string, archives_on_path long, pyspark_file string, frozen long, "
                       "writer_loaded boolean").collect()
    assert state["zip_importers"] == ""
    assert state["archives_on_path"] == 0
    import pyspark

    assert Path(state["pyspark_file"]) == Path(pyspark.__file__)  # the venv's, not pyspark.zip's
    assert state["frozen"] > 10_000  # pyspark, pandas and pyarrow's objects: out of every gc.collect()
    assert state["writer_loaded"]  # imported by the daemon, before the fork
    assert os.environ.get("SPARK_HOME") is None or not Path(state["pyspark_file"]).is_relative_to(
        Path(os.environ["SPARK_HOME"]) / "python" / "lib")


def test_the_daemon_is_the_projects_unless_the_variable_names_another():
    from b3_quotes.local_mode.spark import python_daemon

    assert python_daemon({}) == "b3_quotes.local_mode.python_daemon"
    assert python_daemon({"LOCAL_SPARK_PYTHON_DAEMON": " "}) == "b3_quotes.local_mode.python_daemon"
    assert python_daemon({"LOCAL_SPARK_PYTHON_DAEMON": "pyspark.daemon"}) == "pyspark.daemon"
