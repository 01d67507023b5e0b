"""The Glue job as Glue runs it: its arguments, its manifest loop, the visual job's generated script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from b3_quotes.contract.layout import MANIFESTS, PROCESSED_RUNS, SET_ASIDE_MANIFESTS, RunManifest
from b3_quotes.storage import Lake
from etl import glue_job
from etl.glue_job import JOB_ARGUMENTS, PENDING, RunTotals, StepsDone, plan_steps, refine_run
from etl.manifests import pending_manifest_keys
from etl.refine import Counts
from tests.conftest import REPO, SAMPLE_DIR
from tests.glue_harness import (
    JOB,
    JOB_VALUES,
    generate_visual_script,
    glue_argv,
    render_job_definition,
    run_glue_script,
    scrape_without_trigger,
    use_awsglue_standin,
)

VALUES = JOB_VALUES
MANIFEST_KEY = "raw/_manifests/20240103T210500Z-a1b2c3.json"


@pytest.fixture
def defaults(monkeypatch) -> dict[str, str]:
    use_awsglue_standin(monkeypatch)
    # main() sets the process's region from --aws_region: give it values to restore.
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return render_job_definition(VALUES)["DefaultArguments"]


def resolve(argv: list[str]) -> dict[str, str]:
    from awsglue.utils import getResolvedOptions

    return getResolvedOptions(argv, JOB_ARGUMENTS)


def test_job_definition_has_a_default_for_every_required_option(defaults):
    # JOB_NAME is the one option Glue itself passes to every run.
    assert [o for o in JOB_ARGUMENTS if f"--{o}" not in defaults] == ["JOB_NAME"]


def test_job_definition_has_no_empty_default():
    # Glue passes a key with an empty value as a bare flag: every default needs a value.
    defaults = render_job_definition(VALUES)["DefaultArguments"]
    assert [name for name, value in defaults.items() if not value.strip()] == []


def test_console_run_resolves_from_the_defaults_alone(defaults):
    args = resolve(glue_argv(JOB, defaults, {}))
    assert args["manifest_key"] == "pending"  # no specific manifest: refine what is pending
    assert (args["lake_root"], args["crawler_name"], args["aws_region"]) == (
        "s3://b3-test-lake", "b3-quotes-crawler", "sa-east-1")
    assert args["JOB_NAME"] == JOB


def test_a_bare_option_fails_the_run_as_glue_passes_an_empty_value(defaults):
    # What an empty default did to every run started by hand: Glue passed `--manifest_key` bare.
    from awsglue.utils import GlueArgumentError

    argv = glue_argv(JOB, {**defaults, "--manifest_key": ""}, {})
    assert "--manifest_key" in argv and argv[argv.index("--manifest_key") + 1].startswith("--")
    with pytest.raises(GlueArgumentError, match="argument --manifest_key: expected one argument"):
        resolve(argv)


def test_lambda_run_arguments_override_the_defaults(defaults):
    args = resolve(glue_argv(JOB, defaults, {"--manifest_key": MANIFEST_KEY}))
    assert args["manifest_key"] == MANIFEST_KEY and args["lake_root"] == "s3://b3-test-lake"


@pytest.mark.parametrize("option", [o for o in JOB_ARGUMENTS if o != "JOB_NAME"])
def test_a_requested_option_without_default_fails_the_run(defaults, option):
    # What a run without the Lambda's --manifest_key met before the job had a default for it.
    from awsglue.utils import GlueArgumentError

    without = {k: v for k, v in defaults.items() if k != f"--{option}"}
    with pytest.raises(GlueArgumentError, match=f"--{option}"):
        resolve(glue_argv(JOB, without, {}))


def test_unknown_options_are_ignored(defaults):
    args = resolve(glue_argv(JOB, defaults, {"--enable-auto-scaling": "true", "--some_future_option": "x"}))
    assert "some_future_option" not in args and "enable_auto_scaling" not in args


def write_manifest(lake: Path, name: str, body: object | bytes) -> str:
    folder = lake / MANIFESTS
    folder.mkdir(parents=True, exist_ok=True)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    (folder / name).write_bytes(data)
    return f"{MANIFESTS}/{name}"


def manifest(run_id: str, ticker: str = "PETR4", day: str = "2020-03-02") -> dict:
    return {"run_id": run_id, "partitions": [day], "tickers": [ticker]}


class RecordingRefine:
    """Stands in for the Spark refine: records each round's manifests, may land new ones meanwhile."""

    def __init__(self, lake: Path, arrivals: int = 0) -> None:
        self.lake, self.arrivals, self.rounds = lake, arrivals, []

    def __call__(self, spark, lake, manifests):
        self.rounds.append([m.key for m in manifests])
        if len(self.rounds) <= self.arrivals:  # a scrape commits while this round runs
            write_manifest(self.lake, f"late-{len(self.rounds)}.json", manifest(f"late-{len(self.rounds)}"))
        return StepsDone(Counts({"quotes_daily": 10, "quotes_monthly": 1}, raw_days_read=3), [], [])


