"""Prove a real deployment in one command: `make aws-check` (python -m b3_quotes.deploy.aws_check).

Opt-in (it creates, bills for a few cents and deletes real resources): it refuses unless
B3_AWS_CHECK=1 and AWS credentials resolve. Then, under names of its own so that nothing else in
the account is touched (bucket, job, crawler, Lambda, workgroup, roles and database all named
`b3-check-<id>`):

 1. bootstraps with scripts/bootstrap_aws.sh,
 2. scrapes the bundled sample to S3 (scraper/scraper_upload.py --source sample, BUCKET set),
 3. waits for the Glue run the Lambda starts (its final state; its error and logs if it fails),
    and looks for its continuous logs in the job's own log group, which must have a retention,
 4. asks Athena for the run's PETR4 rows through partition projection, before the crawler has finished,
 5. waits for the crawler the job starts (its last crawl's status),
 6. checks that the script Glue keeps at ScriptLocation is the one Glue Studio generated from
    the visual job's graph,
 7. starts a run with no arguments (start-job-run --job-name only) and waits for SUCCEEDED,
 8. runs every sql/*.sql in Athena and the same query on DuckDB over a local run of the same
    data, and compares the rows,
 9. resets with scripts/reset_aws.sh, also when a step failed, checks that the runs' log streams
    and the deployment's two log groups are gone, and prints a pass/fail table.

Exit codes: 0 every check passed; 1 a check failed; 2 refused (not opted in, no credentials).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
GLUE_RUN_DEADLINE_S = 30 * 60.0  # the job's own timeout is 30 min
RUN_APPEAR_DEADLINE_S = 5 * 60.0  # S3 event -> Lambda -> StartJobRun
CRAWLER_DEADLINE_S = 15 * 60.0
POLL_S = 15.0
CLOCK_SKEW = timedelta(minutes=1)
RUN_FAILED = {"FAILED", "ERROR", "TIMEOUT", "STOPPED", "EXPIRED"}
# The sample's PETR4 through quotes_daily's partition projection (the ticker injected by the query).
PROJECTED_ROWS_SQL = "SELECT count(*) AS sessions, max(dt) AS last FROM quotes_daily WHERE ticker = 'PETR4'"
GLUE_LOG_GROUPS = ("/aws-glue/jobs/output", "/aws-glue/jobs/error", "/aws-glue/jobs/logs-v2")
# Columns that name the run or its time, and so differ between the AWS run and the local one.
RUN_SPECIFIC_COLUMNS = {"run_id", "ingested_at"}

Runner = Callable[[Sequence[str], Mapping[str, str]], "subprocess.CompletedProcess[str]"]
LocalQuery = Callable[[str], tuple[list[str], list[tuple]]]


class CheckFailed(RuntimeError):
    """A step failed; its message is the line the table shows."""


@dataclass
class Result:
    step: str
    passed: bool
    detail: str


@dataclass
class Deployment:
    """Names of everything the check creates: its own, so reset can only remove those."""

    check_id: str
    region: str
    role_arns: dict[str, str] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"b3-check-{self.check_id}"

    def environment(self) -> dict[str, str]:
        names = {
            "BUCKET": f"{self.prefix}-lake",
            "AWS_REGION": self.region,
            "GLUE_JOB_NAME": f"{self.prefix}-refine",
            "CRAWLER_NAME": f"{self.prefix}-crawler",
            "LAMBDA_NAME": f"{self.prefix}-trigger",
            "ATHENA_WORKGROUP": f"{self.prefix}-workgroup",
            "GLUE_ROLE_NAME": f"{self.prefix}-glue",
            "LAMBDA_ROLE_NAME": f"{self.prefix}-lambda",
            "GLUE_DATABASE": f"b3_check_{self.check_id}",
        }
        return {**names, **self.role_arns}


def new_check_id(now: datetime | None = None) -> str:
    """Short, lowercase, unique enough: a bucket name must be global (3-63 characters)."""
    stamp = (now or datetime.now(UTC)).strftime("%m%d%H%M")
    return f"{stamp}{uuid.uuid4().hex[:6]}"


def run_command(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a repository command, its output shown as it goes (stderr) and kept for the report."""
    # The venv's own tools (the AWS CLI among them) come first, as when it is activated.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    completed = subprocess.run(list(args), cwd=REPO, env={**os.environ, "PATH": path, **env}, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sys.stderr.write(completed.stdout)
    return completed


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def wait_for_glue_runs(glue: Any, job_name: str, started_after: datetime, *, sleep: Callable[[float], None],
                       clock: Callable[[], float], appear_deadline_s: float = RUN_APPEAR_DEADLINE_S,
                       run_deadline_s: float = GLUE_RUN_DEADLINE_S, poll_s: float = POLL_S) -> str:
    """Wait until the runs started after `started_after` have all ended; raise unless all succeeded."""
    start = clock()
    while True:
        runs = [r for r in glue.get_job_runs(JobName=job_name)["JobRuns"] if r["StartedOn"] >= started_after]
        ended = [r for r in runs if r["JobRunState"] in RUN_FAILED | {"SUCCEEDED"}]
        failed = [r for r in ended if r["JobRunState"] in RUN_FAILED]
        if failed:
            run = failed[0]
            raise CheckFailed(
                f"Glue run {run['Id']} {run['JobRunState']}: {run.get('ErrorMessage', 'no error message')}. "
                f"Logs: CloudWatch log groups /aws-glue/jobs/error and /aws-glue/jobs/output, stream {run['Id']}")
        if runs and len(ended) == len(runs):
            return ", ".join(f"{r['Id']} SUCCEEDED in {r.get('ExecutionTime', 0)} s" for r in runs)
        waited = clock() - start
        if not runs and waited >= appear_deadline_s:
            raise CheckFailed(f"no Glue run of {job_name} started within {appear_deadline_s:g} s of the scrape: "
                              "check the bucket notification and the Lambda's log group /aws/lambda/<LAMBDA_NAME>")
        if waited >= run_deadline_s:
            states = ", ".join(f"{r['Id']} {r['JobRunState']}" for r in runs)
            raise CheckFailed(f"Glue run(s) still running after {run_deadline_s:g} s: {states}")
        sleep(poll_s)


