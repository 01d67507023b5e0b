"""storage.Lake: S3 credentials that last the run, a clean exit, keys and locations."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from b3_quotes.storage import Lake, release_filesystems
from b3_quotes.storage import lake as storage_lake
from tests.conftest import REPO


class RotatingCredentials:
    """What boto3 hands out for a role: temporary keys, replaced as they near expiry."""

    def __init__(self) -> None:
        self.current = ("AKIA1", "secret1", "token1")

    def get_frozen_credentials(self):
        key, secret, token = self.current
        return SimpleNamespace(access_key=key, secret_key=secret, token=token)


def s3_options(filesystem) -> dict:
    return filesystem.__reduce__()[1][0]


def test_each_use_takes_boto3s_current_credentials(monkeypatch):
    credentials = RotatingCredentials()
    monkeypatch.setattr(storage_lake, "_boto3_session", lambda: SimpleNamespace(get_credentials=lambda: credentials))
    release_filesystems()
    lake = Lake("s3://b3-lake", "sa-east-1", "http://127.0.0.1:9")
    first = lake.filesystem
    assert lake.filesystem is first  # same credentials: the same client
    assert (s3_options(first)["access_key"], s3_options(first)["session_token"]) == ("AKIA1", "token1")
    assert (s3_options(first)["region"], s3_options(first)["endpoint_override"]) == ("sa-east-1", "127.0.0.1:9")
    credentials.current = ("AKIA2", "secret2", "token2")  # boto3 refreshed them 15 min before expiry
    second = lake.filesystem
    assert second is not first
    assert (s3_options(second)["access_key"], s3_options(second)["session_token"]) == ("AKIA2", "token2")
    assert len(storage_lake._S3) == 1  # the expired client is dropped, not kept alive
    release_filesystems()
    assert storage_lake._S3 == {}


def test_without_boto3_credentials_pyarrow_resolves_its_own(monkeypatch):
    monkeypatch.setattr(storage_lake, "_boto3_session", lambda: SimpleNamespace(get_credentials=lambda: None))
    release_filesystems()
    options = s3_options(Lake("s3://b3-lake", "us-east-1").filesystem)
    assert not options["access_key"] and options["region"] == "us-east-1"  # no keys handed over
    release_filesystems()


def test_a_process_that_used_s3_shuts_pyarrows_s3_down_at_exit(tmp_path):
    script = (
        "import pyarrow.fs as fs\n"
        "real = fs.finalize_s3\n"
        "def finalize():\n"
        "    print('finalize_s3 called', flush=True)\n"
        "    real()\n"
        "fs.finalize_s3 = finalize\n"
        "from b3_quotes.storage import Lake\n"
        "lake = Lake('s3://b3-lake', 'us-east-1', 'http://127.0.0.1:9')\n"
        "print(type(lake.filesystem).__name__, flush=True)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_EC2_METADATA_DISABLED": "true", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["S3FileSystem", "finalize_s3 called"]


def test_keys_and_locations():
    local = Lake.at("/data/lake/")
    assert (local.path("raw/quotes/dt=2024-01-02/a.parquet"), local.describe("raw")) == (
        "/data/lake/raw/quotes/dt=2024-01-02/a.parquet", "/data/lake/raw")
    assert local.key_of("/data/lake/raw/x.json") == "raw/x.json"
    s3 = Lake("s3://b3-lake", "us-east-1")
    assert (s3.path("raw/x.json"), s3.describe("raw/x.json"), s3.key_of("b3-lake/raw/x.json")) == (
        "b3-lake/raw/x.json", "s3://b3-lake/raw/x.json", "raw/x.json")


def test_the_region_comes_from_the_environment_and_is_required(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "sa-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert Lake.at("s3://b3-lake") == Lake("s3://b3-lake", "sa-east-1", "http://127.0.0.1:5000")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(RuntimeError, match="no AWS region"):
        Lake.at("s3://b3-lake")


def test_raw_files_and_manifests_get_the_umask_mode(tmp_path):
    # Under umask 022 a new file is 0644 (the old writer made raw files and manifests 0600).
    import datetime as dt
    import stat

    import pandas as pd

    from b3_quotes.contract.tables import RAW_QUOTES
    from b3_quotes.storage import Lake
    from scraper.raw_writer import RunStamp, write_raw_run

    frame = pd.DataFrame({"ticker": ["PETR4"], "trade_date": [dt.date(2021, 6, 25)], "open": [29.0], "high": [29.5],
                          "low": [28.8], "close": [29.2], "adj_close": [29.2], "volume": [1e6]})
    old = os.umask(0o022)
    try:
        run = write_raw_run(Lake.local(tmp_path), {RAW_QUOTES: frame}, RunStamp("csv", {}, dt.datetime(2021, 6, 26, tzinfo=dt.UTC), "r1"))
    finally:
        os.umask(old)
    modes = {key: stat.S_IMODE((tmp_path / key).stat().st_mode) for key in [*run.keys, run.manifest_key]}
    assert modes == {"raw/quotes/dt=2021-06-25/" + run.keys[0].rsplit("/", 1)[1]: 0o644,
                     "raw/_manifests/r1.json": 0o644}


def test_a_lake_with_a_session_pickles_without_it():
    import pickle

    lake = Lake("s3://bucket", "sa-east-1", "", session=object())
    copy = pickle.loads(pickle.dumps(lake))
    assert copy == lake and copy.session is None and lake.session is not None


def test_s3_keys_under_a_bucket_folder():
    lake = Lake("s3://bucket/lakes/b3", "us-east-1")
    assert (lake.bucket, lake.s3_key("raw/x.parquet")) == ("bucket", "lakes/b3/raw/x.parquet")


def test_a_process_makes_one_boto3_session_and_one_s3_client_for_all_its_files(s3_endpoint, monkeypatch):
    """A Spark task's Lake has no session: files written one after another share the process's."""
    import boto3
    import pyarrow as pa

    made = []

    class CountedSession(boto3.Session):
        def __init__(self, *args, **kwargs) -> None:
            made.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(boto3, "Session", CountedSession)
    release_filesystems()
    boto3.client("s3").create_bucket(Bucket="b3-lake")
    made.clear()
    lake = Lake.at("s3://b3-lake")
    for n in range(5):
        lake.write_parquet(f"refined/t/dt=2024-01-0{n + 1}/part-0.parquet", pa.table({"x": [n]}))
        lake.write_bytes(f"refined/_processed_runs/{n}.json", b"")
    assert lake.s3_client() is lake.s3_client()
    assert len(made) == 1
    assert lake.list_files("refined/_processed_runs", hidden=True) == [f"refined/_processed_runs/{n}.json"
                                                                        for n in range(5)]
    # Another configuration (here: other keys in the environment) is another session, as in boto3.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "other")
    assert lake.exists("refined/_processed_runs/0.json")
    assert len(made) == 2
    release_filesystems()


def test_the_sessions_refreshable_credentials_renew_only_when_they_near_expiry(monkeypatch):
    """botocore's RefreshableCredentials, as a Glue job role's: refreshed 15 minutes before they
    expire, by boto3's own rule, and not on every file."""
    import datetime as dt

    from botocore.credentials import RefreshableCredentials

    refreshed = []

    def refresh() -> dict:
        refreshed.append(1)
        return {"access_key": f"AKIA{len(refreshed) + 1}", "secret_key": "s", "token": f"token{len(refreshed) + 1}",
                "expiry_time": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()}

    credentials = RefreshableCredentials.create_from_metadata(
        {"access_key": "AKIA1", "secret_key": "s", "token": "token1",
         "expiry_time": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()}, refresh, "test")
    monkeypatch.setattr(storage_lake, "_boto3_session", lambda: SimpleNamespace(get_credentials=lambda: credentials))
    release_filesystems()
    lake = Lake("s3://b3-lake", "sa-east-1", "http://127.0.0.1:9")
    first = lake.filesystem
    assert all(lake.filesystem is first for _ in range(100)) and refreshed == []
    assert s3_options(first)["access_key"] == "AKIA1"
    credentials._expiry_time = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)  # within boto3's 15 minutes
    second = lake.filesystem
    assert refreshed == [1] and s3_options(second)["access_key"] == "AKIA2"
    assert lake.filesystem is second and refreshed == [1]
    release_filesystems()


