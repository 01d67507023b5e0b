"""Lake layout and storage: the same keys on a local folder or an S3 bucket."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

RAW_QUOTES_PREFIX = "raw/quotes/"
# Commit markers: one JSON per scrape run, written last; the S3 notification fires on these only.
MANIFEST_PREFIX = "raw/_manifests/"
MANIFEST_SUFFIX = ".json"
REFINED_DAILY_PREFIX = "refined/quotes_daily/"
REFINED_MONTHLY_PREFIX = "refined/quotes_monthly/"


def raw_partition_key(dataset_prefix: str, dt: str, file_name: str) -> str:
    """`raw/quotes/dt=2024-01-02/<file_name>`."""
    return f"{dataset_prefix}dt={dt}/{file_name}"


def manifest_key(run_id: str) -> str:
    return f"{MANIFEST_PREFIX}{run_id}{MANIFEST_SUFFIX}"


def is_manifest_key(key: str) -> bool:
    return key.startswith(MANIFEST_PREFIX) and key.endswith(MANIFEST_SUFFIX)


class LakeStorage(Protocol):
    """Where raw objects are written; keys are relative to the lake root."""

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def describe(self, key: str) -> str: ...


class LocalStorage:
    """A folder as the lake. Writes are atomic: a reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        # Dot-prefixed temp name: Spark, DuckDB and Glue crawlers all skip hidden files.
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def describe(self, key: str) -> str:
        return str(self.root / key)


class S3Storage:
    """An S3 bucket as the lake; a single PUT is atomic."""

    def __init__(self, bucket: str, s3_client: Any) -> None:
        self.bucket = bucket
        self.s3 = s3_client

    def put_bytes(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"
