"""b3_quotes.deploy.aws_check's orchestration on moto, with the Glue run and crawler states driven by the test.

moto reports a job run SUCCEEDED at once and its crawlers never crawl, so the Glue client is
wrapped to play the states a real account goes through. The scripts (bootstrap, scrape, reset)
are replaced by a runner that applies their effect on moto: their own tests run them for real.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import boto3
import pytest
import requests
from moto import mock_aws

from b3_quotes.deploy.aws_check import REPO, AwsCheck, Deployment, compare_rows, format_results, main

NOW = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
DEPLOYMENT = Deployment("11241500abc123", "us-east-1")
ENV = DEPLOYMENT.environment()


class DrivenGlue:
    """moto's Glue, with job-run and crawler states scripted per poll."""

    def __init__(self, glue, run_states, crawl=None, run_error="ValueError: no manifest", bare_run_states=("SUCCEEDED",)):
        self.glue = glue
        self.run_states = list(run_states)
        self.crawl = crawl  # (after how many polls, status) or None: never crawls
        self.run_error = run_error
        self.crawler_polls = 0
        self.bare_run_states = list(bare_run_states)  # the run aws-check starts itself, per poll
        self.bare_runs: list[dict] = []

    def get_job(self, JobName):  # noqa: N803
        return self.glue.get_job(JobName=JobName)

    def start_job_run(self, **kwargs):
        started = self.glue.start_job_run(**kwargs)
        self.bare_runs.append(kwargs)
        return started

    def get_job_run(self, JobName, RunId):  # noqa: N803
        run = self.glue.get_job_run(JobName=JobName, RunId=RunId)["JobRun"]
        state = self.bare_run_states.pop(0) if len(self.bare_run_states) > 1 else self.bare_run_states[0]
        run.update(JobRunState=state, ErrorMessage="KeyError: --manifest_key")
        return {"JobRun": run}

    def get_job_runs(self, JobName):  # noqa: N803
        runs = self.glue.get_job_runs(JobName=JobName)["JobRuns"]
        state = self.run_states.pop(0) if len(self.run_states) > 1 else self.run_states[0]
        for run in runs:
            assert run["JobRunState"] == "SUCCEEDED"  # what moto says at once
            run.update(JobRunState=state, StartedOn=NOW + dt.timedelta(seconds=30))
            if state == "FAILED":
                run["ErrorMessage"] = self.run_error
        return {"JobRuns": runs}

    def get_crawler(self, Name):  # noqa: N803
        crawler = self.glue.get_crawler(Name=Name)["Crawler"]
        self.crawler_polls += 1
        if self.crawl and self.crawler_polls > self.crawl[0]:
            crawler["LastCrawl"] = {"Status": self.crawl[1], "StartTime": NOW + dt.timedelta(minutes=3),
                                    "ErrorMessage": "Insufficient Lake Formation permission(s)",
                                    "LogGroup": "/aws-glue/crawlers", "LogStream": Name}
        else:
            crawler["State"] = "RUNNING" if self.crawl else "READY"
        return {"Crawler": crawler}