def test_refine_run_refines_a_manifest_that_arrived_while_it_was_busy(tmp_path):
    first = write_manifest(tmp_path, "run-a.json", manifest("run-a"))
    refine = RecordingRefine(tmp_path, arrivals=1)
    totals = refine_run(None, Lake.local(tmp_path), first, refine=refine)
    assert refine.rounds == [[first], [f"{MANIFESTS}/late-1.json"]]
    assert totals == RunTotals(Counts({"quotes_daily": 20, "quotes_monthly": 2}, raw_days_read=6), runs=2)
    assert sorted(p.name for p in (tmp_path / PROCESSED_RUNS).iterdir()) == ["late-1.json", "run-a.json"]
    assert pending_manifest_keys(Lake.local(tmp_path)) == []


def test_refine_run_extra_rounds_are_bounded(tmp_path, said):
    write_manifest(tmp_path, "run-a.json", manifest("run-a"))
    refine = RecordingRefine(tmp_path, arrivals=100)  # a manifest lands during every round
    totals = refine_run(None, Lake.local(tmp_path), "", refine=refine, extra_rounds=2)
    assert len(refine.rounds) == 3 and totals.runs == 3
    assert pending_manifest_keys(Lake.local(tmp_path)) == [f"{MANIFESTS}/late-3.json"]  # left for the next run
    assert said() == ["1 manifest(s) still arriving after 3 rounds: the next run refines them"]


@pytest.mark.parametrize("manifest_key", ["", PENDING])
def test_run_without_manifest_refines_pending_and_does_nothing_when_none(tmp_path, manifest_key):
    refine = RecordingRefine(tmp_path)
    assert refine_run(None, Lake.local(tmp_path), manifest_key, refine=refine) == RunTotals(
        Counts({"quotes_daily": 0, "quotes_monthly": 0}), runs=0, set_aside=0)
    assert refine.rounds == [] and not (tmp_path / "refined").exists()
    pending = write_manifest(tmp_path, "run-b.json", manifest("run-b"))
    assert refine_run(None, Lake.local(tmp_path), manifest_key, refine=refine).runs == 1
    assert refine.rounds == [[pending]]  # "pending" is no manifest's name: nothing set aside


BAD_MANIFESTS = {
    "truncated.json": b'{"run_id": "x", "partitions": ["2020-03-0',
    "foreign.json": {"Version": "2012-10-17", "Statement": []},
    "a-list.json": ["2020-03-02"],
    "binary.json": b"\x00\xff\xfe\x01",
    "bad-day.json": {"run_id": "y", "partitions": ["03/02/2020"], "tickers": ["PETR4"]},
    "no-tickers.json": {"run_id": "z", "partitions": ["2020-03-02"], "tickers": []},
}


def test_malformed_and_foreign_manifests_are_set_aside_and_the_others_refined(tmp_path, said):
    good = write_manifest(tmp_path, "run-good.json", manifest("run-good"))
    for name, body in BAD_MANIFESTS.items():
        write_manifest(tmp_path, name, body)
    refine = RecordingRefine(tmp_path)
    totals = refine_run(None, Lake.local(tmp_path), f"{MANIFESTS}/truncated.json", refine=refine)
    assert refine.rounds == [[good]] and totals.runs == 1 and totals.set_aside == len(BAD_MANIFESTS)
    for name in BAD_MANIFESTS:
        (warning,) = [s for s in said() if f"{MANIFESTS}/{name} set aside" in s]
        assert warning.startswith("warning: ")
        record = json.loads((tmp_path / SET_ASIDE_MANIFESTS / name).read_text())
        assert record["manifest_key"] == f"{MANIFESTS}/{name}" and record["reason"]
    assert (tmp_path / MANIFESTS / "truncated.json").is_file()  # set aside, not deleted
    # Never retried: the next run finds nothing pending.
    assert pending_manifest_keys(Lake.local(tmp_path)) == []
    refine_run(None, Lake.local(tmp_path), "", refine=refine)
    assert refine.rounds == [[good]]