def wait_for_job_run(glue: Any, job_name: str, run_id: str, *, sleep: Callable[[float], None],
                     clock: Callable[[], float], deadline_s: float = GLUE_RUN_DEADLINE_S, poll_s: float = POLL_S) -> str:
    """Wait for one run to end; raise unless it SUCCEEDED."""
    start = clock()
    while True:
        run = glue.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]
        if run["JobRunState"] == "SUCCEEDED":
            return f"{run_id} SUCCEEDED in {run.get('ExecutionTime', 0)} s"
        if run["JobRunState"] in RUN_FAILED:
            raise CheckFailed(f"Glue run {run_id} {run['JobRunState']}: {run.get('ErrorMessage', 'no error message')}")
        if clock() - start >= deadline_s:
            raise CheckFailed(f"Glue run {run_id} still {run['JobRunState']} after {deadline_s:g} s")
        sleep(poll_s)


def script_is_generated(glue: Any, s3: Any, job_name: str, uploaded: bytes) -> str:
    """A visual job's script is Glue Studio's: the job holds its graph, and the object at
    ScriptLocation is no longer the etl/glue_job.py bootstrap uploaded there (CreateJob/UpdateJob
    with CodeGenConfigurationNodes generate the script and store it at ScriptLocation)."""
    job = glue.get_job(JobName=job_name)["Job"]
    if not job.get("CodeGenConfigurationNodes"):
        raise CheckFailed(f"job {job_name} has no CodeGenConfigurationNodes: not a visual job")
    location = job["Command"]["ScriptLocation"]
    bucket, key = location.removeprefix("s3://").split("/", 1)
    stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if stored == uploaded:
        raise CheckFailed(f"{location} is etl/glue_job.py as uploaded: Glue did not store a generated script")
    return f"{location} is Glue Studio's script ({len(stored)} bytes), graph of {len(job['CodeGenConfigurationNodes'])} nodes"


