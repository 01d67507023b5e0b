"""The local SparkSession the job runs in when there is no Glue."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from pyspark import SparkContext
from pyspark.sql import SparkSession

# Spark's default logging prints start-up warnings on every run; this file keeps errors only. The
# JVM is pointed at it by an option (not SPARK_CONF_DIR: a folder that is not empty on the JVM's
# class path keeps the class archive from being used).
LOG_CONFIG = Path(__file__).with_name("spark-conf") / "log4j2.properties"
# The JVM's class-data archive, built once at install (b3_quotes/deploy/class_archive.py): the classes a
# run loads, already parsed and verified. A JVM's start and first jobs take a third less with it.
CLASS_ARCHIVE = Path(sys.prefix) / "share" / "b3-quotes" / "spark-classes.jsa"


class JavaMissing(OSError):
    """No Java to start Spark with (an OSError: the callers' 'cannot refine here' path)."""


JAVA_MISSING = ("Java 17 is not installed, and the local Spark job needs it: install a Java 17 runtime "
                "(Debian/Ubuntu: apt install openjdk-17-jre-headless; macOS: brew install openjdk@17) "
                "or set JAVA_HOME to one")


def find_java(environ: dict[str, str] | os._Environ = os.environ) -> str | None:
    """The java Spark would start: $JAVA_HOME/bin/java, else the one on PATH."""
    if home := environ.get("JAVA_HOME"):
        java = Path(home) / "bin" / "java"
        return str(java) if java.is_file() else None
    return shutil.which("java", path=environ.get("PATH"))


DEFAULT_CORES = 2
# A short-lived JVM on a laptop's few cores: the quick JIT compiler alone and one GC thread leave
# the cores to the work (bench/README.md, "Figures behind the code's choices").
BASE_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _quoted(option: str) -> str:
    """One option as Spark's launcher splits extraJavaOptions: double quotes, backslash escapes."""
    return '"' + option.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jvm_options(archive: Path = CLASS_ARCHIVE, archive_at_exit: Path | None = None) -> str:
    """The local JVM's options: BASE_JVM_OPTIONS, errors-only logging and the class archive.

    The archive is used when its file is there (it appears whole: the builder renames it into
    place); a JVM finding it made for another Java or other jars runs without it, silently.
    `archive_at_exit` makes the JVM write a new archive there when it exits instead.
    """
    # As a URI: log4j would read a comma in a path as a list, a `${` as a variable.
    options = [BASE_JVM_OPTIONS, _quoted(f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}")]
    if archive_at_exit is not None:
        options.append(_quoted(f"-XX:ArchiveClassesAtExit={archive_at_exit}"))
    elif archive.is_file():
        options.append(_quoted(f"-XX:SharedArchiveFile={archive}"))
    else:
        return " ".join(options)
    options.append("-Xlog:cds*=off")  # an archive that does not match is no error: no warning either
    return " ".join(options)


def spark_cores(environ: dict[str, str] | os._Environ = os.environ) -> int:
    """LOCAL_SPARK_CORES (default 2): the N of local[N], so benchmarks can compare local[1] and local[2]."""
    text = environ.get("LOCAL_SPARK_CORES", "").strip()
    if not text:
        return DEFAULT_CORES
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"LOCAL_SPARK_CORES must be a whole number of cores, 1 or more, got {text!r}")
    return int(text)


PYTHON_DAEMON = "b3_quotes.local_mode.python_daemon"
CODEGEN_CACHE_ENTRIES = 2000
# The JVM names pyspark reads off py4j's JVM view on every call: `functions` for each F.col, F.lit,
# F.when, ..., `PythonUtils`, `org` (the first step of every full class name). py4j looks a name up
# in the JVM each time it is read, trying it bare, then in each of pyspark's eight star imports,
# every miss a search of the whole class path (a warm run makes hundreds). Set on the
# view (a class or package reference holds only its name), they are found in Python.
SHORT_NAMES = {"functions": "org.apache.spark.sql.functions", "PythonUtils": "org.apache.spark.api.python.PythonUtils",
               "SparkSession": "org.apache.spark.sql.SparkSession",
               "SimplePythonFunction": "org.apache.spark.api.python.SimplePythonFunction", "org": "org"}


def python_daemon(environ: dict[str, str] | os._Environ = os.environ) -> str:
    """LOCAL_SPARK_PYTHON_DAEMON (default PYTHON_DAEMON): the module Spark starts its Python workers'
    daemon from; `pyspark.daemon` is Spark's own (bench/bench_local_runs.py compares the two)."""
    return environ.get("LOCAL_SPARK_PYTHON_DAEMON", "").strip() or PYTHON_DAEMON


def local_spark(app_name: str = "b3-quotes-local", cores: int | None = None,
                java_options: str | None = None) -> SparkSession:
    """A small local session: UTC, few shuffle partitions, no UI, no .crc side files.

    `cores` defaults to LOCAL_SPARK_CORES, `java_options` to jvm_options(). Raises JavaMissing, with what to install, when there
    is no Java to run it.
    """
    cores = cores or spark_cores()
    if find_java() is None:
        raise JavaMissing(JAVA_MISSING)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master(f"local[{cores}]")  # pyright: ignore[reportAttributeAccessIssue]
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(cores))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
        .config("spark.hadoop.fs.file.impl.disable.cache", "true")
        .config("spark.ui.showConsoleProgress", "false")
        # A local run's data is small and its shuffles sized by the job: adaptive execution only
        # adds a Spark job per shuffle stage (17 jobs a 6-month run instead of 6).
        .config("spark.sql.adaptive.enabled", "false")
        # The workers' daemon (b3_quotes/local_mode/python_daemon.py): pyspark's own, without Spark's zips on
        # its path and with the job's modules imported and frozen out of the collector before it
        # forks; a task's Python worker starts without re-importing them or a full gc.collect().
        .config("spark.python.daemon.module", python_daemon())
        # Spark keeps the classes it compiles for a query's code in a cache of 100, split in four
        # parts of 25: one refine compiles about 80, so a session running several (a notebook,
        # the tests) compiled the same code again on every run (30 to 45 compiles a warm run).
        .config("spark.sql.codegen.cache.maxEntries", str(CODEGEN_CACHE_ENTRIES))
        # No table is saved in Spark's catalog; its default database's folder (made when a query
        # names a view) is kept out of the current folder.
        .config("spark.sql.warehouse.dir", str(Path(tempfile.gettempdir()) / "b3-quotes-spark-warehouse"))
        .config("spark.driver.extraJavaOptions", java_options or jvm_options())
        # List partition folders in the driver: a Spark job per listing costs more locally.
        .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "100000")
        .getOrCreate()
    )
    jvm = session.sparkContext._jvm  # pyright: ignore[reportPrivateUsage]
    for short, full in SHORT_NAMES.items():
        if short not in vars(jvm):
            setattr(jvm, short, getattr(jvm, full))  # looked up once, by its full name
    return session


def warm_spark() -> None:
    """Start the local session and run one tiny Python task that imports the job's reader, then return.

    Afterwards the refine's first Spark job finds the JVM up, its SQL classes loaded and a Python
    worker with pyarrow and the job's modules imported. Errors are left for the refine to raise.
    A process whose session is already up (a notebook, the tests, a second run) has nothing to warm.
    """
    if SparkContext._active_spark_context is not None:  # pyright: ignore[reportPrivateUsage]
        return
    try:
        from etl.raw_reader import warm_task

        local_spark().range(1, numPartitions=1).mapInArrow(warm_task, "id long").collect()
    except Exception:  # noqa: BLE001 - the refine meets and reports the same failure
        pass