def test_set_aside_reasons_name_the_problem(tmp_path):
    for name, body in BAD_MANIFESTS.items():
        write_manifest(tmp_path, name, body)
    refine_run(None, Lake.local(tmp_path), "", refine=RecordingRefine(tmp_path))
    reasons = {p.name: json.loads(p.read_text())["reason"] for p in (tmp_path / SET_ASIDE_MANIFESTS).iterdir()}
    assert reasons["truncated.json"].startswith("not UTF-8 JSON")
    assert reasons["binary.json"].startswith("not UTF-8 JSON")
    assert reasons["a-list.json"] == "expected a JSON object, found list"
    assert reasons["foreign.json"] == reasons["bad-day.json"] == "`partitions` must be a non-empty list of YYYY-MM-DD days"
    assert reasons["no-tickers.json"] == "`tickers` must be a non-empty list of ticker codes"


@pytest.fixture
def crawled(monkeypatch) -> list[str]:
    """The crawlers a run started, its one catalog call replaced (no Glue here)."""
    started: list[str] = []
    monkeypatch.setattr(glue_job, "start_crawler", lambda crawler_name, glue_client=None: started.append(crawler_name) or True)
    return started


def test_main_started_by_hand_on_an_empty_lake_succeeds_doing_nothing(spark, defaults, crawled, tmp_path):
    from awsglue.job import Job

    glue_job.main(glue_argv(JOB, {**defaults, "--lake_root": str(tmp_path)}, {}))
    assert crawled == [] and len(Job.runs) == 1 and Job.runs[-1]["committed"]
    assert list(tmp_path.iterdir()) == []


def test_main_started_by_hand_refines_every_pending_manifest(spark, defaults, crawled, tmp_path):
    lake = tmp_path / "lake"
    scrape_without_trigger(lake, "VALE3", "2020-03-02", "2020-03-06", "run-a")  # 5 sessions
    scrape_without_trigger(lake, "PETR4", "2020-03-09", "2020-03-13", "run-b")  # 5 sessions
    glue_job.main(glue_argv(JOB, {**defaults, "--lake_root": str(lake)}, {}))
    assert crawled == ["b3-quotes-crawler"]
    daily = sorted(p.relative_to(lake / "refined/quotes_daily").parent.as_posix()
                   for p in (lake / "refined/quotes_daily").rglob("*.parquet"))
    assert len(daily) == 10
    assert daily[0] == "dt=2020-03-02/ticker=VALE3" and daily[-1] == "dt=2020-03-13/ticker=PETR4"
    assert sorted(p.name for p in (lake / PROCESSED_RUNS).iterdir()) == ["run-a.json", "run-b.json"]
    from awsglue.job import Job  # the stand-in main() used: one init, then one commit, around the refine

    assert [(run["name"], run["committed"]) for run in Job.runs] == [(JOB, True)]


# The job as Glue runs it: a child process with only the job's zip (--extra-py-files) and the
# stand-in awsglue on its path, over a local lake, the catalog on a moto server.
@pytest.fixture
def glue_account(tmp_path, moto_endpoint, visual_source):
    """A moto server holding the catalog database, the tables of b3_quotes/contract/tables.py and the crawler."""
    import boto3

    from b3_quotes.contract.tables import TABLES

    lake = tmp_path / "lake"
    glue = boto3.client("glue", endpoint_url=moto_endpoint, region_name="sa-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")
    glue.create_database(DatabaseInput={"Name": VALUES["GLUE_DATABASE"]})
    for table in TABLES.values():
        glue.create_table(DatabaseName=VALUES["GLUE_DATABASE"],
                          TableInput=table.glue_table_input(str(lake), "2019-01-02"))
    glue.create_crawler(Name=VALUES["CRAWLER_NAME"], Role=VALUES["GLUE_ROLE_ARN"],
                        DatabaseName=VALUES["GLUE_DATABASE"], Targets={"S3Targets": [{"Path": str(lake)}]})
    return {"endpoint": moto_endpoint, "glue": glue, "lake": lake, "tmp": tmp_path, "visual_source": visual_source}


