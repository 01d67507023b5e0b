"""Where the pipeline runs, decided once from the settings: a local folder or an AWS account.

`build_runtime(settings)` is the only place that tests `settings.is_local`; the command lines
(scraper_upload, b3_quotes.catalog.query, charts) take the Runtime it returns and never branch on it.
- LocalRuntime: the lake is a folder (storage.Lake), held under its lock while a run writes;
  a committed run is refined here (the real Lambda handler, a local Glue client); queries run
  on DuckDB views.
- AwsRuntime: the lake is the bucket (storage.Lake with the boto3 session); the bucket
  notification starts Glue; queries run on Athena.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from b3_quotes.config.settings import ConfigError, Settings, region_line
from b3_quotes.storage import Lake
from b3_quotes.storage.lock import lake_lock

Rows = tuple[list[str], list[tuple]]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalRuntime:
    """The pipeline on this machine: a folder as the lake, a local Glue job, DuckDB as Athena."""

    settings: Settings
    lake: Lake  # the folder's

    @property
    def where(self) -> str:
        return f"the local lake {self.settings.lake_dir}"

    @property
    def database(self) -> str | None:
        return None  # DuckDB's views live in its main schema

    def require_lake(self) -> None:
        """A query or check never creates an empty lake where none is."""
        if not self.settings.lake_dir.is_dir():
            raise ConfigError(f"no lake at {self.settings.lake_dir.resolve()}: run the scraper first, "
                              "or set LAKE_DIR / --lake-dir")

    @contextlib.contextmanager
    def holding_lake(self, what: str = "run") -> Iterator[None]:
        """The lake's lock: every write of a run happens under it (another run waits)."""
        with lake_lock(self.settings.lake_dir, self.settings.lake_lock_wait_s, what=what):
            yield

    def warm_up(self) -> None:
        """Start the local Spark (JVM, Python workers) in the background while the scrape downloads.

        A daily run's refine waits for it otherwise: the JVM's start and its first Python task
        are most of a small run's time. Any failure here (no Java) is met again, and said, when
        the refine asks for Spark.
        """
        from b3_quotes.local_mode.spark import warm_spark

        threading.Thread(target=warm_spark, name="spark-warm-up", daemon=True).start()

    def after_commit(self, manifest_key: str) -> None:
        """What the bucket notification starts on AWS, here: the handler, the Glue job, the catalog."""
        from b3_quotes.local_mode.trigger import trigger_locally

        logger.info("refining locally (Lambda handler -> local Glue job -> catalog)")
        trigger_locally(self.settings.lake_dir, manifest_key, self.settings.glue_job_name)
        # Quoted for the shell: a lake path with spaces or quotes is pasted as it is printed.
        logger.info(f"query it: python -m b3_quotes.catalog.query --lake-dir {shlex.quote(str(self.settings.lake_dir))} "
                    "--file sql/latest_sessions.sql")

    def query_all(self, sql: str) -> list[Rows]:
        """Each statement's columns and rows, read-only and confined to the lake's tables (no lock taken)."""
        from b3_quotes.local_mode.duckdb_views import open_catalog, run_statements

        self.require_lake()
        with open_catalog(self.settings.lake_dir) as con:
            return run_statements(con, sql)

    def query(self, sql: str) -> Rows:
        return _only(self.query_all(sql))

    def refresh_catalog(self) -> None:
        """Rebuild the catalog file if it is stale or broken (one line says so); a lake we may only read has none."""
        import duckdb

        from b3_quotes.local_mode.duckdb_views import open_catalog

        self.require_lake()
        try:
            open_catalog(self.settings.lake_dir).close()
        except duckdb.Error as exc:  # a raw file a view must read to be defined cannot be read: verify names it
            text = " ".join(str(exc).split())
            logger.warning(f"catalog {self.settings.lake_dir / 'catalog.duckdb'} not refreshed: {text[:300]}")


def _only(results: list[Rows]) -> Rows:
    if len(results) != 1:
        raise ValueError(f"expected one statement, got {len(results)}")
    return results[0]


@dataclass(frozen=True)
class AwsRuntime:
    """The pipeline in an AWS account: the bucket as the lake, Glue started by the bucket notification, Athena."""

    settings: Settings
    lake: Lake
    session: Any  # boto3.Session: every client of this runtime comes from it

    @property
    def where(self) -> str:
        return self.settings.lake_root

    @property
    def database(self) -> str | None:
        return self.settings.glue_database

    def require_lake(self) -> None:
        """The bucket is checked by the first request that reads it."""

    @contextlib.contextmanager
    def holding_lake(self, what: str = "run") -> Iterator[None]:
        """S3 has no lock: one PUT per file, and the job allows one run at a time."""
        yield

    def warm_up(self) -> None:
        """Nothing to start here: Glue runs the job."""

    def after_commit(self, manifest_key: str) -> None:
        logger.info(f"committed {self.lake.describe(manifest_key)}: "
                    f"the bucket notification starts Glue job {self.settings.glue_job_name}")

    def query(self, sql: str) -> Rows:
        from b3_quotes.runtime.athena import run_athena_query

        athena = self.session.client("athena", region_name=self.settings.aws_region)
        result = run_athena_query(athena, sql, database=self.settings.glue_database,
                                  workgroup=self.settings.athena_workgroup)
        return result.columns, result.rows

    def query_all(self, sql: str) -> list[Rows]:
        """Athena runs one statement a query (it refuses several with its own message); the workgroup
        confines where results go, and the job role's grants what a query may read."""
        return [self.query(sql)]

    def refresh_catalog(self) -> None:
        """The Glue Data Catalog is kept by the job (its partitions) and the crawler: no file to heal here."""


Runtime = LocalRuntime | AwsRuntime


def build_runtime(settings: Settings, session: Any = None) -> Runtime:
    """The runtime the settings describe: AWS when a bucket is set, else the local folder.

    `session` is a boto3 session to use on AWS (default: a new one in the settings' region).
    """
    if settings.is_local:
        return LocalRuntime(settings, Lake.local(settings.lake_dir))
    if session is None:
        import boto3

        if line := region_line(settings):  # the profile's region or the default: said once
            logger.info(line)
        session = boto3.Session(region_name=settings.aws_region)
    return AwsRuntime(settings, Lake.at(settings.lake_root, settings.aws_region, session), session)
