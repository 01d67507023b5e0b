"""The AWS path end to end on a moto server: bootstrap, scrape to S3, S3 event, Lambda, Glue job, refined rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pytest

from b3_quotes.local_mode.trigger import s3_put_event
from etl import glue_job
from lambdas.start_glue_job import lambda_handler
from scraper import scraper_upload
from tests.conftest import REPO, SAMPLE_DIR
from tests.glue_harness import glue_argv, use_awsglue_standin

pytestmark = pytest.mark.integration

BUCKET = "b3-quotes-e2e-lake"
REGION = "us-east-1"
SCRAPE = ["--source", "csv", "--csv-dir", str(SAMPLE_DIR), "--tickers", "PETR4,VALE3",
          "--start", "2020-02-17", "--end", "2020-03-13"]  # two months, Carnival and Ash Wednesday in it


def bootstrap_on(endpoint: str, home: Path, aws_cli: Path) -> None:
    env = {"PATH": f"{aws_cli}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "HOME": str(home),
           "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "ENV_FILE": str(home / "no.env"),
           "BUCKET": BUCKET, "SKIP_TLS_BUCKET_POLICY": "true"}  # moto ignores the Deny's TLS condition
    done = subprocess.run(["bash", str(REPO / "scripts" / "bootstrap_aws.sh")], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


def refined_rows(filesystem: pafs.FileSystem, root: str, table: str, keys: list[str]) -> list[dict]:
    dataset = pads.dataset(f"{root}/refined/{table}", filesystem=filesystem, format="parquet",
                           partitioning="hive", exclude_invalid_files=True)
    rows = dataset.to_table()
    rows = rows.drop_columns([c for c in ("ingested_at",) if c in rows.column_names]).to_pylist()  # scrape time
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in keys))


def test_aws_path_end_to_end_on_moto_equals_a_local_run(spark, moto_endpoint, aws_cli, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    local_lake = tmp_path / "local-lake"
    assert scraper_upload.main(["--lake-dir", str(local_lake), *SCRAPE]) == 0

    endpoint = moto_endpoint
    bootstrap_on(endpoint, tmp_path, aws_cli)
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                        "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    s3, glue, lam = (boto3.client(n, region_name=REGION) for n in ("s3", "glue", "lambda"))

    # 1. The scraper writes raw and its manifest to the bucket.
    assert scraper_upload.main(["--bucket", BUCKET, *SCRAPE]) == 0

    # 2. The notification bootstrap configured matches the manifest: build the event S3 sends.
    (target,) = s3.get_bucket_notification_configuration(Bucket=BUCKET)["LambdaFunctionConfigurations"]
    rules = {r["Name"].lower(): r["Value"] for r in target["Filter"]["Key"]["FilterRules"]}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=rules["prefix"])["Contents"]]
    (manifest_key,) = [k for k in keys if k.endswith(rules["suffix"])]
    assert "s3:ObjectCreated:*" in target["Events"]
    event = s3_put_event(BUCKET, manifest_key)

    # 3. The handler, configured as bootstrap deployed it, starts one run on the moto Glue.
    function = lam.get_function(FunctionName=target["LambdaFunctionArn"].rsplit(":", 1)[-1])["Configuration"]
    for name, value in function["Environment"]["Variables"].items():
        monkeypatch.setenv(name, value)
    (started,) = lambda_handler(event, None)["job_runs"]
    job_name = function["Environment"]["Variables"]["GLUE_JOB_NAME"]
    job_run = glue.get_job_run(JobName=job_name, RunId=started["job_run_id"])["JobRun"]
    assert job_run["Arguments"]["--manifest_key"] == manifest_key  # (moto stores the defaults with it)

    # 4. The job's entry point with what Glue passes: DefaultArguments, then the run's Arguments.
    use_awsglue_standin(monkeypatch)
    defaults = glue.get_job(JobName=job_name)["Job"]["DefaultArguments"]
    glue_job.main(glue_argv(job_name, defaults, job_run["Arguments"]))
    crawler = glue.get_crawler(Name=defaults["--crawler_name"])["Crawler"]
    assert crawler["State"] == "RUNNING"  # the job started it
    # Athena projects the partitions of bootstrap's day/month/ticker tables: the run registered none.
    for table in ("quotes_daily", "quotes_monthly", "quotes"):
        parameters = glue.get_table(DatabaseName="default", Name=table)["Table"]["Parameters"]  # GLUE_DATABASE
        assert parameters["projection.enabled"] == "true"
        assert glue.get_partitions(DatabaseName="default", TableName=table)["Partitions"] == []

    # 5. The refined tables on S3 hold exactly the local run's rows.
    s3fs = pafs.S3FileSystem(region=REGION, endpoint_override=endpoint.removeprefix("http://"), scheme="http",
                             access_key="testing", secret_key="testing")
    local = pafs.LocalFileSystem()
    for table, keys in (("quotes_daily", ["ticker", "dt"]), ("quotes_monthly", ["ticker", "month"])):
        on_s3 = refined_rows(s3fs, BUCKET, table, keys)
        # February 17-28: 10 weekdays less Carnival (24-25) and Yahoo's null Ash Wednesday = 7; March 2-13: 10.
        assert len(on_s3) == (2 * (7 + 10) if table == "quotes_daily" else 2 * 2)
        assert on_s3 == refined_rows(local, str(local_lake), table, keys)
    processed = s3.list_objects_v2(Bucket=BUCKET, Prefix="refined/_processed_runs/")["Contents"]
    assert [o["Key"].rsplit("/", 1)[-1] for o in processed] == [manifest_key.rsplit("/", 1)[-1]]
