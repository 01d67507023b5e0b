"""What S3 -> Lambda -> Glue -> crawler does on AWS, in this process: the real handler, a local Glue."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from b3_quotes.local_mode.duckdb_views import CATALOG_FILE, refresh_catalog
from b3_quotes.local_mode.glue import LocalGlueClient
from b3_quotes.storage import Lake
from lambdas.start_glue_job import start_job_runs

LOCAL_BUCKET = "local-lake"
logger = logging.getLogger(__name__)


def s3_put_event(bucket: str, key: str) -> dict[str, Any]:
    """The event S3 sends for a PUT, key URL-encoded as S3 does."""
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
            }
        ]
    }


def trigger_locally(lake_dir: Path, manifest_key: str, job_name: str) -> list[dict[str, str]]:
    """What S3 -> Lambda -> Glue -> crawler does on AWS, in this process."""
    glue = LocalGlueClient(Lake.local(lake_dir), after_write=lambda: _refresh(lake_dir))
    return start_job_runs(glue, job_name, s3_put_event(LOCAL_BUCKET, manifest_key))


def _refresh(lake_dir: Path) -> None:
    """Refresh the DuckDB views; a catalog another program holds open is a warning, not a failure.

    The data is refined either way, and every query refreshes the views again.
    """
    import duckdb

    try:
        tables = refresh_catalog(lake_dir)
    except (duckdb.Error, OSError) as exc:  # a full disk: the old catalog stays whole
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        logger.warning(f"catalog {lake_dir / CATALOG_FILE} not refreshed ({first_line}); "
                       "the next query refreshes it")
        return
    logger.info(f"  catalog {lake_dir / CATALOG_FILE}: {', '.join(tables)}")
