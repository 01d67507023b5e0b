"""bootstrap_aws.sh and reset_aws.sh against an in-process moto server (AWS_ENDPOINT_URL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto.athena.responses import AthenaResponse
from moto.glue.responses import GlueResponse

from tests.conftest import REPO, moto_server

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
              "NumberOfWorkers": "number_of_workers", "Description": "description"}
    for key, attr in fields.items():
        if key in update:
            setattr(job, attr, update[key])
    return json.dumps({"JobName": job.name})


def _update_crawler(self):
    crawler = self.glue_backend.get_crawler(self.parameters["Name"])
    fields = {"Role": "role", "DatabaseName": "database_name", "Targets": "targets",
              "Configuration": "configuration", "SchemaChangePolicy": "schema_change_policy",
              "RecrawlPolicy": "recrawl_policy"}
    for key, attr in fields.items():
        if key in self.parameters:
            setattr(crawler, attr, self.parameters[key])
    crawler.version += 1
    return "{}"


def _update_work_group(self):
    group = self.athena_backend.work_groups[self._get_param("WorkGroup")]
    updates = self._get_param("ConfigurationUpdates") or {}
    result = updates.get("ResultConfigurationUpdates", {})
    if "OutputLocation" in result:
        group.configuration.setdefault("ResultConfiguration", {})["OutputLocation"] = result["OutputLocation"]
    if "EnforceWorkGroupConfiguration" in updates:
        group.configuration["EnforceWorkGroupConfiguration"] = updates["EnforceWorkGroupConfiguration"]
    return "{}"


@pytest.fixture
def moto_endpoint(monkeypatch):
    monkeypatch.setattr(AthenaResponse, "update_work_group", _update_work_group, raising=False)
    monkeypatch.setattr(GlueResponse, "update_job", _update_job, raising=False)
    monkeypatch.setattr(GlueResponse, "update_crawler", _update_crawler, raising=False)
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(moto_endpoint, tmp_path):
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
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
    return {name: boto3.client(name, **kwargs) for name in ("s3", "glue", "iam", "lambda", "athena")}


def run_script(name: str, env: dict, extra: dict | None = None, stdin: str | None = None):
    return subprocess.run(["bash", str(SCRIPTS / name)], env={**env, **(extra or {})}, cwd=REPO,
                          capture_output=True, text=True, timeout=300, input=stdin)


def test_scripts_are_shellcheck_clean():
    result = subprocess.run([str(BIN / "shellcheck"), "-x", *map(str, sorted(SCRIPTS.glob("*.sh")))],
                            capture_output=True, text=True, cwd=SCRIPTS)
    assert result.returncode == 0, result.stdout


def test_bootstrap_creates_everything_then_converges(aws_env, moto_endpoint):
    first = run_script("bootstrap_aws.sh", aws_env)
    assert first.returncode == 0, first.stderr
    aws = clients(moto_endpoint)

    # Bucket security settings.
    pab = aws["s3"].get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(pab.values()) and len(pab) == 4
    enc = aws["s3"].get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    keys = {o["Key"] for o in aws["s3"].list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {"raw/", "refined/", "scripts/", "athena-results/", "scripts/glue_job.py", "scripts/etl.zip"} <= keys

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
    assert job["Role"].endswith(":role/b3-quotes-glue")

    crawler = aws["glue"].get_crawler(Name="b3-quotes-crawler")["Crawler"]
    assert crawler["DatabaseName"] == "default"
    assert [t["Path"] for t in crawler["Targets"]["S3Targets"]] == [
        f"s3://{BUCKET}/raw/quotes/", f"s3://{BUCKET}/raw/ibov_portfolio/", f"s3://{BUCKET}/refined/quotes_daily/", f"s3://{BUCKET}/refined/quotes_monthly/"]
    config = json.loads(crawler["Configuration"])
    assert config["CrawlerOutput"]["Partitions"]["AddOrUpdateBehavior"] == "InheritFromTable"
    assert config["Grouping"]["TableLevelConfiguration"] == 3

    function = aws["lambda"].get_function(FunctionName="b3-quotes-trigger")["Configuration"]
    assert function["Environment"]["Variables"] == {"GLUE_JOB_NAME": "b3-quotes-refine"}
    assert function["Handler"] == "start_glue_job.lambda_handler" and function["Runtime"].startswith("python3.")
    policy = json.loads(aws["lambda"].get_policy(FunctionName="b3-quotes-trigger")["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"]["Service"] == "s3.amazonaws.com"

    notification = aws["s3"].get_bucket_notification_configuration(Bucket=BUCKET)
    (target,) = notification["LambdaFunctionConfigurations"]
    assert target["LambdaFunctionArn"] == function["FunctionArn"]
    rules = {r["Name"].lower(): r["Value"] for r in target["Filter"]["Key"]["FilterRules"]}
    assert rules == {"prefix": "raw/_manifests/", "suffix": ".json"}

    workgroup = aws["athena"].get_work_group(WorkGroup="b3-quotes")["WorkGroup"]
    assert workgroup["Configuration"]["ResultConfiguration"]["OutputLocation"] == f"s3://{BUCKET}/athena-results/"

    lambda_policy = json.loads(json.dumps(aws["iam"].get_role_policy(
        RoleName="b3-quotes-lambda", PolicyName="b3-quotes-lambda-access")["PolicyDocument"]))
    start = next(s for s in lambda_policy["Statement"] if s["Sid"] == "StartOnlyThisJob")
    assert start["Action"] == "glue:StartJobRun"
    assert start["Resource"] == "arn:aws:glue:us-east-1:123456789012:job/b3-quotes-refine"
    glue_policy = aws["iam"].get_role_policy(RoleName="b3-quotes-glue", PolicyName="b3-quotes-glue-access")["PolicyDocument"]
    resources = {s["Sid"]: s["Resource"] for s in glue_policy["Statement"]}
    assert resources["ReadRawAndJobCode"] == [f"arn:aws:s3:::{BUCKET}/raw/*", f"arn:aws:s3:::{BUCKET}/scripts/*"]
    assert resources["WriteRefined"] == f"arn:aws:s3:::{BUCKET}/refined/*"

    # Second run: converges, and pushes changed configuration (a new crawler database name is not
    # changed here; the job definition is re-applied through update-job).
    second = run_script("bootstrap_aws.sh", aws_env, {"LAMBDA_RUNTIME": "python3.13"})
    assert second.returncode == 0, second.stderr
    assert "Glue job b3-quotes-refine updated" in second.stderr and "crawler b3-quotes-crawler updated" in second.stderr
    assert aws["lambda"].get_function(FunctionName="b3-quotes-trigger")["Configuration"]["Runtime"] == "python3.13"
    assert len(aws["glue"].get_jobs()["Jobs"]) == 1 and len(aws["iam"].list_roles()["Roles"]) == 2


def test_bootstrap_with_given_roles_creates_no_role(aws_env, moto_endpoint):
    aws = clients(moto_endpoint)
    lab_role = aws["iam"].create_role(RoleName="LabRole", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                               "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    result = run_script("bootstrap_aws.sh", aws_env, {"GLUE_ROLE_ARN": lab_role, "LAMBDA_ROLE_ARN": lab_role})
    assert result.returncode == 0, result.stderr
    assert [r["RoleName"] for r in aws["iam"].list_roles()["Roles"]] == ["LabRole"]
    assert aws["glue"].get_job(JobName="b3-quotes-refine")["Job"]["Role"] == lab_role
    assert aws["lambda"].get_function(FunctionName="b3-quotes-trigger")["Configuration"]["Role"] == lab_role


def test_bootstrap_says_what_is_missing(aws_env):
    result = run_script("bootstrap_aws.sh", aws_env, {"BUCKET": ""})
    assert result.returncode == 1 and "BUCKET (set it in .env or the environment)" in result.stderr


def test_reset_needs_confirmation_then_removes_everything(aws_env, moto_endpoint):
    assert run_script("bootstrap_aws.sh", aws_env).returncode == 0
    aws = clients(moto_endpoint)
    aws["s3"].put_object(Bucket=BUCKET, Key="raw/quotes/dt=2024-01-02/x.parquet", Body=b"data")
    aws["glue"].create_table(DatabaseName="default", TableInput={"Name": "quotes_daily"})
    aws["glue"].create_table(DatabaseName="default", TableInput={"Name": "someone_elses"})

    refused = run_script("reset_aws.sh", aws_env, stdin="wrong-name\n")
    assert refused.returncode == 1 and "not confirmed: nothing deleted" in refused.stderr
    assert aws["s3"].head_bucket(Bucket=BUCKET) and aws["glue"].get_job(JobName="b3-quotes-refine")

    done = run_script("reset_aws.sh", aws_env, {"CONFIRM_AWS_RESET": "YES"})
    assert done.returncode == 0, done.stderr
    assert BUCKET not in [b["Name"] for b in aws["s3"].list_buckets()["Buckets"]]
    assert aws["glue"].get_jobs()["Jobs"] == [] and aws["glue"].get_crawlers()["Crawlers"] == []
    assert [t["Name"] for t in aws["glue"].get_tables(DatabaseName="default")["TableList"]] == ["someone_elses"]
    assert aws["lambda"].list_functions()["Functions"] == []
    assert [r["RoleName"] for r in aws["iam"].list_roles()["Roles"]] == []
    assert "b3-quotes" not in [w["Name"] for w in aws["athena"].list_work_groups()["WorkGroups"]]

    again = run_script("reset_aws.sh", aws_env, {"CONFIRM_AWS_RESET": "YES"})
    assert again.returncode == 0, again.stderr
    assert "already gone" in again.stderr


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
              "GLUE_ROLE_ARN": "arn:aws:iam::123456789012:role/b3-quotes-glue"}
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


def test_bucket_policy_denies_plain_http():
    policy = json.loads((REPO / "infra" / "bucket-policy.json").read_text())
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
