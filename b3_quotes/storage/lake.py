"""`Lake`: one lake root as a file system, with atomic writes, listings and batched deletes."""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from b3_quotes.storage.atomic import TEMP_PREFIX, replace_atomically

S3_DELETE_BATCH = 1000  # DeleteObjects' limit


class LakeDataMissing(RuntimeError):
    """Data the lake must hold for a run is missing or unreadable; the message names it and says what to do."""


@dataclass(frozen=True)
class Lake:
    """A lake root: `s3://bucket` or a local folder's absolute path (b3_quotes.contract.layout.lake_root).

    Keys are relative to the root (`raw/quotes/dt=2024-01-02/x.parquet`). A Lake is a few
    strings, so it pickles into Spark tasks; its file system is made in each process on
    first use. On S3, `region` is the bucket's (without one pyarrow asks the bucket anonymously,
    which a bucket policy or a VPC without internet refuses) and `endpoint` an override such
    as moto's (AWS_ENDPOINT_URL); credentials are boto3's, re-read on every use so that
    temporary ones are refreshed before they expire. `session` is an explicit boto3 session
    to take them from (as awswrangler's calls take one); it stays in this process (a Spark
    task's copy uses its own default session).
    """

    root: str
    region: str = ""
    endpoint: str = ""
    session: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def at(cls, root: str, region: str = "", session: Any = None) -> Lake:
        """The lake at `root`, its S3 region and endpoint taken from the environment as boto3 does."""
        if not root.startswith("s3://"):
            return cls(root.rstrip("/") or "/")
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
        return cls(root.rstrip("/"), region or _default_region(session), endpoint, session)

    @classmethod
    def local(cls, folder: str | os.PathLike[str]) -> Lake:
        """The lake in a local folder (made absolute, as b3_quotes.contract.layout.lake_root does)."""
        return cls(str(Path(folder).expanduser().resolve()))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "session": None}  # a boto3 session does not pickle

    # --- where ------------------------------------------------------------------------------
    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    @property
    def filesystem(self) -> pafs.FileSystem:
        return _s3_filesystem(self.region, self.endpoint, self.session) if self.is_s3 else pafs.LocalFileSystem()

    @property
    def bucket(self) -> str:
        return self.path().split("/", 1)[0] if self.is_s3 else ""

    def s3_key(self, key: str) -> str:
        """The object key of a lake key (the root may be a bucket's folder)."""
        return self.path(key).partition("/")[2]

    def s3_client(self) -> Any:
        """A boto3 S3 client for this lake's region and endpoint: the one place S3 clients are made.

        One per session, region and endpoint in a process (boto3's clients are thread-safe, and
        refresh temporary credentials themselves): making one costs milliseconds of CPU.
        """
        session = self.session or _boto3_session()
        with _LOCK:
            # By id, the session kept alongside so that its id is not reused while it is here.
            clients = _CLIENTS.setdefault(id(session), (session, {}))[1]
            client = clients.get((self.region, self.endpoint))
            if client is None:
                client = clients[(self.region, self.endpoint)] = session.client(
                    "s3", region_name=self.region or None, endpoint_url=self.endpoint or None)
        return client

    def path(self, key: str = "") -> str:
        """The file system's path of a key (`bucket/key` on S3, an absolute path locally)."""
        base = self.root.removeprefix("s3://")
        return f"{base}/{key.strip('/')}" if key.strip("/") else base

    def describe(self, key: str = "") -> str:
        """The location a person reads: `s3://bucket/key` or the local path."""
        return f"s3://{self.path(key)}" if self.is_s3 else self.path(key)

    def key_of(self, path: str) -> str:
        """The key of a file system path under this root."""
        return path.removeprefix(self.path()).lstrip("/")

    # --- reads and listings -------------------------------------------------------------------
    def read_bytes(self, key: str) -> bytes:
        with self.filesystem.open_input_stream(self.path(key)) as stream:
            return stream.read()

    def exists(self, key: str) -> bool:
        return self.filesystem.get_file_info(self.path(key)).type == pafs.FileType.File

    def list_files(self, folder: str, recursive: bool = False, hidden: bool = False) -> list[str]:
        """Keys of the files under `folder` (none when it does not exist), sorted.

        Hidden names (`.` or `_` first: temporary files, markers) are left out unless asked for.
        """
        infos = self.filesystem.get_file_info(pafs.FileSelector(self.path(folder), recursive=recursive,
                                                                allow_not_found=True))
        return sorted(self.key_of(i.path) for i in infos if i.type == pafs.FileType.File
                      and (hidden or not i.base_name.startswith((".", "_"))))

    def list_folders(self, folder: str, prefix: str = "") -> list[str]:
        """Names of the folders directly under `folder` that start with `prefix` (one listing)."""
        infos = self.filesystem.get_file_info(pafs.FileSelector(self.path(folder), allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory
                      and i.base_name.startswith(prefix))

    # --- writes -------------------------------------------------------------------------------
    def write_bytes(self, key: str, data: bytes) -> None:
        """A small file that appears whole or not at all: one PUT on S3, see write_file_atomically locally."""
        if self.is_s3:
            self.s3_client().put_object(Bucket=self.bucket, Key=self.s3_key(key), Body=data)
            return
        write_file_atomically(self, key, lambda fs, path: _write_stream(fs, path, data))

    def write_parquet(self, key: str, table: pa.Table, **options: Any) -> None:
        """A Parquet file (snappy) that appears whole or not at all.

        On S3 it is made in memory and sent as one PUT: pyarrow's S3 stream uploads even a one-row
        file in three requests (a multipart upload's create, part and complete), and S3 bills each,
        so a backfill of one small file per ticker-session paid three times for its requests
        (bench/README.md, bench_aws_cost.py)."""
        if self.is_s3:
            buffer = io.BytesIO()
            pq.write_table(table, buffer, compression="snappy", **options)
            self.write_bytes(key, buffer.getvalue())
            return
        write_file_atomically(self, key, lambda fs, path: pq.write_table(
            table, path, filesystem=fs, compression="snappy", **options))

    def delete(self, keys: Iterable[str]) -> None:
        """Delete files; on S3 1,000 keys a request (pyarrow's own S3 delete re-creates a folder marker)."""
        keys = list(keys)
        if not self.is_s3:
            for key in keys:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path(key))
            return
        s3, bucket = self.s3_client(), self.bucket
        for start in range(0, len(keys), S3_DELETE_BATCH):
            batch = [self.s3_key(k) for k in keys[start : start + S3_DELETE_BATCH]]
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            if answer.get("Errors"):
                raise OSError(f"could not delete files in s3://{bucket}: {answer['Errors'][:3]}")

    def remove_temp_files(self, folder: str) -> int:
        """Delete the temporary files killed writers left under `folder` (local lakes only; S3 has none).

        Safe only while holding the lake's lock: then no writer of this lake is mid-file.
        """
        if self.is_s3:
            return 0
        stale = [k for k in self.list_files(folder, recursive=True, hidden=True)
                 if k.rsplit("/", 1)[-1].startswith(TEMP_PREFIX)]
        self.delete(stale)
        return len(stale)