class ScriptRunner:
    """bootstrap / scrape / reset, applied to moto as far as the orchestration needs them."""

    def __init__(self, glue, athena, s3, logs, scrape_starts_run=True, bootstrap_exit=0, generated_script=True,
                 reset_keeps_logs=False, local_exit=0, continuous_logs=True):
        self.glue, self.athena, self.s3, self.logs = glue, athena, s3, logs
        self.scrape_starts_run = scrape_starts_run
        self.bootstrap_exit = bootstrap_exit
        self.generated_script = generated_script  # what Glue stores at ScriptLocation
        self.reset_keeps_logs = reset_keeps_logs
        self.local_exit = local_exit
        self.continuous_logs = continuous_logs  # whether Glue honours --continuous-log-logGroup
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, args, env):
        name = Path(args[1]).name
        self.calls.append((name, dict(env)))
        if name == "bootstrap_aws.sh":
            if self.bootstrap_exit:
                return subprocess.CompletedProcess(args, self.bootstrap_exit, "error: bucket name taken\n")
            self.glue.create_job(Name=env["GLUE_JOB_NAME"], Role="arn:aws:iam::123456789012:role/glue",
                                 Command={"Name": "glueetl", "ScriptLocation": f"s3://{env['BUCKET']}/scripts/glue_job.py"},
                                 CodeGenConfigurationNodes=VISUAL_NODES)
            self.s3.create_bucket(Bucket=env["BUCKET"])
            script = GENERATED if self.generated_script else (REPO / "etl" / "glue_job.py").read_bytes()
            self.s3.put_object(Bucket=env["BUCKET"], Key="scripts/glue_job.py", Body=script)
            for group in ("/aws-glue/jobs/output", "/aws-glue/jobs/error", f"/aws/lambda/{env['LAMBDA_NAME']}",
                          f"/aws-glue/jobs/{env['GLUE_JOB_NAME']}"):
                self.logs.create_log_group(logGroupName=group)
            self.logs.put_retention_policy(logGroupName=f"/aws-glue/jobs/{env['GLUE_JOB_NAME']}", retentionInDays=30)
            self.glue.create_crawler(Name=env["CRAWLER_NAME"], Role="arn:aws:iam::123456789012:role/glue",
                                     DatabaseName=env["GLUE_DATABASE"], Targets={"CatalogTargets": []})
            self.athena.create_work_group(Name=env["ATHENA_WORKGROUP"], Configuration={
                "ResultConfiguration": {"OutputLocation": f"s3://{env['BUCKET']}/athena-results/"}})
        elif name == "scraper_upload.py" and "--lake-dir" in args:  # the local run
            if self.local_exit:
                return subprocess.CompletedProcess(args, self.local_exit, "JAVA_GATEWAY_EXITED: Java not found\n")
        elif name == "scraper_upload.py" and self.scrape_starts_run:  # the Lambda's StartJobRun, Glue's logs
            run_id = self.glue.start_job_run(JobName=env["GLUE_JOB_NAME"],
                                             Arguments={"--manifest_key": "raw/_manifests/r.json"})["JobRunId"]
            for group in ("/aws-glue/jobs/output", "/aws-glue/jobs/error"):
                self.logs.create_log_stream(logGroupName=group, logStreamName=run_id)
            self.logs.create_log_stream(logGroupName="/aws-glue/jobs/output", logStreamName="jr_another_jobs_run")
            if self.continuous_logs:
                self.logs.create_log_stream(logGroupName=f"/aws-glue/jobs/{env['GLUE_JOB_NAME']}",
                                            logStreamName=f"{run_id}-driver")
        elif name == "reset_aws.sh" and not self.reset_keeps_logs and self.glue.get_jobs()["Jobs"]:  # reset's logs part
            runs = {r["Id"] for r in self.glue.get_job_runs(JobName=env["GLUE_JOB_NAME"])["JobRuns"]}
            for group in ("/aws-glue/jobs/output", "/aws-glue/jobs/error"):
                for stream in self.logs.describe_log_streams(logGroupName=group)["logStreams"]:
                    if stream["logStreamName"] in runs:
                        self.logs.delete_log_stream(logGroupName=group, logStreamName=stream["logStreamName"])
            self.logs.delete_log_group(logGroupName=f"/aws/lambda/{env['LAMBDA_NAME']}")
            self.logs.delete_log_group(logGroupName=f"/aws-glue/jobs/{env['GLUE_JOB_NAME']}")
        return subprocess.CompletedProcess(args, 0, f"{name} done\n")


VISUAL_NODES = {"raw_quotes": {"S3ParquetSource": {"Name": "raw", "Paths": ["s3://lake/scripts/visual-source/raw_quotes.parquet"]}}}
GENERATED = b"import sys\nfrom awsglue.transforms import *\n# Script generated for node Refine\n"
PROJECTED = (["sessions", "last"], [("2", "2020-06-09")])


def athena_answers(*answers):
    """Queue Athena results on moto: each is (columns, rows) as Athena returns them (text)."""
    results = []
    for columns, rows in answers:
        header = {"Data": [{"VarCharValue": c} for c in columns]}
        body = [{"Data": [{"VarCharValue": v} if v is not None else {} for v in row]} for row in rows]
        results.append({"rows": [header, *body], "column_info": [{"Name": c, "Type": "varchar"} for c in columns]})
    requests.post("http://motoapi.amazonaws.com/moto-api/static/athena/query-results", json={
        "account_id": "123456789012", "region": "us-east-1", "results": results}, timeout=5)


