"""The S3 raw writer and the Athena helper against moto."""

from __future__ import annotations

import datetime as dt
import io
import json

import boto3
import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests
from moto import mock_aws

from b3_quotes.contract.tables import RAW_QUOTES
from b3_quotes.runtime.athena import AthenaQueryError, run_athena_query, wait_for_query
from b3_quotes.storage import Lake
from scraper.raw_writer import RunStamp, write_raw_run


def test_write_raw_quotes_to_s3_manifest_last(aws_credentials):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="lake")
        frame = pd.DataFrame({
            "ticker": ["PETR4", "VALE3", "PETR4"],
            "trade_date": [dt.date(2021, 6, 24), dt.date(2021, 6, 25), dt.date(2021, 6, 25)],
            "open": [29.0, 111.0, 29.69], "high": [29.5, 113.0, 29.79], "low": [28.8, 110.5, 28.95],
            "close": [29.2, 112.4, 29.10], "adj_close": [29.2, 112.4, 29.10], "volume": [1e6, 2e6, 84950900.0],
        })
        now = dt.datetime(2021, 6, 26, 1, 2, 3, tzinfo=dt.UTC)
        lake = Lake.at("s3://lake", "us-east-1", session=boto3.Session(region_name="us-east-1"))
        run = write_raw_run(lake, {RAW_QUOTES: frame}, RunStamp("csv", {}, now, "r1"))
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"])
        assert keys == sorted(run.keys + ["raw/_manifests/r1.json"])
        assert run.days == ["2021-06-24", "2021-06-25"]
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket="lake", Key=run.keys[1])["Body"].read()))
        assert table.schema.field("trade_date").type == "date32[day]"
        assert str(table.schema.field("ingested_at").type) == "timestamp[us, tz=UTC]"
        assert table.column("ticker").to_pylist() == ["PETR4", "VALE3"]
        assert table.column("volume").to_pylist() == [84950900, 2000000]
        manifest = json.loads(s3.get_object(Bucket="lake", Key="raw/_manifests/r1.json")["Body"].read())
        assert manifest["partitions"] == ["2021-06-24", "2021-06-25"] and manifest["rows"] == 3


def test_athena_query_returns_rows_without_header(aws_credentials):
    with mock_aws():
        athena = boto3.client("athena", region_name="us-east-1")
        athena.create_work_group(Name="b3-quotes", Configuration={
            "ResultConfiguration": {"OutputLocation": "s3://lake/athena-results/"}})
        columns = [{"Name": "ticker", "Type": "varchar"}, {"Name": "close_price", "Type": "double"}]
        rows = [{"Data": [{"VarCharValue": "ticker"}, {"VarCharValue": "close_price"}]},
                {"Data": [{"VarCharValue": "PETR4"}, {"VarCharValue": "29.1"}]},
                {"Data": [{"VarCharValue": "VALE3"}, {"VarCharValue": "112.4"}]}]
        requests.post("http://motoapi.amazonaws.com/moto-api/static/athena/query-results", json={
            "account_id": "123456789012", "region": "us-east-1",
            "results": [{"rows": rows, "column_info": columns}]}, timeout=5)
        result = run_athena_query(athena, "SELECT ticker, close_price FROM quotes_daily",
                                  database="default", workgroup="b3-quotes")
        assert result.columns == ["ticker", "close_price"]
        assert result.rows == [("PETR4", "29.1"), ("VALE3", "112.4")]
        execution = athena.get_query_execution(QueryExecutionId=result.query_execution_id)["QueryExecution"]
        assert execution["QueryExecutionContext"]["Database"] == "default"
        assert execution["WorkGroup"] == "b3-quotes"


class ScriptedAthena:
    """Athena states over successive polls (moto always answers SUCCEEDED at once)."""

    def __init__(self, states, reason="line 1:8: Column 'x' cannot be resolved"):
        self.states = list(states)
        self.reason = reason
        self.stopped = False

    def get_query_execution(self, QueryExecutionId):  # noqa: N803
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"QueryExecution": {"Status": {"State": state, "StateChangeReason": self.reason}}}

    def stop_query_execution(self, QueryExecutionId):  # noqa: N803
        self.stopped = True


def test_wait_for_query_failed_query_raises_with_reason():
    with pytest.raises(AthenaQueryError, match="q1 FAILED: line 1:8: Column 'x' cannot be resolved"):
        wait_for_query(ScriptedAthena(["QUEUED", "RUNNING", "FAILED"]), "q1", sleep=lambda s: None)


def test_wait_for_query_times_out_and_cancels():
    athena = ScriptedAthena(["RUNNING"])
    ticks = iter(range(100))
    with pytest.raises(AthenaQueryError, match="still RUNNING after 3 s; cancelled"):
        wait_for_query(athena, "q2", timeout_s=3, sleep=lambda s: None, clock=lambda: next(ticks))
    assert athena.stopped