def own_log_group(logs: Any, job_name: str, run_ids: Sequence[str]) -> str:
    """The runs' continuous logs landed in the job's own log group (--continuous-log-logGroup),
    which bootstrap made with a retention: only a real Glue shows that it honours the argument."""
    group = f"/aws-glue/jobs/{job_name}"  # scripts/lib.sh GLUE_LOG_GROUP
    found = [g for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] if g["logGroupName"] == group]
    if not found:
        raise CheckFailed(f"no log group {group}: bootstrap did not make it")
    streams = [s["logStreamName"] for run_id in run_ids
               for s in logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=run_id)["logStreams"]]
    if not streams:
        raise CheckFailed(f"no log stream of run(s) {', '.join(run_ids) or '(none)'} in {group}: Glue wrote the "
                          "job's continuous logs elsewhere (look in /aws-glue/jobs/logs-v2)")
    if not found[0].get("retentionInDays"):
        raise CheckFailed(f"{group} has no retention: its events are kept, and billed, forever")
    return f"{len(streams)} stream(s) of the run in {group}, kept {found[0]['retentionInDays']} days"


def leftover_logs(logs: Any, run_ids: Sequence[str], lambda_name: str, job_name: str) -> str:
    """Raise if a run's log stream in the shared groups, or a log group of the deployment's own
    (the Lambda's, the job's continuous logs'), outlived the reset."""
    left = []
    for group in GLUE_LOG_GROUPS:
        for run_id in run_ids:
            try:
                streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=run_id)["logStreams"]
            except logs.exceptions.ResourceNotFoundException:
                break
            left += [f"{group}:{s['logStreamName']}" for s in streams]
    own = [f"/aws/lambda/{lambda_name}", f"/aws-glue/jobs/{job_name}"]  # scripts/lib.sh's two groups
    left += [group for group in own
             if any(g["logGroupName"] == group for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"])]
    if left:
        raise CheckFailed(f"left behind: {', '.join(left)}")
    return f"no log stream of {len(run_ids)} run(s), no {' nor '.join(own)}"


def wait_for_crawler(glue: Any, crawler_name: str, started_after: datetime, *, sleep: Callable[[float], None],
                     clock: Callable[[], float], deadline_s: float = CRAWLER_DEADLINE_S, poll_s: float = POLL_S) -> str:
    """Wait for a crawl that started after the job run began to end; raise unless it succeeded."""
    start = clock()
    while True:
        crawler = glue.get_crawler(Name=crawler_name)["Crawler"]
        last = crawler.get("LastCrawl") or {}
        if crawler.get("State") == "READY" and last.get("StartTime") and last["StartTime"] >= started_after:
            if last.get("Status") == "SUCCEEDED":
                return f"crawl of {last['StartTime']:%H:%M:%S} SUCCEEDED"
            raise CheckFailed(f"crawler {crawler_name} {last.get('Status')}: {last.get('ErrorMessage', 'no error message')}. "
                              f"Logs: CloudWatch log group {last.get('LogGroup', '/aws-glue/crawlers')}, "
                              f"stream {last.get('LogStream', crawler_name)}")
        if clock() - start >= deadline_s:
            raise CheckFailed(f"crawler {crawler_name} did not finish a crawl within {deadline_s:g} s "
                              f"(state {crawler.get('State')})")
        sleep(poll_s)


def _cell(value: object) -> object:
    """Athena returns text, DuckDB typed values: compare numbers as numbers, the rest as text."""
    if value is None or value == "":
        return None
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)  # type: ignore[union-attr]
    try:
        return float(text)
    except ValueError:
        return text


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def compare_rows(athena_columns: list[str], athena_rows: list[tuple], local_columns: list[str],
                 local_rows: list[tuple]) -> str | None:
    """None when both answers hold the same rows (run-specific columns aside), else what differs."""
    if [c.lower() for c in athena_columns] != [c.lower() for c in local_columns]:
        return f"columns differ: Athena {athena_columns}, local {local_columns}"
    keep = [i for i, c in enumerate(local_columns) if c.lower() not in RUN_SPECIFIC_COLUMNS]

    def normalized(rows: list[tuple]) -> list[tuple]:
        return sorted((tuple(_cell(r[i]) for i in keep) for r in rows), key=repr)

    mine, theirs = normalized(athena_rows), normalized(local_rows)
    if len(mine) != len(theirs):
        return f"{len(mine)} rows on Athena, {len(theirs)} locally"
    for a, b in zip(mine, theirs):
        if len(a) != len(b) or not all(_same(x, y) for x, y in zip(a, b)):
            return f"first differing row: Athena {a}, local {b}"
    return None


def local_queries(lake_dir: Path) -> LocalQuery:
    """DuckDB over a local lake; a table the run left empty answers no rows, as on Athena."""
    from b3_quotes.local_mode.duckdb_views import connect, refresh_catalog

    refresh_catalog(lake_dir)

    def query(sql: str) -> tuple[list[str], list[tuple]]:
        import duckdb

        with connect(lake_dir, read_only=True) as con:
            try:
                cursor = con.execute(sql)
            except duckdb.CatalogException:
                return [], []
            return [d[0] for d in cursor.description or []], cursor.fetchall()

    return query


@dataclass
class AwsCheck:
    clients: Mapping[str, Any]  # glue, athena, s3, logs
    deployment: Deployment
    run: Runner = run_command
    local_query: LocalQuery | None = None
    local_lake: Path | None = None
    sql_dir: Path = REPO / "sql"
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    results: list[Result] = field(default_factory=list)

    def step(self, name: str, action: Callable[[], str]) -> bool:
        try:
            detail = action()
        except CheckFailed as exc:
            self.results.append(Result(name, False, str(exc)))
            return False
        except Exception as exc:  # an unexpected error still ends in the table, and in a reset
            self.results.append(Result(name, False, f"{type(exc).__name__}: {exc}"))
            return False
        self.results.append(Result(name, True, detail))
        return True

    def script(self, args: Sequence[str], env: Mapping[str, str]) -> str:
        completed = self.run(args, env)
        if completed.returncode != 0:
            raise CheckFailed(f"exit {completed.returncode}: {last_line(completed.stdout or '')}")
        return last_line(completed.stdout or "")

    def run_all(self) -> bool:
        env = self.deployment.environment()
        bucket, database, job = env["BUCKET"], env["GLUE_DATABASE"], env["GLUE_JOB_NAME"]
        glue = self.clients["glue"]
        marks: dict[str, datetime] = {}
        run_ids: list[str] = []
        try:
            if not self.step("bootstrap", lambda: self.script(["bash", "scripts/bootstrap_aws.sh"], env)):
                return False

            def scrape() -> str:
                marks["scrape"] = self.now() - CLOCK_SKEW  # run and crawl times are AWS's clock

                return self.script([sys.executable, "scraper/scraper_upload.py", "--source", "sample"], env)

            if not self.step(f"scrape sample to s3://{bucket}", scrape):
                return False
            def lambda_run() -> str:
                try:
                    return wait_for_glue_runs(glue, job, marks["scrape"], sleep=self.sleep, clock=self.clock)
                finally:
                    run_ids.extend(r["Id"] for r in glue.get_job_runs(JobName=job)["JobRuns"])

            if not self.step("Lambda -> Glue run, final state", lambda_run):
                return False
            self.step("job's logs in its own group, with a retention",
                      lambda: own_log_group(self.clients["logs"], job, run_ids))
            self.step("rows in Athena before the crawl", lambda: self._projected_rows(database, env["ATHENA_WORKGROUP"]))
            self.step("crawler, last crawl", lambda: wait_for_crawler(
                glue, env["CRAWLER_NAME"], marks["scrape"], sleep=self.sleep, clock=self.clock))
            self.step("ScriptLocation holds Glue Studio's script", lambda: script_is_generated(
                glue, self.clients["s3"], job, (REPO / "etl" / "glue_job.py").read_bytes()))

            def bare_run() -> str:
                run_id = glue.start_job_run(JobName=job)["JobRunId"]  # no arguments: the job's defaults
                run_ids.append(run_id)
                return wait_for_job_run(glue, job, run_id, sleep=self.sleep, clock=self.clock)

            self.step("run with no arguments", bare_run)
            local: list[LocalQuery] = []
            if self.step("local run of the sample (DuckDB)", lambda: self._local_run(env, local)):
                for sql_file in sorted(self.sql_dir.glob("*.sql")):
                    self.step(f"Athena = local: {sql_file.name}",
                              lambda f=sql_file: self._compare(f, local[0], database, env["ATHENA_WORKGROUP"]))
            return all(r.passed for r in self.results)
        finally:
            reset = self.step("reset", lambda: self.script(["bash", "scripts/reset_aws.sh"],
                                                           {**env, "CONFIRM_AWS_RESET": "YES"}))
            if reset:
                self.step("no logs left behind", lambda: leftover_logs(self.clients["logs"], run_ids, env["LAMBDA_NAME"],
                                                                          env["GLUE_JOB_NAME"]))

    def _local_run(self, env: Mapping[str, str], into: list[LocalQuery]) -> str:
        """The same sample through the local pipeline (Spark on a laptop: Java needed)."""
        if self.local_query is not None:
            into.append(self.local_query)
            return "given"
        lake = self.local_lake or Path(tempfile.mkdtemp(prefix="b3-aws-check-"))
        local_env = {k: "" for k in ("BUCKET", "AWS_ENDPOINT_URL")} | {"LAKE_DIR": str(lake)}
        detail = self.script([sys.executable, "scraper/scraper_upload.py", "--source", "sample", "--lake-dir", str(lake)],
                             local_env)
        into.append(local_queries(lake))
        return detail

    def _projected_rows(self, database: str, workgroup: str) -> str:
        """quotes_daily's partitions are projected (no catalog partition, no crawl): Athena reads
        a run's rows as soon as the run ends, given the ticker the projection injects."""
        from b3_quotes.runtime.athena import AthenaQueryError, run_athena_query

        try:
            shown = run_athena_query(self.clients["athena"], PROJECTED_ROWS_SQL, database=database,
                                     workgroup=workgroup, sleep=self.sleep)
        except AthenaQueryError as exc:
            raise CheckFailed(str(exc)) from exc
        sessions, last = (shown.rows[0] if shown.rows else (None, None))
        if not sessions or int(sessions) == 0:
            raise CheckFailed(f"no row of PETR4 in quotes_daily through partition projection "
                              f"(query {shown.query_execution_id})")
        return f"{int(sessions)} sessions of PETR4 in quotes_daily, the last dt={last}"

    def _compare(self, sql_file: Path, local: LocalQuery, database: str, workgroup: str) -> str:
        from b3_quotes.catalog.query import bind_params
        from b3_quotes.runtime.athena import AthenaQueryError, run_athena_query

        sql = bind_params(sql_file.read_text())  # each ${name} at its file's default
        try:
            athena = run_athena_query(self.clients["athena"], sql, database=database, workgroup=workgroup,
                                      sleep=self.sleep)
        except AthenaQueryError as exc:
            raise CheckFailed(str(exc)) from exc
        columns, rows = local(sql)
        if not columns:  # the local run left that table empty
            columns = athena.columns
        difference = compare_rows(athena.columns, athena.rows, columns, rows)
        if difference:
            raise CheckFailed(f"{difference} (query {athena.query_execution_id})")
        return f"{len(athena.rows)} rows equal"


def format_results(results: list[Result]) -> str:
    width = max([len(r.step) for r in results] + [4])
    lines = [f"{'step'.ljust(width)}  result  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{r.step.ljust(width)}  {'PASS' if r.passed else 'FAIL'}    {r.detail}" for r in results]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None,
         session_factory: Callable[[str], Any] | None = None) -> int:
    environ = os.environ if environ is None else environ
    if environ.get("B3_AWS_CHECK") != "1":
        print("error: aws-check creates and deletes real AWS resources (a few cents): set B3_AWS_CHECK=1 to run it",
              file=sys.stderr)
        return 2
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = (session_factory or (lambda r: boto3.Session(region_name=r)))(region)
    try:
        account = session.client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        print(f"error: no valid AWS credentials ({exc}): run 'aws configure' or export AWS_PROFILE", file=sys.stderr)
        return 2
    roles = {k: environ[k] for k in ("GLUE_ROLE_ARN", "LAMBDA_ROLE_ARN") if environ.get(k)}
    deployment = Deployment(new_check_id(), region, roles)
    print(f"aws-check in account {account}, region {region}, names {deployment.prefix}-*", file=sys.stderr)
    check = AwsCheck({name: session.client(name) for name in ("glue", "athena", "s3", "logs")}, deployment)
    passed = check.run_all()
    print(format_results(check.results))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
