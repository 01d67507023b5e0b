"""The Glue job's arguments as Glue applies them, and its manifest loop."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from contract.layout import MANIFESTS, PROCESSED_RUNS, REJECTED_MANIFESTS
from etl import glue_job
from etl.glue_job import JOB_ARGUMENTS, refine_run
from etl.manifests import pending_manifest_keys
from tests.conftest import SAMPLE_DIR
from tests.glue_harness import glue_argv, render_job_definition, use_awsglue_standin

JOB = "b3-quotes-refine"
VALUES = {"BUCKET": "b3-test-lake", "CRAWLER_NAME": "b3-quotes-crawler", "REGION": "sa-east-1",
          "GLUE_ROLE_ARN": "arn:aws:iam::123456789012:role/b3-quotes-glue"}
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


def test_console_run_resolves_from_the_defaults_alone(defaults):
    args = resolve(glue_argv(JOB, defaults, {}))
    assert args["manifest_key"] == ""  # no specific manifest: refine what is pending
    assert (args["lake_root"], args["crawler_name"], args["aws_region"]) == (
        "s3://b3-test-lake", "b3-quotes-crawler", "sa-east-1")
    assert args["JOB_NAME"] == JOB


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

    def __call__(self, spark, lake_root, manifests):
        self.rounds.append([m.key for m in manifests])
        if len(self.rounds) <= self.arrivals:  # a scrape commits while this round runs
            write_manifest(self.lake, f"late-{len(self.rounds)}.json", manifest(f"late-{len(self.rounds)}"))
        return {"daily_rows": 10, "monthly_rows": 1, "raw_days_read": 3}


def test_refine_run_refines_a_manifest_that_arrived_while_it_was_busy(tmp_path):
    first = write_manifest(tmp_path, "run-a.json", manifest("run-a"))
    refine = RecordingRefine(tmp_path, arrivals=1)
    totals = refine_run(None, str(tmp_path), first, refine=refine, log=lambda m: None)
    assert refine.rounds == [[first], [f"{MANIFESTS}/late-1.json"]]
    assert totals == {"runs": 2, "daily_rows": 20, "monthly_rows": 2, "set_aside": 0, "raw_days_read": 6,
                      "written": {}}
    assert sorted(p.name for p in (tmp_path / PROCESSED_RUNS).iterdir()) == ["late-1.json", "run-a.json"]
    assert pending_manifest_keys(str(tmp_path)) == []


def test_refine_run_extra_rounds_are_bounded(tmp_path):
    write_manifest(tmp_path, "run-a.json", manifest("run-a"))
    refine = RecordingRefine(tmp_path, arrivals=100)  # a manifest lands during every round
    said = []
    totals = refine_run(None, str(tmp_path), "", refine=refine, extra_rounds=2, log=said.append)
    assert len(refine.rounds) == 3 and totals["runs"] == 3
    assert pending_manifest_keys(str(tmp_path)) == [f"{MANIFESTS}/late-3.json"]  # left for the next run
    assert said == ["1 manifest(s) still arriving after 3 rounds: the next run refines them"]


def test_run_without_manifest_refines_pending_and_does_nothing_when_none(tmp_path):
    refine = RecordingRefine(tmp_path)
    assert refine_run(None, str(tmp_path), "", refine=refine) == {
        "runs": 0, "daily_rows": 0, "monthly_rows": 0, "set_aside": 0, "raw_days_read": 0, "written": {}}
    assert refine.rounds == [] and not (tmp_path / "refined").exists()
    pending = write_manifest(tmp_path, "run-b.json", manifest("run-b"))
    assert refine_run(None, str(tmp_path), "", refine=refine)["runs"] == 1
    assert refine.rounds == [[pending]]


BAD_MANIFESTS = {
    "truncated.json": b'{"run_id": "x", "partitions": ["2020-03-0',
    "foreign.json": {"Version": "2012-10-17", "Statement": []},
    "a-list.json": ["2020-03-02"],
    "binary.json": b"\x00\xff\xfe\x01",
    "bad-day.json": {"run_id": "y", "partitions": ["03/02/2020"], "tickers": ["PETR4"]},
    "no-tickers.json": {"run_id": "z", "partitions": ["2020-03-02"], "tickers": []},
}


def test_malformed_and_foreign_manifests_are_set_aside_and_the_others_refined(tmp_path):
    good = write_manifest(tmp_path, "run-good.json", manifest("run-good"))
    for name, body in BAD_MANIFESTS.items():
        write_manifest(tmp_path, name, body)
    refine, said = RecordingRefine(tmp_path), []
    totals = refine_run(None, str(tmp_path), f"{MANIFESTS}/truncated.json", refine=refine, log=said.append)
    assert refine.rounds == [[good]] and totals["runs"] == 1 and totals["set_aside"] == len(BAD_MANIFESTS)
    for name in BAD_MANIFESTS:
        (warning,) = [s for s in said if f"{MANIFESTS}/{name} set aside" in s]
        assert warning.startswith("warning: ")
        record = json.loads((tmp_path / REJECTED_MANIFESTS / name).read_text())
        assert record["manifest_key"] == f"{MANIFESTS}/{name}" and record["reason"]
    assert (tmp_path / MANIFESTS / "truncated.json").is_file()  # set aside, not deleted
    # Never retried: the next run finds nothing pending.
    assert pending_manifest_keys(str(tmp_path)) == []
    refine_run(None, str(tmp_path), "", refine=refine, log=said.append)
    assert refine.rounds == [[good]]


def test_set_aside_reasons_name_the_problem(tmp_path):
    for name, body in BAD_MANIFESTS.items():
        write_manifest(tmp_path, name, body)
    refine_run(None, str(tmp_path), "", refine=RecordingRefine(tmp_path), log=lambda m: None)
    reasons = {p.name: json.loads(p.read_text())["reason"] for p in (tmp_path / REJECTED_MANIFESTS).iterdir()}
    assert reasons["truncated.json"].startswith("not UTF-8 JSON")
    assert reasons["binary.json"].startswith("not UTF-8 JSON")
    assert reasons["a-list.json"] == "expected a JSON object, found list"
    assert reasons["foreign.json"] == reasons["bad-day.json"] == "`partitions` must be a non-empty list of YYYY-MM-DD days"
    assert reasons["no-tickers.json"] == "`tickers` must be a non-empty list of ticker codes"


def scrape_without_trigger(lake: Path, ticker: str, start: str, end: str, run_id: str) -> None:
    from pipeline.lake import LocalStorage
    from scraper.raw_writer import write_raw_quotes
    from scraper.sources.csv_files import CsvSource

    quotes = CsvSource(SAMPLE_DIR).fetch([ticker], dt.date.fromisoformat(start), dt.date.fromisoformat(end)).quotes
    write_raw_quotes(LocalStorage(lake), quotes, source="csv", symbols={},
                     now=dt.datetime(2020, 3, 14, tzinfo=dt.UTC), run_id=run_id)


def test_main_started_by_hand_on_an_empty_lake_succeeds_doing_nothing(spark, defaults, tmp_path):
    from awsglue.job import Job

    crawled = []
    glue_job.main(glue_argv(JOB, {**defaults, "--lake_root": str(tmp_path)}, {}), after_write=crawled.append)
    assert crawled == [] and Job.runs[-1]["committed"]
    assert list(tmp_path.iterdir()) == []


def test_main_started_by_hand_refines_every_pending_manifest(spark, defaults, tmp_path):
    lake = tmp_path / "lake"
    scrape_without_trigger(lake, "VALE3", "2020-03-02", "2020-03-06", "run-a")  # 5 sessions
    scrape_without_trigger(lake, "PETR4", "2020-03-09", "2020-03-13", "run-b")  # 5 sessions
    crawled = []
    glue_job.main(glue_argv(JOB, {**defaults, "--lake_root": str(lake)}, {}), after_write=crawled.append)
    assert crawled == ["b3-quotes-crawler"]
    daily = sorted(p.relative_to(lake / "refined/quotes_daily").parent.as_posix()
                   for p in (lake / "refined/quotes_daily").rglob("*.parquet"))
    assert len(daily) == 10
    assert daily[0] == "dt=2020-03-02/ticker=VALE3" and daily[-1] == "dt=2020-03-13/ticker=PETR4"
    assert sorted(p.name for p in (lake / PROCESSED_RUNS).iterdir()) == ["run-a.json", "run-b.json"]