def write_file_atomically(lake: Lake, key: str, write: Any) -> None:
    """Run `write(filesystem, path)` so that the file at `key` appears whole or not at all.

    Locally through a hidden temporary file renamed over the target (b3_quotes.storage.atomic). On S3 an
    object appears when its upload completes: it is written in place, one PUT for a small file.
    """
    filesystem, path = lake.filesystem, lake.path(key)
    if lake.is_s3:
        write(filesystem, path)
        return
    replace_atomically(path, lambda temp: write(filesystem, temp))


def _write_stream(filesystem: pafs.FileSystem, path: str, data: bytes) -> None:
    if isinstance(filesystem, pafs.LocalFileSystem):
        with open(path, "wb") as handle:  # mode 0666 less the umask, as any new file
            handle.write(data)
        return
    with filesystem.open_output_stream(path) as stream:
        stream.write(data)


# --- S3 file systems: one per process and set of credentials ------------------------------------
# Per-file costs are paid once per process: one boto3 session (its credential chain resolved once),
# one S3 client per session, one pyarrow S3 file system per set of credentials. A new boto3
# Session and its credential lookup on every file cost more than the file (bench/bench_s3_per_file.py).

_LOCK = threading.RLock()
_S3: dict[tuple, pafs.S3FileSystem] = {}
_EXIT_HOOK: list[bool] = []
_SESSION: dict[tuple, Any] = {}  # the process's own boto3 session, for lakes given none (a Spark task's)
# What boto3's credential and region chain reads from the environment: a process that changes
# these (a test, a notebook switching profiles) gets a new session, as a new boto3.Session would.
_SESSION_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                      "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_REGION",
                      "AWS_DEFAULT_REGION")
