"""The lake's storage, once: a lake root (`s3://bucket` or a folder) as a pyarrow file system.

Every part that reads or writes lake files goes through `Lake`: the scraper (raw files and
manifests), the Glue job (in its driver and in its Spark tasks), the charts and packaging.
Writes are atomic (a reader sees the old file or the new one, never half of one); listings
and deletes are batched where S3 allows. Ships in the Glue job's zip: standard library and
pyarrow, boto3 only for credentials and batched deletes.
"""

from storage.lake import TEMP_PREFIX, TEMP_SUFFIX, Lake, LakeDataMissing, release_filesystems, write_file_atomically

__all__ = ["TEMP_PREFIX", "TEMP_SUFFIX", "Lake", "LakeDataMissing", "release_filesystems", "write_file_atomically"]