@pytest.fixture(scope="module")
def visual_source(tmp_path_factory) -> Path:
    """The visual source's object, as bootstrap uploads it, made once by the packaging command itself."""
    source = tmp_path_factory.mktemp("visual-source") / "raw_quotes.parquet"
    made = subprocess.run([sys.executable, "-m", "b3_quotes.deploy.package", "visual-source", str(source)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    return source


def run_as_glue(account: dict, script: Path) -> tuple[list[dict], subprocess.CompletedProcess]:
    """Run `script` with the job's defaults over the local lake; the Job's init/commit calls, the process."""
    from b3_quotes.deploy.package import build

    tmp, lake = account["tmp"], account["lake"]
    build("job", tmp / "etl.zip")
    source = lake / "scripts" / "visual-source" / "raw_quotes.parquet"
    source.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(account["visual_source"], source)
    defaults = render_job_definition(VALUES)["DefaultArguments"]
    record = tmp / "job-calls.jsonl"
    done = run_glue_script(script, glue_argv(JOB, {**defaults, "--lake_root": str(lake)}, {}), tmp / "etl.zip",
                           {"AWSGLUE_STANDIN_RECORD": str(record), "AWSGLUE_STANDIN_S3_ROOT": str(lake),
                            "AWS_ENDPOINT_URL": account["endpoint"], "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing"}, cwd=tmp)
    calls = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return calls, done


def visual_script(tmp: Path) -> Path:
    script = tmp / "generated" / "b3-quotes-refine.py"
    script.parent.mkdir()
    script.write_text(generate_visual_script(render_job_definition(VALUES)))
    return script


def script_job(tmp: Path) -> Path:
    # Glue downloads ScriptLocation (bootstrap uploads etl/glue_job.py there) and runs it.
    script = tmp / "scripts" / "glue_job.py"
    script.parent.mkdir()
    script.write_bytes((REPO / "etl" / "glue_job.py").read_bytes())
    return script


def registered(glue, table: str) -> list[tuple[list[str], str]]:
    partitions = glue.get_partitions(DatabaseName=VALUES["GLUE_DATABASE"], TableName=table)["Partitions"]
    return sorted((p["Values"], p["StorageDescriptor"]["Location"]) for p in partitions)


def test_visual_job_run_refines_a_pending_scrape_with_one_init_and_one_commit(glue_account):
    """The deployed job as Glue runs it. The script job runs the same `run_in_glue` from the same zip
    (test_job_started_by_hand_on_a_fresh_lake_*), and its `main` refines in this process
    (test_main_started_by_hand_refines_every_pending_manifest): a second refining child would show
    nothing more."""
    lake, glue = glue_account["lake"], glue_account["glue"]
    scrape_without_trigger(lake, "PETR4", "2020-03-02", "2020-03-04", "run-a")  # 3 sessions
    calls, done = run_as_glue(glue_account, visual_script(glue_account["tmp"]))
    assert done.returncode == 0, done.stderr[-3000:]
    assert calls == [{"event": "init", "name": JOB}, {"event": "commit"}]
    assert "refined 1 scrape run(s) (pending)" in done.stdout
    assert sorted(p.name for p in (lake / PROCESSED_RUNS).iterdir()) == ["run-a.json"]
    # Athena projects the ticker-session tables' partitions: the run adds none to the catalog.
    assert registered(glue, "quotes_daily") == registered(glue, "quotes_monthly") == []
    assert sorted(p.name for p in (lake / "refined/quotes_daily").iterdir()) == [
        "dt=2020-03-02", "dt=2020-03-03", "dt=2020-03-04"]
    assert glue.get_crawler(Name=VALUES["CRAWLER_NAME"])["Crawler"]["State"] == "RUNNING"


@pytest.mark.parametrize("make_script", [visual_script, script_job], ids=["visual-job", "script-job"])
def test_job_started_by_hand_on_a_fresh_lake_succeeds_doing_nothing(glue_account, make_script):
    calls, done = run_as_glue(glue_account, make_script(glue_account["tmp"]))
    assert done.returncode == 0, done.stderr[-3000:]
    assert calls == [{"event": "init", "name": JOB}, {"event": "commit"}]
    assert "refined 0 scrape run(s) (pending)" in done.stdout
    assert sorted(p.name for p in glue_account["lake"].iterdir()) == ["scripts"]  # nothing written
    assert registered(glue_account["glue"], "quotes_daily") == []
    assert glue_account["glue"].get_crawler(Name=VALUES["CRAWLER_NAME"])["Crawler"]["State"] == "READY"


def test_visual_job_source_is_one_fixed_object():
    (source,) = [n["S3ParquetSource"] for n in render_job_definition(VALUES)["CodeGenConfigurationNodes"].values()
                 if "S3ParquetSource" in n]
    assert source["Paths"] == ["s3://b3-test-lake/scripts/visual-source/raw_quotes.parquet"]
    assert not source.get("Recurse") and "Exclusions" not in source


# --- a backfill refined a year at a time ---------------------------------------------------------


def run_manifest(key: str, days: list[str], tickers: list[str]) -> RunManifest:
    files = [f"raw/quotes/dt={d}/csv-{key}.parquet" for d in days]
    return RunManifest(key, days, tickers, f"{MANIFESTS}/{key}.json", files=files)


def test_plan_steps_cuts_the_remaining_days_in_whole_years_and_says_which_runs_each_step_finishes():
    backfill = run_manifest("backfill", ["2018-12-28", "2019-01-02", "2019-12-30", "2020-01-02", "2020-03-13"],
                            ["PETR4", "VALE3"])
    daily = run_manifest("daily", ["2020-03-16"], ["PETR4", "ITUB4"])
    # The backfill's 2018 step was committed by a run that stopped after it.
    steps = plan_steps([backfill, daily], {backfill.key: "2018-12-31"}, budget=1)  # a year a step
    assert [(s.year, s.days, s.tickers, s.finished, s.continuing) for s in steps] == [
        ("2019", ["2019-01-02", "2019-12-30"], ["PETR4", "VALE3"], [], [backfill.key]),
        ("2020", ["2020-01-02", "2020-03-13", "2020-03-16"], ["ITUB4", "PETR4", "VALE3"],
         [backfill.key, daily.key], []),
    ]
    # Each step checks the raw files of its own days only.
    assert steps[0].files == ["raw/quotes/dt=2019-01-02/csv-backfill.parquet",
                              "raw/quotes/dt=2019-12-30/csv-backfill.parquet"]
    assert [s.year for s in plan_steps([backfill], {}, budget=1)] == ["2018", "2019", "2020"]
    assert plan_steps([backfill], {backfill.key: "2020-12-31"}) == []  # nothing left: refine_run marks it
    # Years are joined while the step holds at most `budget` ticker-sessions: 2018 is 1 day x 2 tickers,
    # 2019 2 x 2, 2020 3 x 3 (the daily run brings ITUB4).
    assert [(s.years, s.ticker_sessions) for s in plan_steps([backfill, daily], {}, budget=6)] == [
        ("2018-2019", 6), ("2020", 9)]
    (whole,) = plan_steps([backfill, daily], {backfill.key: "2018-12-31"})  # the default: 250 k
    assert (whole.years, whole.year, whole.finished, whole.continuing) == ("2019-2020", "2020",
                                                                           [backfill.key, daily.key], [])
    assert whole.days == ["2019-01-02", "2019-12-30", "2020-01-02", "2020-03-13", "2020-03-16"]


class StopsTheJob(Exception):
    """What Glue's timeout does to a run: it stops, wherever it is."""


def test_a_backfill_stopped_between_years_on_s3_is_finished_by_the_next_run(spark, s3_endpoint, tmp_path, monkeypatch):
    import boto3
    import pyarrow.fs as pafs

    from scraper import scraper_upload
    from tests.helpers import assert_equals_reference, expected_daily

    bucket, root = "b3-backfill-steps", "s3://b3-backfill-steps"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    # Every PUT of a key adds a version: a partition written twice would show two.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    csv = ["--source", "csv", "--csv-dir", str(SAMPLE_DIR), "--tickers", "PETR4,VALE3"]
    assert scraper_upload.main(["--bucket", bucket, *csv, "--start", "2019-12-02", "--end", "2020-01-31"]) == 0
    (backfill,) = pending_manifest_keys(Lake.at(root))

    real_commit = glue_job.commit_step
    monkeypatch.setenv("REFINE_STEP_SESSIONS", "1")  # a year a step: two months of two tickers would be one

    def commit_then_stop(*args, **kwargs):
        real_commit(*args, **kwargs)
        raise StopsTheJob

    monkeypatch.setattr(glue_job, "commit_step", commit_then_stop)
    with pytest.raises(StopsTheJob):
        refine_run(spark, Lake.at(root), backfill)  # 2019 refined and committed, then the timeout
    monkeypatch.setattr(glue_job, "commit_step", real_commit)

    def refined_keys() -> list[str]:
        listed = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="refined/quotes_")
        return [v["Key"] for page in listed for v in page.get("Versions", [])]

    record = json.loads(s3.get_object(Bucket=bucket, Key=f"refined/_partial_runs/{backfill.rsplit('/', 1)[-1]}")["Body"].read())
    assert record["refined_through"] == "2019-12-31"
    assert {k.split("=")[1][:4] for k in refined_keys()} == {"2019"}  # dt=, month=, year=: 2019 only
    assert pending_manifest_keys(Lake.at(root)) == [backfill]

    # The next day's scrape starts the next run, which refines its own day and the backfill's 2020.
    assert scraper_upload.main(["--bucket", bucket, *csv, "--start", "2020-02-03", "--end", "2020-02-03"]) == 0
    daily = [k for k in pending_manifest_keys(Lake.at(root)) if k != backfill]
    assert refine_run(spark, Lake.at(root), daily[0]).runs == 2
    assert pending_manifest_keys(Lake.at(root)) == []
    assert s3.list_objects_v2(Bucket=bucket, Prefix="refined/_partial_runs/").get("KeyCount") == 0

    keys = refined_keys()
    assert len(keys) == len(set(keys))  # no refined object written twice, across both runs
    local = tmp_path / "copy"
    s3fs = pafs.S3FileSystem(region="us-east-1", endpoint_override=s3_endpoint.removeprefix("http://"),
                             scheme="http", access_key="testing", secret_key="testing")
    pafs.copy_files(f"{bucket}/refined", str(local / "refined"), source_filesystem=s3fs,
                    destination_filesystem=pafs.LocalFileSystem())
    # What a clean run gives, computed from the CSV files with pandas.
    assert_equals_reference(local, expected_daily("2019-12-02", "2020-02-03"))


def test_the_crawler_is_started_only_for_a_compact_year_no_crawl_was_started_for(tmp_path, aws_credentials, said):
    """A crawl bills its 10-minute minimum: a daily run that only rewrites this year's compact files starts none."""
    import boto3
    from moto import mock_aws

    def compact_year(year: str) -> None:
        for table in ("quotes_daily_compact", "quotes_monthly_compact"):
            folder = tmp_path / "refined" / table / f"year={year}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "part-0.parquet").write_bytes(b"")

    with mock_aws():
        glue = boto3.client("glue", region_name="us-east-1")
        glue.create_crawler(Name="crawler", Role="arn:aws:iam::123456789012:role/glue",
                            Targets={"S3Targets": [{"Path": "s3://b/refined/quotes_daily_compact/"}]})
        compact_year("2019")
        compact_year("2020")
        lake = Lake.local(tmp_path)
        # The first run after a backfill: both years of both tables are new.
        assert glue_job.crawl_new_partitions(lake, "crawler", glue) == [
            "quotes_daily_compact=2019", "quotes_daily_compact=2020",
            "quotes_monthly_compact=2019", "quotes_monthly_compact=2020"]
        assert glue.get_crawler(Name="crawler")["Crawler"]["State"] == "RUNNING"
        # A daily run in 2020 rewrites that year's files: no new partition, no crawl asked for.
        assert glue_job.crawl_new_partitions(lake, "crawler", glue) == []
        # 2021's first session: a new year, but a crawl is still running, so nothing is recorded ...
        compact_year("2021")
        assert glue_job.crawl_new_partitions(lake, "crawler", glue) == []
        assert said()[-1] == ("crawler crawler already running: the next run starts it for "
                            "quotes_daily_compact=2021, quotes_monthly_compact=2021")
        # ... and the next run, the crawl over, asks again.
        glue.stop_crawler(Name="crawler")
        assert glue_job.crawl_new_partitions(lake, "crawler", glue) == [
            "quotes_daily_compact=2021", "quotes_monthly_compact=2021"]
