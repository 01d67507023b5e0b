"""The Lambda handler against moto's Glue. Imports only what the Lambda runtime has (boto3), so
that it also runs in the Lambda-version venv of .ci/run."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import botocore.loaders
import botocore.session
import pytest
from botocore.exceptions import ParamValidationError
from moto import mock_aws

from lambdas.start_glue_job import lambda_handler, manifest_keys, start_job_runs
from tests.conftest import EVENTS

JOB = "b3-quotes-refine"


@pytest.fixture
def glue(aws_credentials):
    with mock_aws():
        client = boto3.client("glue", region_name="us-east-1")
        client.create_job(Name=JOB, Role="arn:aws:iam::123456789012:role/glue",
                          Command={"Name": "glueetl", "ScriptLocation": "s3://b/scripts/glue_job.py"},
                          GlueVersion="5.0", ExecutionProperty={"MaxConcurrentRuns": 1})
        yield client


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_manifest_keys_decodes_and_ignores_data_files():
    event = load_event("s3_put.json")
    assert manifest_keys(event) == [("b3-quotes-lake", "raw/_manifests/20240103T210500Z-a1b2c3.json")]
    encoded = {"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "raw/_manifests/run%3D1+a.json"}}}]}
    assert manifest_keys(encoded) == [("b", "raw/_manifests/run=1 a.json")]


def test_handler_starts_one_run_with_the_manifest(glue, monkeypatch):
    monkeypatch.setenv("GLUE_JOB_NAME", JOB)
    result = lambda_handler(load_event("s3_put.json"), None)
    (run,) = result["job_runs"]
    stored = glue.get_job_run(JobName=JOB, RunId=run["job_run_id"])["JobRun"]
    assert stored["Arguments"] == {"--manifest_key": "raw/_manifests/20240103T210500Z-a1b2c3.json"}
    assert len(glue.get_job_runs(JobName=JOB)["JobRuns"]) == 1


def test_handler_same_manifest_twice_in_one_event_starts_one_run(glue):
    event = load_event("s3_put.json")
    event["Records"].append(event["Records"][0])
    assert len(start_job_runs(glue, JOB, event)) == 1


def test_handler_without_a_manifest_starts_nothing(glue):
    event = load_event("s3_put.json")
    event["Records"] = event["Records"][1:]
    assert start_job_runs(glue, JOB, event) == []
    assert glue.get_job_runs(JobName=JOB)["JobRuns"] == []


class BusyGlue:
    """A Glue client whose job is busy `busy_times` times, then accepts."""

    class exceptions:
        class ConcurrentRunsExceededException(Exception):
            pass

    def __init__(self, busy_times):
        self.busy_times = busy_times
        self.calls = 0

    def start_job_run(self, JobName, Arguments):  # noqa: N803
        self.calls += 1
        if self.calls <= self.busy_times:
            raise self.exceptions.ConcurrentRunsExceededException("busy")
        return {"JobRunId": "jr_1"}


def test_handler_retries_a_busy_job_then_succeeds():
    waits = []
    runs = start_job_runs(BusyGlue(2), JOB, load_event("s3_put.json"), sleep=waits.append, retry_delays_s=(1, 2, 3))
    assert [r["job_run_id"] for r in runs] == ["jr_1"] and waits == [1, 2]


def test_handler_raises_when_still_busy_so_lambda_retries_the_event():
    glue = BusyGlue(10)
    with pytest.raises(BusyGlue.exceptions.ConcurrentRunsExceededException):
        start_job_runs(glue, JOB, load_event("s3_put.json"), sleep=lambda s: None, retry_delays_s=(1, 2))
    assert glue.calls == 3


QUEUING_PARAMETER = "JobRunQueuingEnabled"  # StartJobRun's name for it in the Glue API reference


def glue_client_with_model(tmp_path, monkeypatch, knows_queuing: bool):
    """A real boto3 Glue client (on moto) whose API model does or does not have StartJobRun's
    JobRunQueuingEnabled: the installed model, edited, so the test means the same under any boto3."""
    model = botocore.loaders.Loader().load_service_model("glue", "service-2")
    members = model["shapes"]["StartJobRunRequest"]["members"]
    if knows_queuing:
        members[QUEUING_PARAMETER] = {"shape": "NullableBoolean"}
    else:
        members.pop(QUEUING_PARAMETER, None)
    folder = tmp_path / "models" / "glue" / model["metadata"]["apiVersion"]
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path / "models"))  # searched before botocore's own data
    client = boto3.Session(botocore_session=botocore.session.get_session()).client("glue", region_name="us-east-1")
    sent = []
    client.meta.events.register("before-call.glue.StartJobRun", lambda params, **kw: sent.append(json.loads(params["body"])))
    return client, sent


@pytest.mark.parametrize("knows_queuing", [True, False], ids=["sdk-with-queuing", "sdk-before-queuing"])
def test_handler_asks_for_a_queued_run_when_its_sdk_can(glue, tmp_path, monkeypatch, knows_queuing):
    client, sent = glue_client_with_model(tmp_path, monkeypatch, knows_queuing)
    if not knows_queuing:  # this SDK would refuse the parameter outright: the handler must not send it
        with pytest.raises(ParamValidationError, match=QUEUING_PARAMETER):
            client.start_job_run(JobName=JOB, **{QUEUING_PARAMETER: True})
    (run,) = start_job_runs(client, JOB, load_event("s3_put.json"))
    (body,) = sent
    assert body == {"JobName": JOB, "Arguments": {"--manifest_key": "raw/_manifests/20240103T210500Z-a1b2c3.json"},
                    **({QUEUING_PARAMETER: True} if knows_queuing else {})}
    assert [r["Id"] for r in glue.get_job_runs(JobName=JOB)["JobRuns"]] == [run["job_run_id"]]


def test_a_runs_resources_follow_its_size_within_the_deployments_limits():
    from lambdas.start_glue_job import run_resources

    # Hand-worked: files = days x tickers; an executor writes 30,000 files a minute on paper, added
    # until the writes take 10 minutes; timeout 10 min + twice the writes, at least 30.
    daily = run_resources(1, 87, max_workers=10, max_timeout_min=120)  # 87 files
    assert daily == {"WorkerType": "G.1X", "NumberOfWorkers": 2, "Timeout": 30}
    # IBOV over 10 years: 2,480 x 87 = 215,760 files: 1 executor, 10 + 2 x 8 = 26 -> 30 minutes.
    assert run_resources(2480, 87, 10, 120) == {"WorkerType": "G.1X", "NumberOfWorkers": 2, "Timeout": 30}
    # The whole market over 10 years: 2,480 x 745 = 1,847,600 files: 7 executors + the driver;
    # 1,847,600 / 210,000 a minute -> 9 minutes, 10 + 18 = 28 -> 30.
    assert run_resources(2480, 745, 10, 120) == {"WorkerType": "G.1X", "NumberOfWorkers": 8, "Timeout": 30}
    # Fewer workers allowed: 3 executors, 1,847,600 / 90,000 -> 21 minutes, 10 + 42 = 52.
    assert run_resources(2480, 745, 4, 120) == {"WorkerType": "G.1X", "NumberOfWorkers": 4, "Timeout": 52}
    # And a shorter timeout allowed: the limit wins (the run then needs the next one to finish).
    assert run_resources(2480, 745, 2, 45) == {"WorkerType": "G.1X", "NumberOfWorkers": 2, "Timeout": 45}


def test_handler_sizes_each_run_from_its_manifest_and_starts_an_unreadable_ones_with_the_jobs_own(glue, monkeypatch):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="b3-quotes-lake")
    days = [(dt.date(2023, 1, 1) + dt.timedelta(days=n)).isoformat() for n in range(300)]
    backfill = {"run_id": "big", "partitions": days, "tickers": [f"T{n}" for n in range(3000)]}  # 900,000 files
    s3.put_object(Bucket="b3-quotes-lake", Key="raw/_manifests/big.json", Body=json.dumps(backfill).encode())
    monkeypatch.setenv("GLUE_JOB_NAME", JOB)
    monkeypatch.setenv("GLUE_MAX_WORKERS", "3")
    monkeypatch.setenv("GLUE_MAX_TIMEOUT_MIN", "60")
    event = {"Records": [{"s3": {"bucket": {"name": "b3-quotes-lake"}, "object": {"key": key}}}
                         for key in ("raw/_manifests/big.json", "raw/_manifests/gone.json")]}
    first, second = lambda_handler(event, None)["job_runs"]
    stored = glue.get_job_run(JobName=JOB, RunId=first["job_run_id"])["JobRun"]
    # 900,000 files: 3 executors by the 10-minute target, but GLUE_MAX_WORKERS=3 (2 executors):
    # 900,000 / 60,000 a minute = 15 minutes, 10 + 30 = 40 (under GLUE_MAX_TIMEOUT_MIN=60).
    assert (stored["WorkerType"], stored["NumberOfWorkers"], stored["Timeout"]) == ("G.1X", 3, 40)
    assert (first["NumberOfWorkers"], first["Timeout"]) == (3, 40)
    assert "NumberOfWorkers" not in second  # no manifest to read: the job's own 2 x G.1X, 30 minutes
