"""bootstrap_aws.sh and reset_aws.sh against an in-process moto server (AWS_ENDPOINT_URL)."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto.athena.responses import AthenaResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.glue.exceptions import CrawlerRunningException
from moto.glue.responses import GlueResponse

from b3_quotes.contract.tables import TABLES
from tests.conftest import REPO
from tests.glue_harness import JOB_VALUES, render_job_definition

BUCKET = "b3-quotes-test-lake"
SCRIPTS = REPO / "scripts"
BIN = Path(sys.executable).parent


# moto implements neither glue:UpdateJob, glue:UpdateCrawler nor athena:UpdateWorkGroup. The
# scripts must call them on a second run (that is how AWS converges), so the test server gets
# minimal versions that apply the same fields the Create calls take.
def _update_job(self):
    job = self.glue_backend.get_job(self.parameters["JobName"])
    update = self.parameters["JobUpdate"]
    fields = {"Role": "role", "Command": "command", "DefaultArguments": "default_arguments",
              "ExecutionProperty": "execution_property", "MaxRetries": "max_retries", "Timeout": "timeout",
              "GlueVersion": "glue_version", "WorkerType": "worker_type",
              "NumberOfWorkers": "number_of_workers", "Description": "description",
              "CodeGenConfigurationNodes": "code_gen_configuration_nodes"}
    for key, attr in fields.items():
        if key in update:
            setattr(job, attr, update[key])
    return json.dumps({"JobName": job.name})


def _update_crawler(self):
    crawler = self.glue_backend.get_crawler(self.parameters["Name"])
    if crawler.status != "READY":  # as AWS: UpdateCrawler refuses a running crawler
        raise CrawlerRunningException(f"Crawler with name {crawler.name} has already started")
    fields = {"Role": "role", "DatabaseName": "database_name", "Targets": "targets",
              "Configuration": "configuration", "SchemaChangePolicy": "schema_change_policy",
              "RecrawlPolicy": "recrawl_policy"}
    for key, attr in fields.items():
        if key in self.parameters:
            setattr(crawler, attr, self.parameters[key])
    crawler.version += 1
    return "{}"


# moto's crawls never end, and it deletes a running crawler. As on AWS here: a crawl stopped
# (STOPPING) has stopped after two more GetCrawler calls, and DeleteCrawler refuses it until then.
STOPPING_READS = 2


def _get_crawler(self):
    crawler = self.glue_backend.get_crawler(self.parameters["Name"])
    if crawler.status == "STOPPING":
        crawler.stopping_reads = getattr(crawler, "stopping_reads", 0) + 1
        if crawler.stopping_reads > STOPPING_READS:
            crawler.crawls[-1].status = "STOPPED"
    return ActionResult({"Crawler": crawler.as_dict()})


def _delete_crawler(self):
    crawler = self.glue_backend.get_crawler(self.parameters["Name"])
    if crawler.status != "READY":
        raise CrawlerRunningException(f"{crawler.name} is {crawler.status}")
    self.glue_backend.delete_crawler(crawler.name)
    return EmptyResult()


def _update_work_group(self):
    group = self.athena_backend.work_groups[self._get_param("WorkGroup")]
    updates = self._get_param("ConfigurationUpdates") or {}
    result = updates.get("ResultConfigurationUpdates", {})
    if "OutputLocation" in result:
        group.configuration.setdefault("ResultConfiguration", {})["OutputLocation"] = result["OutputLocation"]
    for key in ("EnforceWorkGroupConfiguration", "BytesScannedCutoffPerQuery"):
        if key in updates:
            group.configuration[key] = updates[key]
    return "{}"


@pytest.fixture(scope="module", autouse=True)
def moto_update_calls():
    """The Update calls moto lacks, on the session's moto server for this module's tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AthenaResponse, "update_work_group", _update_work_group, raising=False)
        patch.setattr(GlueResponse, "update_job", _update_job, raising=False)
        patch.setattr(GlueResponse, "update_crawler", _update_crawler, raising=False)
        for name, call in (("get_crawler", _get_crawler), ("delete_crawler", _delete_crawler)):
            patch.setattr(GlueResponse, name, call)
        yield


@pytest.fixture
def aws_env(moto_endpoint, aws_cli, tmp_path):
    env = {
        "PATH": f"{aws_cli}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "HOME": str(tmp_path),
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "ENV_FILE": str(tmp_path / "no.env"),
        "BUCKET": BUCKET,
        # moto applies bucket-policy statements without their Condition: the TLS-only Deny
        # would refuse every later request. Its document is checked in test_bucket_policy_*.
        "SKIP_TLS_BUCKET_POLICY": "true",
    }
    return env