@pytest.fixture
def sql_dir(tmp_path):
    folder = tmp_path / "sql"
    folder.mkdir()
    (folder / "a_monthly.sql").write_text("SELECT ticker, month, monthly_return FROM quotes_monthly")
    (folder / "b_runs.sql").write_text("SELECT run_id, count(*) AS n FROM rejected_quotes GROUP BY run_id")
    return folder


LOCAL = {
    "SELECT ticker, month, monthly_return FROM quotes_monthly":
        (["ticker", "month", "monthly_return"], [("PETR4", "2020-05", 0.0123456789), ("VALE3", "2020-05", None)]),
    "SELECT run_id, count(*) AS n FROM rejected_quotes GROUP BY run_id": (["run_id", "n"], [("local-run", 3)]),
}


def make_check(aws_credentials_env, run_states, crawl, sql_dir, bare_run_states=("SUCCEEDED",), local=True,
               **runner_kwargs):
    glue, athena, s3, logs = (boto3.client(name, region_name="us-east-1") for name in ("glue", "athena", "s3", "logs"))
    runner = ScriptRunner(glue, athena, s3, logs, **runner_kwargs)
    sleeps: list[float] = []
    ticks = iter(range(0, 100_000, 15))
    driven = DrivenGlue(glue, run_states, crawl, bare_run_states=bare_run_states)
    check = AwsCheck({"glue": driven, "athena": athena, "s3": s3, "logs": logs}, DEPLOYMENT, run=runner,
                     local_query=(lambda sql: LOCAL[sql]) if local else None, sql_dir=sql_dir, sleep=sleeps.append,
                     clock=lambda: float(next(ticks)), now=lambda: NOW)
    return check, runner, sleeps


def test_every_step_passes_and_the_deployment_is_reset(aws_credentials, sql_dir):
    with mock_aws():
        check, runner, sleeps = make_check(aws_credentials, ["RUNNING", "RUNNING", "SUCCEEDED"], (2, "SUCCEEDED"), sql_dir,
                                           bare_run_states=["RUNNING", "SUCCEEDED"])
        athena_answers(PROJECTED,
                       (["ticker", "month", "monthly_return"], [("VALE3", "2020-05", None), ("PETR4", "2020-05", "0.0123456789")]),
                       (["run_id", "n"], [("aws-run", "3")]))
        assert check.run_all() is True, format_results(check.results)
        # What a real account would still hold of the check: only another job's stream.
        logs = boto3.client("logs", region_name="us-east-1")
        left = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName="/aws-glue/jobs/output")["logStreams"]]
        assert left == ["jr_another_jobs_run"]
        athena = boto3.client("athena", region_name="us-east-1")
        queries = [athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]["Query"]
                   for q in athena.list_query_executions()["QueryExecutionIds"]]
    assert [(r.step, r.passed) for r in check.results] == [
        ("bootstrap", True), ("scrape sample to s3://b3-check-11241500abc123-lake", True),
        ("Lambda -> Glue run, final state", True), ("job's logs in its own group, with a retention", True),
        ("rows in Athena before the crawl", True), ("crawler, last crawl", True), ("ScriptLocation holds Glue Studio's script", True), ("run with no arguments", True),
        ("local run of the sample (DuckDB)", True), ("Athena = local: a_monthly.sql", True),
        ("Athena = local: b_runs.sql", True), ("reset", True), ("no logs left behind", True)]
    by_step = {r.step: r.detail for r in check.results}
    assert re.fullmatch(r"jr_\w+ SUCCEEDED in \d+ s", by_step["Lambda -> Glue run, final state"])
    assert by_step["rows in Athena before the crawl"] == "2 sessions of PETR4 in quotes_daily, the last dt=2020-06-09"
    assert by_step["crawler, last crawl"] == "crawl of 15:03:00 SUCCEEDED"
    assert by_step["job's logs in its own group, with a retention"] == (
        "1 stream(s) of the run in /aws-glue/jobs/b3-check-11241500abc123-refine, kept 30 days")
    assert by_step["ScriptLocation holds Glue Studio's script"] == (
        f"s3://b3-check-11241500abc123-lake/scripts/glue_job.py is Glue Studio's script ({len(GENERATED)} bytes), graph of 1 nodes")
    assert by_step["no logs left behind"] == ("no log stream of 2 run(s), no /aws/lambda/b3-check-11241500abc123-trigger "
                                              "nor /aws-glue/jobs/b3-check-11241500abc123-refine")
    # The bare run: the job's name and nothing else; the partitions asked for before the crawler ran.
    assert check.clients["glue"].bare_runs == [{"JobName": "b3-check-11241500abc123-refine"}]
    assert "SELECT count(*) AS sessions, max(dt) AS last FROM quotes_daily WHERE ticker = 'PETR4'" in queries
    assert [name for name, _ in runner.calls] == ["bootstrap_aws.sh", "scraper_upload.py", "reset_aws.sh"]
    # Everything under the check's own names, the scrape with BUCKET set, the reset confirmed.
    assert runner.calls[1][1]["BUCKET"] == "b3-check-11241500abc123-lake"
    assert runner.calls[0][1]["GLUE_JOB_NAME"] == "b3-check-11241500abc123-refine"
    assert runner.calls[0][1]["GLUE_DATABASE"] == "b3_check_11241500abc123"
    assert runner.calls[2][1]["CONFIRM_AWS_RESET"] == "YES"
    assert sleeps[:2] == [15.0, 15.0]  # polled while the run was RUNNING
    table = format_results(check.results)
    assert "Lambda -> Glue run, final state" in table and "FAIL" not in table