def test_a_parquet_file_on_s3_is_one_put_request(s3_endpoint, monkeypatch):
    """S3 bills every request: a small Parquet file is one PutObject, not a three-request multipart upload."""
    import io

    import boto3
    import pyarrow as pa
    import pyarrow.parquet as pq

    release_filesystems()
    boto3.client("s3").create_bucket(Bucket="b3-lake")
    lake = Lake.at("s3://b3-lake")
    calls: list[str] = []
    lake.s3_client().meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))

    def no_pyarrow_s3(*args, **kwargs):
        raise AssertionError("the write went through pyarrow's S3 file system")

    monkeypatch.setattr(storage_lake, "_s3_filesystem", no_pyarrow_s3)
    lake.write_parquet("refined/quotes_daily/dt=2024-01-02/ticker=PETR4/part-0.parquet",
                       pa.table({"close_price": [37.25], "ticker": ["PETR4"]}))
    assert calls == ["PutObject"]
    body = boto3.client("s3").get_object(Bucket="b3-lake",
                                         Key="refined/quotes_daily/dt=2024-01-02/ticker=PETR4/part-0.parquet")["Body"]
    assert pq.read_table(io.BytesIO(body.read())).to_pydict() == {"close_price": [37.25], "ticker": ["PETR4"]}
    release_filesystems()