def clients(endpoint: str) -> dict:
    kwargs = {"endpoint_url": endpoint, "region_name": "us-east-1",
              "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return {name: boto3.client(name, **kwargs) for name in ("s3", "glue", "iam", "lambda", "athena", "sqs", "logs")}


def run_script(name: str, env: dict, extra: dict | None = None, stdin: str | None = None):
    return subprocess.run(["bash", str(SCRIPTS / name)], env={**env, **(extra or {})}, cwd=REPO,
                          capture_output=True, text=True, timeout=300, input=stdin)


GLUE_NOT_YET = ("An error occurred (InvalidInputException) when calling the {op} operation: "
                "Service is unable to assume provided role. Please verify role's TrustPolicy")
LAMBDA_NOT_YET = ("An error occurred (InvalidParameterValueException) when calling the CreateFunction operation: "
                  "The role defined for the function cannot be assumed by Lambda.")


def fake_aws(tmp_path: Path, failures: dict[str, tuple[int, str]]) -> Path:
    """A directory holding an `aws` that fails the first N calls of some commands, then runs the real CLI.

    `failures` maps "service command" (e.g. "glue create-job") to (N, message); each failure
    prints the message as the CLI does and exits 254. Every call of those commands is counted
    in `<dir>/calls/<service>-<command>`.
    """
    folder = tmp_path / "fake-aws"
    (folder / "calls").mkdir(parents=True)
    cases = "\n".join(
        f'  "{command}") limit={count}; message={json.dumps(message)} ;;'
        for command, (count, message) in failures.items())
    script = folder / "aws"
    # It is first on PATH: the real CLI is the `aws` the rest of PATH finds.
    script.write_text(f"""#!/usr/bin/env bash
real_aws() {{ PATH="${{PATH#*{os.pathsep}}}" exec aws "$@"; }}
# The CLI's offline skeleton (bootstrap's check of the CLI) is not a call of the command.
if [[ " $* " == *" --generate-cli-skeleton "* ]]; then real_aws "$@"; fi
case "$1 $2" in
{cases}
  *) real_aws "$@" ;;
esac
counter="{folder}/calls/$1-$2"
calls=$(( $(cat "$counter" 2>/dev/null || echo 0) + 1 ))
echo "$calls" > "$counter"
if (( calls <= limit )); then printf '\\n%s\\n' "$message" >&2; exit 254; fi
real_aws "$@"
""")
    script.chmod(0o755)
    return folder


def calls(folder: Path, command: str) -> int:
    counter = folder / "calls" / command.replace(" ", "-")
    return int(counter.read_text()) if counter.exists() else 0


def test_scripts_are_shellcheck_clean():
    result = subprocess.run([str(BIN / "shellcheck"), "-x", *map(str, sorted(SCRIPTS.glob("*.sh")))],
                            capture_output=True, text=True, cwd=SCRIPTS)
    assert result.returncode == 0, result.stdout


def test_bootstrap_waits_creates_everything_converges_then_reset_removes_only_ours(aws_env, moto_endpoint, tmp_path):
    """One deployment's life (one bootstrap fewer than a test each): create, converge, reset."""
    # The roles bootstrap creates are refused by Glue and Lambda for a while (IAM propagation).
    fake = fake_aws(tmp_path, {"glue create-job": (2, GLUE_NOT_YET.format(op="CreateJob")),
                               "glue create-crawler": (3, GLUE_NOT_YET.format(op="CreateCrawler")),
                               "lambda create-function": (2, LAMBDA_NOT_YET)})
    first = run_script("bootstrap_aws.sh", aws_env, {"PATH": f"{fake}{os.pathsep}{aws_env['PATH']}",
                                                     "IAM_RETRY_DELAYS_S": "0.1 0.1 0.1 0.1"})
    assert first.returncode == 0, first.stderr
    assert (calls(fake, "glue create-job"), calls(fake, "glue create-crawler"), calls(fake, "lambda create-function")) == (3, 4, 3)
    assert "CreateCrawler b3-quotes-crawler: waiting 0.1 s for IAM to propagate the role (Service is unable to assume provided role)" in first.stderr
    assert "CreateFunction b3-quotes-trigger: waiting 0.1 s for IAM to propagate the role (cannot be assumed by Lambda)" in first.stderr
    aws = clients(moto_endpoint)

    # Bucket security settings.
    pab = aws["s3"].get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(pab.values()) and len(pab) == 4
    enc = aws["s3"].get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    keys = {o["Key"] for o in aws["s3"].list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {"raw/", "refined/", "scripts/", "athena-results/", "scripts/glue_job.py", "scripts/etl.zip",
            "scripts/visual-source/raw_quotes.parquet"} <= keys
    # The visual job's source: one small Parquet file (its magic bytes at both ends).
    source = aws["s3"].get_object(Bucket=BUCKET, Key="scripts/visual-source/raw_quotes.parquet")["Body"].read()
    assert source[:4] == source[-4:] == b"PAR1" and len(source) < 64 * 1024

    # The uploaded job script is the repository's file, byte for byte.
    uploaded = aws["s3"].get_object(Bucket=BUCKET, Key="scripts/glue_job.py")["Body"].read()
    assert uploaded == (REPO / "etl" / "glue_job.py").read_bytes()

    job = aws["glue"].get_job(JobName="b3-quotes-refine")["Job"]
    assert job["GlueVersion"] == "5.0" and job["Command"]["Name"] == "glueetl"
    assert job["Command"]["ScriptLocation"] == f"s3://{BUCKET}/scripts/glue_job.py"
    assert job["DefaultArguments"]["--lake_root"] == f"s3://{BUCKET}"
    assert job["DefaultArguments"]["--extra-py-files"] == f"s3://{BUCKET}/scripts/etl.zip"
    assert job["DefaultArguments"]["--crawler_name"] == "b3-quotes-crawler"
    assert job["ExecutionProperty"]["MaxConcurrentRuns"] == 1
    assert (job["WorkerType"], job["NumberOfWorkers"], job["Timeout"]) == ("G.1X", 2, 30)
    assert job["DefaultArguments"]["--continuous-log-logGroup"] == "/aws-glue/jobs/b3-quotes-refine"
    assert job["Role"].endswith(":role/b3-quotes-glue")
    # Visual mode: a source node reading raw, then the custom-code node running the job's code.
    nodes = job["CodeGenConfigurationNodes"]
    # The node reads what infra/glue-job.json names (the job's owner moves it to the visual-source file).
    assert nodes["raw_quotes"]["S3ParquetSource"]["Paths"] == _job_definition()["CodeGenConfigurationNodes"][
        "raw_quotes"]["S3ParquetSource"]["Paths"]
    assert nodes["refine"]["CustomCode"]["Inputs"] == ["raw_quotes"]
    assert nodes["refine"]["CustomCode"]["Code"] == _job_definition()["CodeGenConfigurationNodes"]["refine"][
        "CustomCode"]["Code"]  # the template's node, as it is

    # The catalog: every table of b3_quotes/contract/tables.py, as stated there, located in the bucket.
    quotes = aws["glue"].get_table(DatabaseName="default", Name="quotes")["Table"]
    storage = quotes["StorageDescriptor"]
    assert storage["Location"] == f"s3://{BUCKET}/raw/quotes/"
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]][:8] == [
        ("trade_date", "date"), ("ticker", "string"), ("open", "double"), ("high", "double"), ("low", "double"),
        ("close", "double"), ("adj_close", "double"), ("volume", "bigint")]
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert [(k["Name"], k["Type"]) for k in quotes["PartitionKeys"]] == [("dt", "string")]
    daily = aws["glue"].get_table(DatabaseName="default", Name="quotes_daily")["Table"]
    assert [k["Name"] for k in daily["PartitionKeys"]] == ["dt", "ticker"]
    # Athena projects its partitions from ATHENA_HISTORY_START (default 2000-01-01), the ticker injected.
    assert (daily["Parameters"]["projection.enabled"], daily["Parameters"]["projection.dt.range"],
            daily["Parameters"]["projection.ticker.type"]) == ("true", "2000-01-01,NOW", "injected")
    assert daily["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/refined/quotes_daily/"
    catalogued = sorted(t["Name"] for t in aws["glue"].get_tables(DatabaseName="default")["TableList"])
    assert catalogued == sorted(TABLES)

    # The crawler crawls those tables, may only add partitions, and after its first crawl lists only
    # the folders its queue's S3 events name (not the tables' whole history); no partition indexes.
    crawler = aws["glue"].get_crawler(Name="b3-quotes-crawler")["Crawler"]
    assert crawler["DatabaseName"] == "default"
    queue_arn = "arn:aws:sqs:us-east-1:123456789012:b3-quotes-crawler-events"
    # Only the tables Athena does not project: the compact ones, a partition a year.
    crawled = ["quotes_daily_compact", "quotes_monthly_compact"]
    assert crawler["Targets"] == {"CatalogTargets": [{"DatabaseName": "default", "Tables": crawled,
                                                      "EventQueueArn": queue_arn}]}
    assert crawler["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_EVENT_MODE"}
    assert crawler["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
    config = json.loads(crawler["Configuration"])
    assert config["CrawlerOutput"]["Partitions"]["AddOrUpdateBehavior"] == "InheritFromTable"
    assert config["CreatePartitionIndex"] is False
    assert "Grouping" not in config
    # Its queue: tagged, only this bucket may send to it.
    queue_url = aws["sqs"].get_queue_url(QueueName="b3-quotes-crawler-events")["QueueUrl"]
    assert aws["sqs"].list_queue_tags(QueueUrl=queue_url)["Tags"] == {"project": "b3-quotes-pipeline"}
    attributes = aws["sqs"].get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["MessageRetentionPeriod"] == "1209600"
    (send,) = json.loads(attributes["Policy"])["Statement"]
    assert (send["Principal"], send["Action"], send["Resource"]) == (
        {"Service": "s3.amazonaws.com"}, "sqs:SendMessage", queue_arn)
    assert send["Condition"]["ArnEquals"] == {"aws:SourceArn": f"arn:aws:s3:::{BUCKET}"}

    function = aws["lambda"].get_function(FunctionName="b3-quotes-trigger")["Configuration"]
    assert function["Environment"]["Variables"] == {"GLUE_JOB_NAME": "b3-quotes-refine", "GLUE_MAX_WORKERS": "10",
                                                    "GLUE_MAX_TIMEOUT_MIN": "120"}
    assert function["Handler"] == "start_glue_job.lambda_handler" and function["Runtime"].startswith("python3.")
    policy = json.loads(aws["lambda"].get_policy(FunctionName="b3-quotes-trigger")["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"]["Service"] == "s3.amazonaws.com"

    notification = aws["s3"].get_bucket_notification_configuration(Bucket=BUCKET)
    (target,) = notification["LambdaFunctionConfigurations"]
    assert target["LambdaFunctionArn"] == function["FunctionArn"]
    rules = {r["Name"].lower(): r["Value"] for r in target["Filter"]["Key"]["FilterRules"]}
    assert rules == {"prefix": "raw/_manifests/", "suffix": ".json"}
    # Each crawled table's folder sends its object events to the crawler's queue; the ticker-session
    # folders (millions of objects after a backfill) send none.
    queued = {q["Filter"]["Key"]["FilterRules"][0]["Value"]: q for q in notification["QueueConfigurations"]}
    assert sorted(queued) == ["refined/quotes_daily_compact/", "refined/quotes_monthly_compact/"]
    assert all(q["QueueArn"] == queue_arn and sorted(q["Events"]) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
               for q in queued.values())

    workgroup = aws["athena"].get_work_group(WorkGroup="b3-quotes")["WorkGroup"]
    assert workgroup["Configuration"]["ResultConfiguration"]["OutputLocation"] == f"s3://{BUCKET}/athena-results/"
    assert workgroup["Configuration"]["BytesScannedCutoffPerQuery"] == 10 * 1024 ** 3  # ATHENA_SCAN_LIMIT_GB=10

    # Nothing billable piles up: Athena's results expire, incomplete uploads are aborted.
    rules = {r["ID"]: r for r in aws["s3"].get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
    assert sorted(rules) == ["b3-quotes-athena-results", "b3-quotes-raw", "b3-quotes-refined", "b3-quotes-scripts"]
    assert rules["b3-quotes-athena-results"]["Expiration"] == {"Days": 7}
    assert rules["b3-quotes-athena-results"]["Filter"] == {"Prefix": "athena-results/"}
    assert all(r["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1} and r["Status"] == "Enabled"
               for r in rules.values())
    assert all("Expiration" not in rules[i] for i in ("b3-quotes-raw", "b3-quotes-refined", "b3-quotes-scripts"))
    retention = {g["logGroupName"]: g.get("retentionInDays") for g in aws["logs"].describe_log_groups()["logGroups"]}
    assert retention == {"/aws/lambda/b3-quotes-trigger": 30, "/aws-glue/jobs/b3-quotes-refine": 30}

    lambda_policy = json.loads(json.dumps(aws["iam"].get_role_policy(
        RoleName="b3-quotes-lambda", PolicyName="b3-quotes-lambda-access")["PolicyDocument"]))
    start = next(s for s in lambda_policy["Statement"] if s["Sid"] == "StartOnlyThisJob")
    assert start["Action"] == "glue:StartJobRun"
    assert start["Resource"] == "arn:aws:glue:us-east-1:123456789012:job/b3-quotes-refine"
    glue_policy = aws["iam"].get_role_policy(RoleName="b3-quotes-glue", PolicyName="b3-quotes-glue-access")["PolicyDocument"]
    resources = {s["Sid"]: s["Resource"] for s in glue_policy["Statement"]}
    assert resources["ReadRawAndJobCode"] == [f"arn:aws:s3:::{BUCKET}/raw/*", f"arn:aws:s3:::{BUCKET}/scripts/*"]
    assert resources["WriteRefined"] == f"arn:aws:s3:::{BUCKET}/refined/*"
    actions = {s["Sid"]: set(s["Action"]) if isinstance(s["Action"], list) else {s["Action"]} for s in glue_policy["Statement"]}
    # The job aborts its own multipart uploads; registers the partitions it wrote; the crawler reads its queue.
    assert {"s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"} <= actions["WriteRefined"]
    assert {"glue:BatchCreatePartition", "glue:GetPartition", "glue:GetPartitions",
            "glue:BatchGetPartition"} <= actions["CatalogForJobAndCrawler"]
    assert resources["CatalogForJobAndCrawler"][-1] == "arn:aws:glue:us-east-1:123456789012:table/default/*"
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions["CrawlerEventQueue"]
    assert resources["CrawlerEventQueue"] == queue_arn

    # Second run: converges, and pushes changed configuration (a new crawler database name is not
    # changed here; the job definition is re-applied through update-job, the tables through update-table).
    aws["glue"].update_table(DatabaseName="default", TableInput={
        "Name": "quotes_daily", "StorageDescriptor": {"Columns": [{"Name": "x", "Type": "string"}],
                                                      "Location": f"s3://{BUCKET}/refined/quotes_daily/"}})
    # Someone changed the crawler: the re-run puts it back (and only then calls update-crawler).
    aws["glue"].update_crawler(Name="b3-quotes-crawler", SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE",
                                                                             "DeleteBehavior": "LOG"})
    # A role whose trust policy bootstrap has just rewritten may be refused again on the updates.
    fake = fake_aws(tmp_path / "second", {"glue update-crawler": (1, GLUE_NOT_YET.format(op="UpdateCrawler")),
                                          "lambda update-function-configuration": (1, LAMBDA_NOT_YET)})
    second = run_script("bootstrap_aws.sh", aws_env, {"LAMBDA_RUNTIME": "python3.13", "IAM_RETRY_DELAYS_S": "0.1",
                                                      "ATHENA_SCAN_LIMIT_GB": "2", "LOG_RETENTION_DAYS": "14",
                                                      "PATH": f"{fake}{os.pathsep}{aws_env['PATH']}"})
    assert second.returncode == 0, second.stderr
    assert (calls(fake, "glue update-crawler"), calls(fake, "lambda update-function-configuration")) == (2, 2)
    assert second.stderr.count("waiting 0.1 s for IAM") == 2
    assert "Glue job b3-quotes-refine updated" in second.stderr and "crawler b3-quotes-crawler updated" in second.stderr
    restored = aws["glue"].get_table(DatabaseName="default", Name="quotes_daily")["Table"]
    assert [c["Name"] for c in restored["StorageDescriptor"]["Columns"]] == [c.name for c in TABLES["quotes_daily"].columns]
    (target,) = aws["s3"].get_bucket_notification_configuration(Bucket=BUCKET)["LambdaFunctionConfigurations"]
    assert aws["lambda"].get_function(FunctionName="b3-quotes-trigger")["Configuration"]["Runtime"] == "python3.13"
    assert len(aws["glue"].get_jobs()["Jobs"]) == 1 and len(aws["iam"].list_roles()["Roles"]) == 2
    assert aws["glue"].get_crawler(Name="b3-quotes-crawler")["Crawler"]["SchemaChangePolicy"]["UpdateBehavior"] == "LOG"
    assert aws["athena"].get_work_group(WorkGroup="b3-quotes")["WorkGroup"]["Configuration"][
        "BytesScannedCutoffPerQuery"] == 2 * 1024 ** 3
    assert {g["retentionInDays"] for g in aws["logs"].describe_log_groups()["logGroups"]} == {14}
    assert len(aws["s3"].get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]) == 4  # replaced, not added
    # The adjusted view is Athena's own DDL in the workgroup, replaced by each bootstrap run (two so far).
    executions = [aws["athena"].get_query_execution(QueryExecutionId=i)["QueryExecution"]
                  for i in aws["athena"].list_query_executions(WorkGroup="b3-quotes")["QueryExecutionIds"]]
    views = [e for e in executions if e["Query"].startswith("CREATE OR REPLACE VIEW quotes_daily_adjusted AS")]
    assert len(views) == 2 and {e["QueryExecutionContext"]["Database"] for e in views} == {"default"}
    assert "FROM quotes_daily_compact d" in views[0]["Query"]

    # Reset. What a deployment leaves besides its resources: data, the Lambda's log group, the
    # runs' log streams in the account's shared Glue groups (another job's stream among them).
    aws["s3"].put_object(Bucket=BUCKET, Key="raw/quotes/dt=2024-01-02/x.parquet", Body=b"data")
    run_ids = []
    for _ in range(2):  # one at a time (MaxConcurrentRuns 1): moto ends a run when it is read
        run_ids.append(aws["glue"].start_job_run(JobName="b3-quotes-refine")["JobRunId"])
        aws["glue"].get_job_run(JobName="b3-quotes-refine", RunId=run_ids[-1])
    for group in ("/aws-glue/jobs/output", "/aws-glue/jobs/error", "/aws-glue/jobs/logs-v2"):
        aws["logs"].create_log_group(logGroupName=group)
        aws["logs"].create_log_stream(logGroupName=group, logStreamName="jr_another_jobs_run")
    for run_id in run_ids:
        aws["logs"].create_log_stream(logGroupName="/aws-glue/jobs/output", logStreamName=run_id)
        aws["logs"].create_log_stream(logGroupName="/aws-glue/jobs/logs-v2", logStreamName=f"{run_id}-driver")
        aws["logs"].create_log_stream(logGroupName="/aws-glue/jobs/b3-quotes-refine", logStreamName=f"{run_id}-driver")
    aws["logs"].create_log_group(logGroupName="/aws-glue/crawlers")
    for stream in ("b3-quotes-crawler", "another-crawler"):
        aws["logs"].create_log_stream(logGroupName="/aws-glue/crawlers", logStreamName=stream)
    # A crawl under way: DeleteCrawler refuses it until it has stopped.
    aws["glue"].start_crawler(Name="b3-quotes-crawler")
    aws["glue"].create_table(DatabaseName="default", TableInput={"Name": "someone_elses"})
    # moto runs no DDL: the view Athena would have made, as the catalog holds one.
    aws["glue"].create_table(DatabaseName="default", TableInput={"Name": "quotes_daily_adjusted",
                                                                 "TableType": "VIRTUAL_VIEW"})
    # A table of ours by name, but somewhere else: not ours.
    aws["glue"].delete_table(DatabaseName="default", Name="quotes")
    aws["glue"].create_table(DatabaseName="default", TableInput={
        "Name": "quotes", "StorageDescriptor": {"Location": "s3://another-team/quotes/"}})

    mistyped = run_script("reset_aws.sh", aws_env, {"CONFIRM_AWS_RESET": "YES", "BUCKET": "b3-quotes-test-lkae"})
    assert mistyped.returncode == 2, mistyped.stderr
    assert mistyped.stderr.strip().endswith(
        "error: no deployment uses bucket b3-quotes-test-lkae (job b3-quotes-refine runs from another bucket): nothing deleted. Check BUCKET")

    refused = run_script("reset_aws.sh", aws_env, stdin="wrong-name\n")
    assert refused.returncode == 1 and "not confirmed: nothing deleted" in refused.stderr
    assert aws["s3"].head_bucket(Bucket=BUCKET) and aws["glue"].get_job(JobName="b3-quotes-refine")

    done = run_script("reset_aws.sh", aws_env, {"CONFIRM_AWS_RESET": "YES", "CRAWLER_POLL_S": "0"})
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("... crawler b3-quotes-crawler is STOPPING: waiting for it to stop") == STOPPING_READS
    assert BUCKET not in [b["Name"] for b in aws["s3"].list_buckets()["Buckets"]]
    assert aws["glue"].get_jobs()["Jobs"] == [] and aws["glue"].get_crawlers()["Crawlers"] == []
    assert sorted(t["Name"] for t in aws["glue"].get_tables(DatabaseName="default")["TableList"]) == ["quotes", "someone_elses"]
    assert "table default.quotes lies outside s3://b3-quotes-test-lake/: not ours, left alone" in done.stderr
    assert "- view default.quotes_daily_adjusted" in done.stderr
    assert aws["lambda"].list_functions()["Functions"] == []
    assert [r["RoleName"] for r in aws["iam"].list_roles()["Roles"]] == []
    assert "b3-quotes" not in [w["Name"] for w in aws["athena"].list_work_groups()["WorkGroups"]]
    assert aws["sqs"].list_queues().get("QueueUrls", []) == []
    groups = [g["logGroupName"] for g in aws["logs"].describe_log_groups()["logGroups"]]
    # The deployment's own groups are gone; of the account's shared ones only other jobs' streams remain.
    assert groups == ["/aws-glue/crawlers", "/aws-glue/jobs/error", "/aws-glue/jobs/logs-v2", "/aws-glue/jobs/output"]
    assert [x["logStreamName"] for x in aws["logs"].describe_log_streams(logGroupName=groups.pop(0))["logStreams"]] == [
        "another-crawler"]
    for group in groups:  # the shared groups stay, with only the other job's stream
        assert [x["logStreamName"] for x in aws["logs"].describe_log_streams(logGroupName=group)["logStreams"]] == [
            "jr_another_jobs_run"]
    assert "- 4 log stream(s) of job b3-quotes-refine's runs" in done.stderr

    again = run_script("reset_aws.sh", aws_env, {"CONFIRM_AWS_RESET": "YES"})
    assert again.returncode == 0, again.stderr
    assert "nothing of a deployment in bucket b3-quotes-test-lake found: nothing deleted" in again.stderr


def run_retry(command: str, delays: str = "0.1 0.1 0.1") -> subprocess.CompletedProcess:
    """with_role_retry from bootstrap_aws.sh (sourced, so main does not run) around a shell command."""
    script = f'source scripts/bootstrap_aws.sh; with_role_retry "CreateJob demo" bash -c {shlex.quote(command)}'
    return subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "IAM_RETRY_DELAYS_S": delays})


def test_role_retry_gives_up_after_the_bounded_wait_and_stops_at_once_on_other_errors(tmp_path):
    counter = tmp_path / "n"
    counter.write_text("0")
    refuse = (f'n=$(($(cat {counter}) + 1)); echo $n > {counter}; '
              f'echo "{GLUE_NOT_YET.format(op="CreateJob")}" >&2; exit 254')
    gave_up = run_retry(refuse)
    assert gave_up.returncode == 254 and counter.read_text().strip() == "4"  # 1 + one per delay
    assert gave_up.stderr.count("waiting 0.1 s for IAM") == 3
    assert gave_up.stderr.rstrip().endswith("the role was still not assumable after waiting 0.1+0.1+0.1 s")

    counter.write_text("0")
    denied = run_retry(f'n=$(($(cat {counter}) + 1)); echo $n > {counter}; '
                       'echo "An error occurred (AccessDeniedException) when calling the CreateJob operation: '
                       'User is not authorized to perform: glue:CreateJob" >&2; exit 254')
    assert denied.returncode == 254 and counter.read_text().strip() == "1"
    assert "waiting" not in denied.stderr and "not authorized to perform: glue:CreateJob" in denied.stderr


def test_default_retry_waits_at_least_a_minute():
    script = (REPO / "scripts" / "bootstrap_aws.sh").read_text()
    delays = script.split('IAM_RETRY_DELAYS_S="${IAM_RETRY_DELAYS_S:-', 1)[1].split("}", 1)[0]
    assert sum(float(d) for d in delays.split()) >= 60


FOREIGN = "someone-elses-bucket"


def _foreign_bucket(aws):
    aws["s3"].create_bucket(Bucket=FOREIGN)
    aws["s3"].put_object(Bucket=FOREIGN, Key="reports/2024.csv", Body=b"their data")
    aws["s3"].put_bucket_tagging(Bucket=FOREIGN, Tagging={"TagSet": [{"Key": "team", "Value": "finance"}]})
    aws["s3"].put_bucket_notification_configuration(Bucket=FOREIGN, NotificationConfiguration={"TopicConfigurations": [
        {"Id": "theirs", "TopicArn": "arn:aws:sns:us-east-1:123456789012:their-topic", "Events": ["s3:ObjectRemoved:*"]}]})


def _bucket_of_another_account(aws, tmp_path, path):
    fake = fake_aws(tmp_path, {"s3api head-bucket": (99, "An error occurred (403) when calling the HeadBucket operation: Forbidden")})
    return {"PATH": f"{fake}{os.pathsep}{path}"}


def _bucket_in_other_region(aws, tmp_path, path):
    eu = boto3.client("s3", endpoint_url=aws["s3"].meta.endpoint_url, region_name="eu-west-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    eu.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return {}


def _foreign_quotes_table(aws, tmp_path, path):
    aws["glue"].create_database(DatabaseInput={"Name": "default"})
    aws["glue"].create_table(DatabaseName="default", TableInput={
        "Name": "quotes", "StorageDescriptor": {"Location": "s3://another-team/quotes/"}})
    return {}


def _no_credentials(aws, tmp_path, path):
    return {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none")}


BAD_INPUT = {
    "missing credentials": (_no_credentials, "error: no valid AWS credentials (aws sts get-caller-identity failed)"),
    "bucket of another account": (_bucket_of_another_account, f"error: bucket name {BUCKET} is taken by another AWS account"),
    "bucket in another region": (_bucket_in_other_region,
                                 f"error: bucket {BUCKET} is in eu-west-1, AWS_REGION is us-east-1: set AWS_REGION=eu-west-1"),
    "foreign bucket": (lambda aws, tmp, path: (_foreign_bucket(aws), {"BUCKET": FOREIGN})[1],
                       f"error: bucket {FOREIGN} exists but has no project=b3-quotes-pipeline tag: bootstrap did not create it."),
    "missing Glue role": (lambda aws, tmp, path: {"GLUE_ROLE_ARN": "arn:aws:iam::123456789012:role/LabRoel"},
                          "error: GLUE_ROLE_ARN: role LabRoel does not exist in account 123456789012"),
    "not a role ARN": (lambda aws, tmp, path: {"LAMBDA_ROLE_ARN": "LabRole"}, "error: LAMBDA_ROLE_ARN=LabRole is not a role ARN"),
    "foreign table": (_foreign_quotes_table, f"error: table default.quotes exists with a location outside s3://{BUCKET}/: not ours"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bootstrap_refuses_bad_input_with_one_line_before_changing_anything(case, aws_env, moto_endpoint, tmp_path):
    aws = clients(moto_endpoint)
    arrange, message = BAD_INPUT[case]
    extra = arrange(aws, tmp_path, aws_env["PATH"])  # PATH: for a fake `aws` put before it
    buckets_before = sorted(b["Name"] for b in aws["s3"].list_buckets()["Buckets"])
    result = run_script("bootstrap_aws.sh", aws_env, extra)
    assert result.returncode == 2, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert line.startswith(message), result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(b["Name"] for b in aws["s3"].list_buckets()["Buckets"]) == buckets_before
    assert aws["iam"].list_roles()["Roles"] == [] and aws["glue"].get_jobs()["Jobs"] == []


TAGGING_DENIED = ("An error occurred (AccessDeniedException) when calling the CreateWorkGroup operation: User: "
                  "arn:aws:sts::123456789012:assumed-role/voclabs/user1 is not authorized to perform: athena:TagResource "
                  "on resource: arn:aws:athena:us-east-1:123456789012:workgroup/b3-quotes")
IAM_READ_DENIED = ("An error occurred (AccessDenied) when calling the GetRole operation: User: "
                   "arn:aws:sts::123456789012:assumed-role/voclabs/user1 is not authorized to perform: iam:GetRole")


def test_adopted_bucket_with_given_roles_keeps_what_is_not_ours(aws_env, moto_endpoint, tmp_path):
    # As in an AWS Academy account: LabRole given, tagging the workgroup and reading IAM refused.
    lab = fake_aws(tmp_path, {"athena create-work-group": (1, TAGGING_DENIED), "iam get-role": (99, IAM_READ_DENIED)})
    aws = clients(moto_endpoint)
    _foreign_bucket(aws)
    lab_role = aws["iam"].create_role(RoleName="LabRole", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                               "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    env = {"BUCKET": FOREIGN, "ADOPT_BUCKET": "yes", "GLUE_ROLE_ARN": lab_role, "LAMBDA_ROLE_ARN": lab_role,
           "PATH": f"{lab}{os.pathsep}{aws_env['PATH']}"}
    result = run_script("bootstrap_aws.sh", aws_env, env)
    assert result.returncode == 0, result.stderr
    # Refusals the deployment can do without are notices, not failures.
    assert "! GLUE_ROLE_ARN: cannot check that arn:aws:iam::123456789012:role/LabRole exists" in result.stderr
    assert ("! Athena workgroup b3-quotes: the account refuses tagging, created without the project tag "
            "(reset_aws.sh leaves untagged resources: delete it by hand)") in result.stderr
    assert calls(lab, "athena create-work-group") == 2  # tagged (refused), then untagged
    workgroup = aws["athena"].get_work_group(WorkGroup="b3-quotes")["WorkGroup"]
    assert workgroup["Configuration"]["ResultConfiguration"]["OutputLocation"] == f"s3://{FOREIGN}/athena-results/"
    # Given roles: none created, none changed.
    assert [r["RoleName"] for r in aws["iam"].list_roles()["Roles"]] == ["LabRole"]
    assert aws["glue"].get_job(JobName="b3-quotes-refine")["Job"]["Role"] == lab_role
    assert aws["lambda"].get_function(FunctionName="b3-quotes-trigger")["Configuration"]["Role"] == lab_role
    # Adopted bucket: their tag, notification, object and settings kept; ours merged in.
    tags = {t["Key"]: t["Value"] for t in aws["s3"].get_bucket_tagging(Bucket=FOREIGN)["TagSet"]}
    assert tags == {"team": "finance", "project": "b3-quotes-pipeline", "b3-quotes-pipeline-adopted": "true"}
    notification = aws["s3"].get_bucket_notification_configuration(Bucket=FOREIGN)
    assert [t["Id"] for t in notification["TopicConfigurations"]] == ["theirs"]
    assert [c["Id"] for c in notification["LambdaFunctionConfigurations"]] == ["raw-run-committed"]
    assert aws["s3"].get_object(Bucket=FOREIGN, Key="reports/2024.csv")["Body"].read() == b"their data"
    with pytest.raises(aws["s3"].exceptions.ClientError):
        aws["s3"].get_public_access_block(Bucket=FOREIGN)

    done = run_script("reset_aws.sh", aws_env, {**env, "CONFIRM_AWS_RESET": "YES"})
    assert done.returncode == 0, done.stderr
    assert "! role b3-quotes-glue: cannot read it (User: arn:aws:sts::123456789012:assumed-role/voclabs/user1 " \
           "is not authorized to perform: iam:GetRole), left alone" in done.stderr
    assert "! workgroup b3-quotes not tagged by bootstrap or not writing to someone-elses-bucket, left alone" in done.stderr
    assert aws["s3"].get_object(Bucket=FOREIGN, Key="reports/2024.csv")["Body"].read() == b"their data"
    assert aws["s3"].get_bucket_tagging(Bucket=FOREIGN)["TagSet"] == [{"Key": "team", "Value": "finance"}]
    notification = aws["s3"].get_bucket_notification_configuration(Bucket=FOREIGN)
    assert [t["Id"] for t in notification["TopicConfigurations"]] == ["theirs"]
    assert "LambdaFunctionConfigurations" not in notification
    assert aws["glue"].get_jobs()["Jobs"] == [] and aws["lambda"].list_functions()["Functions"] == [], done.stderr
    assert [r["RoleName"] for r in aws["iam"].list_roles()["Roles"]] == ["LabRole"]
    assert aws["glue"].get_tables(DatabaseName="default")["TableList"] == []


def test_bootstrap_says_what_is_missing(aws_env):
    result = run_script("bootstrap_aws.sh", aws_env, {"BUCKET": ""})
    assert result.returncode == 2 and "BUCKET (set it in .env or the environment)" in result.stderr


def test_reset_leaves_untagged_resources_alone(aws_env, moto_endpoint):
    aws = clients(moto_endpoint)
    aws["s3"].create_bucket(Bucket=BUCKET)
    result = run_script("reset_aws.sh", aws_env, {"CONFIRM_AWS_RESET": "YES"})
    assert result.returncode == 0, result.stderr
    assert "not created by bootstrap, left alone" in result.stderr
    assert BUCKET in [b["Name"] for b in aws["s3"].list_buckets()["Buckets"]]


def _known_linter_gap(finding) -> bool:
    """parliament's action table predates workgroup ARNs for Athena's tagging actions."""
    return finding.issue == "RESOURCE_MISMATCH" and all(
        d["action"] in ("athena:TagResource", "athena:ListTagsForResource") for d in finding.detail)


def test_policy_documents_are_valid_and_pass_the_linter():
    from parliament import analyze_policy_string

    values = {"BUCKET": BUCKET, "REGION": "us-east-1", "ACCOUNT_ID": "123456789012", "GLUE_JOB_NAME": "b3-quotes-refine",
              "CRAWLER_NAME": "b3-quotes-crawler", "GLUE_DATABASE": "default", "LAMBDA_NAME": "b3-quotes-trigger",
              "ATHENA_WORKGROUP": "b3-quotes", "GLUE_ROLE_NAME": "b3-quotes-glue", "LAMBDA_ROLE_NAME": "b3-quotes-lambda",
              "GLUE_ROLE_ARN": "arn:aws:iam::123456789012:role/b3-quotes-glue", "CRAWL_QUEUE_NAME": "b3-quotes-crawler-events",
              "GLUE_LOG_GROUP": "/aws-glue/jobs/b3-quotes-refine"}
    for path in sorted((REPO / "infra").rglob("*.json")):
        text = path.read_text()
        for key, value in values.items():
            text = text.replace("${" + key + "}", value)
        assert "${" not in text, f"{path.name}: a placeholder the test does not fill"
        document = json.loads(text)
        if "Statement" not in document or "trust" in path.name:
            continue
        findings = [f for f in analyze_policy_string(text).findings if not _known_linter_gap(f)]
        assert findings == [], f"{path.name}: {[(f.issue, f.detail) for f in findings]}"


def _job_definition() -> dict:
    return render_job_definition({**JOB_VALUES, "BUCKET": BUCKET, "REGION": "us-east-1"})


def test_visual_job_definition_passes_the_cli_parameter_validation():
    """The same validation the AWS CLI runs before sending create-job / update-job."""
    import botocore.session
    from botocore.validate import ParamValidator

    definition = _job_definition()
    assert definition["JobMode"] == "VISUAL"
    model = botocore.session.get_session().get_service_model("glue")
    create = ParamValidator().validate({"Name": "b3-quotes-refine", **definition},
                                       model.operation_model("CreateJob").input_shape)
    update = ParamValidator().validate({"JobName": "b3-quotes-refine", "JobUpdate": definition},
                                       model.operation_model("UpdateJob").input_shape)
    assert not create.has_errors(), create.generate_report()
    assert not update.has_errors(), update.generate_report()
    # A broken node is caught by the same check (the validation is not vacuous).
    broken = json.loads(json.dumps(definition))
    del broken["CodeGenConfigurationNodes"]["refine"]["CustomCode"]["ClassName"]
    assert ParamValidator().validate({"Name": "x", **broken}, model.operation_model("CreateJob").input_shape).has_errors()


def test_visual_custom_code_node_runs_the_job_with_the_generated_scripts_glue_context(monkeypatch):
    """Glue Studio makes a CustomCode node's Code the body of `def ClassName(glueContext, dfc)`."""
    import textwrap

    import etl.glue_job

    node = _job_definition()["CodeGenConfigurationNodes"]["refine"]["CustomCode"]
    source = f"def {node['ClassName']}(glueContext, dfc):\n" + textwrap.indent(node["Code"], "    ")
    namespace: dict = {}
    exec(compile(source, "custom-code-node", "exec"), namespace)
    seen = []
    monkeypatch.setattr(etl.glue_job, "run_in_glue", lambda glue_context, *a, **k: seen.append((glue_context, a, k)))
    glue_context, frames = object(), object()
    assert namespace[node["ClassName"]](glue_context, frames) is frames
    # The script's own GlueContext, and nothing else: the job reads its arguments from sys.argv.
    assert seen == [(glue_context, (), {})]


def test_bucket_policy_denies_plain_http():
    policy = json.loads((REPO / "infra" / "bucket-policy.json").read_text())
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_create_tagged_retries_untagged_only_when_tagging_is_what_was_refused():
    # A command that refuses its tags (as an Academy account does), or fails for another reason.
    fake = ('f() { if [[ " $* " == *" --tags "* ]]; then echo "An error occurred (AccessDeniedException): User: x '
            'is not authorized to perform: glue:TagResource on resource: y" >&2; return 254; fi; echo "created $*"; }; ')
    tagged = subprocess.run(["bash", "-c", fake + 'source scripts/bootstrap_aws.sh; create_tagged "crawler c" --tags k=v f --name c'],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert tagged.returncode == 0 and tagged.stdout == "created --name c\n", tagged.stderr
    assert tagged.stderr == ("! crawler c: the account refuses tagging, created without the project tag "
                             "(reset_aws.sh leaves untagged resources: delete it by hand)\n")
    other = ('g() { echo "An error occurred (AlreadyExistsException): crawler c exists" >&2; return 254; }; '
             'source scripts/bootstrap_aws.sh; create_tagged "crawler c" --tags k=v g --name c')
    failed = subprocess.run(["bash", "-c", other], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 254 and "AlreadyExistsException" in failed.stderr and "refuses tagging" not in failed.stderr


def test_the_cli_server_serves_the_next_call_after_a_client_died_mid_request(aws_cli):
    # An `aws` killed while it sends its request (a timeout, a ^C) must not take the server, and
    # with it every later call of the session, down: once before sending anything, once half-way.
    for sent in (b"", (100).to_bytes(4, "big") + b"/tmp"):
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(aws_cli / "cli.sock"))
            if sent:
                socket.send_fds(client, [sent], [0, 1, 2])
    version = subprocess.run([str(aws_cli / "aws"), "--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0, version.stderr
    assert (version.stdout + version.stderr).startswith("aws-cli/")


CREATE_ROLE_DENIED = ("An error occurred (AccessDenied) when calling the CreateRole operation: User: "
                      "arn:aws:sts::123456789012:assumed-role/voclabs/user1 is not authorized to perform: "
                      "iam:CreateRole on resource: arn:aws:iam::123456789012:role/b3-quotes-glue")


def test_an_account_that_may_not_create_roles_gets_the_labrole_hint_before_anything_exists(aws_env, moto_endpoint,
                                                                                           tmp_path):
    denied = fake_aws(tmp_path, {"iam create-role": (99, CREATE_ROLE_DENIED)})
    result = run_script("bootstrap_aws.sh", aws_env, {"PATH": f"{denied}{os.pathsep}{aws_env['PATH']}"})
    assert result.returncode == 1, result.stderr
    assert CREATE_ROLE_DENIED in result.stderr
    assert result.stderr.rstrip().endswith(
        "error: this account may not create IAM roles (iam:CreateRole denied): set GLUE_ROLE_ARN and LAMBDA_ROLE_ARN "
        "in .env to a role you may use (AWS Academy: LabRole's ARN, arn:aws:iam::123456789012:role/LabRole) and re-run")
    aws = clients(moto_endpoint)
    assert aws["s3"].list_buckets()["Buckets"] == [] and aws["glue"].get_jobs()["Jobs"] == []
    assert calls(denied, "iam create-role") == 1


def test_the_crawler_is_updated_only_when_it_differs_and_never_fails_bootstrap_while_crawling(aws_env, moto_endpoint):
    """UpdateCrawler makes the next event-mode crawl list every folder again: a re-run that changed
    nothing must not call it; a crawl under way refuses it, which is a notice, not exit 1."""
    aws = clients(moto_endpoint)
    aws["glue"].create_database(DatabaseInput={"Name": "default"})
    env = {**aws_env, "GLUE_ROLE_ARN": "arn:aws:iam::123456789012:role/b3-quotes-glue", "GLUE_DATABASE": "default",
           "CRAWLER_NAME": "b3-quotes-crawler",
           "CRAWL_QUEUE_ARN": "arn:aws:sqs:us-east-1:123456789012:b3-quotes-crawler-events"}

    def ensure_crawler() -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", "source scripts/bootstrap_aws.sh; ensure_crawler"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)

    def version() -> int:
        return aws["glue"].get_crawler(Name="b3-quotes-crawler")["Crawler"]["Version"]

    created = ensure_crawler()
    assert created.returncode == 0 and created.stderr.endswith("+ crawler b3-quotes-crawler created\n"), created.stderr
    before = version()
    same = ensure_crawler()
    assert (same.returncode, same.stderr) == (0, "= crawler b3-quotes-crawler unchanged (not updated: its next crawl "
                                                 "stays incremental)\n")
    assert version() == before
    aws["glue"].update_crawler(Name="b3-quotes-crawler", SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE",
                                                                             "DeleteBehavior": "LOG"})
    aws["glue"].start_crawler(Name="b3-quotes-crawler")
    busy = ensure_crawler()
    assert busy.returncode == 0, busy.stderr
    assert busy.stderr == ("! crawler b3-quotes-crawler is crawling: its new settings are not applied; re-run "
                           "bootstrap once the crawl has ended\n")
    policy = aws["glue"].get_crawler(Name="b3-quotes-crawler")["Crawler"]["SchemaChangePolicy"]
    assert policy["UpdateBehavior"] == "UPDATE_IN_DATABASE"
    aws["glue"].stop_crawler(Name="b3-quotes-crawler")
    for _ in range(STOPPING_READS + 1):
        aws["glue"].get_crawler(Name="b3-quotes-crawler")
    updated = ensure_crawler()
    assert updated.returncode == 0 and updated.stderr.endswith(
        "~ crawler b3-quotes-crawler updated (its next crawl lists every folder once)\n"), updated.stderr
    assert aws["glue"].get_crawler(Name="b3-quotes-crawler")["Crawler"]["SchemaChangePolicy"] == {
        "UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