def test_failed_run_prints_its_error_and_logs_then_resets(aws_credentials, sql_dir):
    with mock_aws():
        check, runner, _ = make_check(aws_credentials, ["RUNNING", "FAILED"], None, sql_dir)
        assert check.run_all() is False
    failed = next(r for r in check.results if not r.passed)
    assert failed.step == "Lambda -> Glue run, final state"
    assert "FAILED: ValueError: no manifest" in failed.detail
    assert "CloudWatch log groups /aws-glue/jobs/error and /aws-glue/jobs/output, stream jr_" in failed.detail
    assert [r.step for r in check.results][-2:] == ["reset", "no logs left behind"]
    assert runner.calls[-1][0] == "reset_aws.sh"
    assert not any(r.step.startswith("crawler") for r in check.results)


def test_no_run_and_no_crawl_hit_their_deadlines(aws_credentials, sql_dir):
    with mock_aws():
        check, _, _ = make_check(aws_credentials, ["SUCCEEDED"], None, sql_dir, scrape_starts_run=False)
        assert check.run_all() is False
    assert "no Glue run of b3-check-11241500abc123-refine started within 300 s" in check.results[2].detail

    with mock_aws():
        check, _, _ = make_check(aws_credentials, ["SUCCEEDED"], (10**9, "SUCCEEDED"), sql_dir)
        assert check.run_all() is False
    by_step = {r.step: r for r in check.results}
    assert "did not finish a crawl within 900 s" in by_step["crawler, last crawl"].detail


def test_failed_crawl_and_different_rows_fail_their_steps(aws_credentials, sql_dir):
    with mock_aws():
        check, _, _ = make_check(aws_credentials, ["SUCCEEDED"], (1, "FAILED"), sql_dir)
        assert check.run_all() is False
    by_step = {r.step: r for r in check.results}
    assert "crawler b3-check-11241500abc123-crawler FAILED: Insufficient Lake Formation permission(s)" in by_step[
        "crawler, last crawl"].detail

    with mock_aws():
        check, _, _ = make_check(aws_credentials, ["SUCCEEDED"], (0, "SUCCEEDED"), sql_dir)
        athena_answers(PROJECTED,
                       (["ticker", "month", "monthly_return"], [("PETR4", "2020-05", "0.0124"), ("VALE3", "2020-05", None)]),
                       (["run_id", "n"], [("aws-run", "3")]))
        assert check.run_all() is False
    by_step = {r.step: r for r in check.results}
    assert not by_step["Athena = local: a_monthly.sql"].passed
    assert "first differing row" in by_step["Athena = local: a_monthly.sql"].detail
    assert by_step["Athena = local: b_runs.sql"].passed and by_step["reset"].passed


