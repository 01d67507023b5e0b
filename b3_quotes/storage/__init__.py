"""The lake's storage, once: a lake root (`s3://bucket` or a folder) as a pyarrow file system.

Every part that reads or writes lake files goes through `Lake`: the scraper (raw files and
manifests), the Glue job (in its driver and in its Spark tasks), the charts and packaging.
Writes are atomic (a reader sees the old file or the new one, never half of one); listings
and deletes are batched where S3 allows. Ships in the Glue job's zip: standard library and
pyarrow, boto3 only for credentials and batched deletes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TEMP_PREFIX", "TEMP_SUFFIX", "Lake", "LakeDataMissing", "release_filesystems", "write_file_atomically"]


def __getattr__(name: str) -> Any:
    """The names above, imported on first use: b3_quotes.storage.atomic and b3_quotes.storage.lock need no pyarrow
    (the Lambda's packaging imports b3_quotes.storage.atomic where pyarrow may be absent)."""
    if name in __all__:
        from b3_quotes.storage import lake

        return getattr(lake, name)
    raise AttributeError(f"module 'b3_quotes.storage' has no attribute {name!r}")
