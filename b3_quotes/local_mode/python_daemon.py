"""The local Spark's Python daemon (spark.python.daemon.module): pyspark's own, made cheap per task.

Spark starts one daemon per JVM; it forks the Python workers, and a worker runs task after task.
Two things pyspark's worker does around every task cost a small run more than its tasks' work:

- it calls `importlib.invalidate_caches()`, and Python 3.11 then reads again the whole directory
  of every zip importer the worker holds. Spark puts pyspark.zip, py4j's zip and its core jar first
  on the workers' path: one importer per archive and per package imported from pyspark.zip, 95 ms
  of CPU a task. The venv has the same pyspark and py4j installed: the daemon and its workers
  import them from there (the path is left as Spark gave it when they are not there);
- it runs a full `gc.collect()`, which walks every object of every module the worker imported,
  about 90% of a worker's CPU in a 10-session run. The daemon imports what the job's tasks import
  before it forks, then freezes those objects out of the collector (`gc.freeze()`, as Python's
  documentation advises before a fork): the collection then walks only a task's own objects.

A warm 10-session run: its workers' CPU 3.3 s -> 0.35 s, the whole run's 6.5 -> 3.3 CPU-seconds.

    python -m b3_quotes.local_mode.python_daemon    # started by Spark, as it starts pyspark.daemon
"""

from __future__ import annotations

import gc
import importlib
import importlib.machinery
import os
import sys

# What the job's tasks import: pyspark's Arrow serializers and pandas, pyarrow's Parquet, the reader and writer.
TASK_MODULES = ("pyspark.sql.pandas.serializers", "pandas", "pyarrow.parquet", "etl.raw_reader", "etl.refined_writer")


def is_spark_archive(entry: str, spark_home: str) -> bool:
    """An entry Spark adds for its workers: a zip under SPARK_HOME/python/lib, or a jar."""
    lib = os.path.join(spark_home, "python", "lib") + os.sep if spark_home else None
    return entry.endswith(".jar") or bool(lib and entry.startswith(lib) and entry.endswith(".zip"))


def without_spark_archives(path: list[str], spark_home: str) -> list[str]:
    """`path` without Spark's archives when pyspark and py4j import from what is left; else `path`."""
    kept = [entry for entry in path if not is_spark_archive(entry, spark_home)]
    found = all(importlib.machinery.PathFinder.find_spec(name, kept) for name in ("pyspark", "py4j"))
    return kept if found else path


def main() -> None:
    sys.path[:] = without_spark_archives(sys.path, os.environ.get("SPARK_HOME", ""))
    for entry in [e for e in sys.path_importer_cache if e not in sys.path]:  # the dropped archives' importers
        del sys.path_importer_cache[entry]
    from pyspark import daemon

    for name in TASK_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a task importing it meets the same error and reports it
            pass
    gc.freeze()
    daemon.manager()


if __name__ == "__main__":
    main()