def test_a_failed_bootstrap_still_resets(aws_credentials, sql_dir):
    with mock_aws():
        check, runner, _ = make_check(aws_credentials, ["SUCCEEDED"], None, sql_dir, bootstrap_exit=2)
        assert check.run_all() is False
    assert [(r.step, r.passed) for r in check.results] == [("bootstrap", False), ("reset", True),
                                                           ("no logs left behind", True)]
    assert check.results[0].detail == "exit 2: error: bucket name taken"


def test_compare_rows_numbers_text_and_row_order():
    assert compare_rows(["a", "b"], [("1.0", "x"), ("2", None)], ["a", "b"], [(2, None), (1.0, "x")]) is None
    assert compare_rows(["a"], [("1",)], ["a"], [(1.001,)]) == "first differing row: Athena (1.0,), local (1.001,)"
    assert compare_rows(["a"], [("1",)], ["a"], []) == "1 rows on Athena, 0 locally"
    assert compare_rows(["a"], [], ["b"], []) == "columns differ: Athena ['a'], local ['b']"
    assert compare_rows(["d"], [("2020-06-09",)], ["d"], [(dt.date(2020, 6, 9),)]) is None


def test_refuses_without_opt_in_or_credentials(capsys):
    assert main([], environ={}) == 2
    assert capsys.readouterr().err.strip() == (
        "error: aws-check creates and deletes real AWS resources (a few cents): set B3_AWS_CHECK=1 to run it")

    class NoCredentials:
        def client(self, name):
            from botocore.exceptions import NoCredentialsError

            class Sts:
                def get_caller_identity(self):
                    raise NoCredentialsError()
            return Sts()

    assert main([], environ={"B3_AWS_CHECK": "1"}, session_factory=lambda region: NoCredentials()) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no valid AWS credentials (Unable to locate credentials)") and "\n" not in err


def test_what_only_a_real_account_shows_fails_its_own_line(aws_credentials, sql_dir):
    # Glue kept the uploaded script (no generated one), the bare run fails, Athena sees no partition
    # yet, the local run has no Java, and reset leaves the runs' log streams: each is its own FAIL.
    with mock_aws():
        check, _, _ = make_check(aws_credentials, ["SUCCEEDED"], (0, "SUCCEEDED"), sql_dir,
                                 bare_run_states=["RUNNING", "FAILED"], local=False, generated_script=False,
                                 reset_keeps_logs=True, local_exit=1, continuous_logs=False)
        athena_answers((["sessions", "last"], [("0", None)]))
        assert check.run_all() is False
    by_step = {r.step: r for r in check.results}
    failed = {r.step for r in check.results if not r.passed}
    assert failed == {"job's logs in its own group, with a retention", "rows in Athena before the crawl",
                      "ScriptLocation holds Glue Studio's script",
                      "run with no arguments", "local run of the sample (DuckDB)", "no logs left behind"}
    assert by_step["rows in Athena before the crawl"].detail.startswith(
        "no row of PETR4 in quotes_daily through partition projection")
    assert by_step["job's logs in its own group, with a retention"].detail.startswith(
        "no log stream of run(s) jr_") and "Glue wrote the job's continuous logs elsewhere" in by_step[
        "job's logs in its own group, with a retention"].detail
    assert by_step["ScriptLocation holds Glue Studio's script"].detail == (
        "s3://b3-check-11241500abc123-lake/scripts/glue_job.py is etl/glue_job.py as uploaded: "
        "Glue did not store a generated script")
    assert by_step["run with no arguments"].detail.endswith("FAILED: KeyError: --manifest_key")
    # A local failure is a line of the table, not a traceback; the comparisons it feeds do not run.
    assert by_step["local run of the sample (DuckDB)"].detail == "exit 1: JAVA_GATEWAY_EXITED: Java not found"
    assert not any(r.step.startswith("Athena = local") for r in check.results)
    left = by_step["no logs left behind"].detail
    assert left.startswith("left behind: /aws-glue/jobs/output:jr_") and "/aws/lambda/b3-check-11241500abc123-trigger" in left
    assert left.endswith(", /aws-glue/jobs/b3-check-11241500abc123-refine")
    assert "jr_another_jobs_run" not in left
    assert by_step["reset"].passed