_CLIENTS: dict[int, tuple[Any, dict[tuple[str, str], Any]]] = {}  # id(session) -> (session, {(region, endpoint): client})


def _boto3_session():
    """This process's boto3 session, made on first use (a Lake given none, as in every Spark task)."""
    environment = tuple(os.environ.get(name) for name in _SESSION_VARIABLES)
    with _LOCK:
        session = _SESSION.get(environment)
        if session is None:
            import boto3

            _SESSION.clear()  # one at a time: the environment changed
            session = _SESSION[environment] = boto3.Session()
        return session


def _default_region(session: Any = None) -> str:
    region = (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
              or (session or _boto3_session()).region_name)
    if not region:
        raise RuntimeError("no AWS region: set AWS_REGION (the Glue job takes it from --aws_region)")
    return region


def _s3_filesystem(region: str, endpoint: str, session: Any = None) -> pafs.S3FileSystem:
    """pyarrow's S3 client for the region, with boto3's current credentials.

    boto3 resolves the Glue job role's (and AWS_PROFILE, environment variables, SSO locally)
    once per session, and its refreshable credentials renew themselves when they near expiry
    (botocore's RefreshableCredentials, on get_frozen_credentials: a clock comparison
    otherwise). New credentials get a new file system (the old one is dropped), so a run
    longer than its first credentials' life keeps working. With none from boto3, pyarrow's own
    chain is used.
    """
    options: dict[str, Any] = {"region": region}
    credentials = (session or _boto3_session()).get_credentials()  # the session's, resolved once
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        options.update(access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token)
    if endpoint:
        parsed = urlsplit(endpoint)
        options.update(endpoint_override=parsed.netloc or parsed.path, scheme=parsed.scheme or "https")
    key = tuple(sorted((k, str(v)) for k, v in options.items()))
    with _LOCK:
        found = _S3.get(key)
        if found is None:
            stale = [k for k in _S3 if dict(k).get("region") == region
                     and dict(k).get("endpoint_override") == options.get("endpoint_override")]
            for old in stale:
                del _S3[old]
            found = _S3[key] = pafs.S3FileSystem(**options)
            if not _EXIT_HOOK:
                atexit.register(release_filesystems, finalize=True)
                _EXIT_HOOK.append(True)
        return found


def release_filesystems(finalize: bool = False) -> None:
    """Drop this process's S3 file systems, clients and session; with `finalize`, also shut pyarrow's S3 down.

    An S3 file system still alive when the interpreter exits can abort the process
    (apache/arrow#41087): the first S3 file system registers this at exit, with `finalize`.
    """
    import gc

    with _LOCK:
        had = bool(_S3)
        _S3.clear()
        _CLIENTS.clear()
        _SESSION.clear()  # a later run in this process resolves its credentials afresh
    gc.collect()
    if finalize and had:
        pafs.finalize_s3()
