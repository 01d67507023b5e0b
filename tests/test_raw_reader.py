"""The job's raw reader: exactly the files and tickers asked for, read in Spark tasks, on a folder and on S3."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest

from b3_quotes.storage import Lake
from etl.raw_reader import list_raw_days, raw_files, read_raw
from etl.task_errors import LakeFileError, lake_file_errors
from tests.helpers import T0, put_local, raw_file


def rows_of(frame) -> list[tuple]:
    return sorted((r["trade_date"], r["ticker"], r["close"], r["adj_close"], r["volume"]) for r in frame.collect())


def test_read_raw_reads_only_those_days_and_tickers_in_tasks(spark, tmp_path, monkeypatch):
    put_local(tmp_path, "raw/quotes/dt=2024-01-02/csv-a.parquet", raw_file("2024-01-02", {"PETR4": 30.0, "VALE3": 70.0}))
    put_local(tmp_path, "raw/quotes/dt=2024-01-03/csv-a.parquet", raw_file("2024-01-03", {"PETR4": 31.0}))
    put_local(tmp_path, "raw/quotes/dt=2024-01-03/b3-b.parquet", raw_file("2024-01-03", {"VALE3": 71.0}))
    put_local(tmp_path, "raw/quotes/dt=2024-01-04/csv-a.parquet", raw_file("2024-01-04", {"PETR4": 32.0}))
    # A writer killed mid-file leaves only a hidden temporary: never read.
    put_local(tmp_path, "raw/quotes/dt=2024-01-03/.tmp-x1", b"PAR1 truncated")
    root = Lake.local(tmp_path)
    assert list_raw_days(root) == ["2024-01-02", "2024-01-03", "2024-01-04"]
    files = raw_files(root, ["2024-01-03", "2024-01-02", "2024-12-31"])
    assert files == {"2024-01-02": ["raw/quotes/dt=2024-01-02/csv-a.parquet"],
                     "2024-01-03": ["raw/quotes/dt=2024-01-03/b3-b.parquet", "raw/quotes/dt=2024-01-03/csv-a.parquet"],
                     "2024-12-31": []}
    # The driver never opens a raw file: the tasks (other processes) do.
    import pyarrow.parquet

    monkeypatch.setattr(pyarrow.parquet, "ParquetFile", lambda *a, **k: pytest.fail("read in the driver"))
    keys = [k for ks in files.values() for k in ks]
    frame = read_raw(spark, root, keys, ["PETR4"])
    assert frame.dtypes == [("trade_date", "date"), ("ticker", "string"), ("open", "double"), ("high", "double"),
                            ("low", "double"), ("close", "double"), ("adj_close", "double"), ("volume", "bigint"),
                            ("source", "string"), ("ingested_at", "timestamp"), ("run_id", "string"),
                            ("prev_b3_session", "date")]  # absent from the file: null
    assert rows_of(frame) == [(dt.date(2024, 1, 2), "PETR4", 30.0, 27.0, 100),
                              (dt.date(2024, 1, 3), "PETR4", 31.0, pytest.approx(27.9), 100)]
    assert sorted(r["ticker"] for r in read_raw(spark, root, keys, None).collect()) == ["PETR4", "PETR4", "VALE3",
                                                                                        "VALE3"]
    assert frame.select("ingested_at").first()[0] == T0.replace(tzinfo=None)  # UTC session: the instant kept


def test_read_raw_of_no_files_is_empty(spark, tmp_path):
    assert list_raw_days(Lake.local(tmp_path)) == []
    assert read_raw(spark, Lake.local(tmp_path), [], ["PETR4"]).count() == 0


def test_an_unreadable_raw_file_is_named_to_the_driver(spark, tmp_path):
    put_local(tmp_path, "raw/quotes/dt=2024-01-02/csv-a.parquet", raw_file("2024-01-02", {"PETR4": 30.0})[:40])
    with pytest.raises(LakeFileError) as caught, lake_file_errors():
        read_raw(spark, Lake.local(tmp_path), ["raw/quotes/dt=2024-01-02/csv-a.parquet"], None).collect()
    assert caught.value.kind == "unreadable"
    assert caught.value.key == "raw/quotes/dt=2024-01-02/csv-a.parquet"
    with pytest.raises(LakeFileError) as gone, lake_file_errors():
        read_raw(spark, Lake.local(tmp_path), ["raw/quotes/dt=2024-01-03/none.parquet"], None).collect()
    assert (gone.value.kind, gone.value.key) == ("missing", "raw/quotes/dt=2024-01-03/none.parquet")


def test_read_raw_from_s3_in_tasks(spark, s3_endpoint):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="raw/quotes/dt=2024-01-02/csv-a.parquet",
                  Body=raw_file("2024-01-02", {"PETR4": 30.0, "VALE3": 70.0}))
    s3.put_object(Bucket="lake", Key="raw/quotes/dt=2024-01-03/csv-a.parquet",
                  Body=raw_file("2024-01-03", {"PETR4": 31.0}))
    s3.put_object(Bucket="lake", Key="raw/_manifests/r0.json", Body=b"{}")
    lake = Lake.at("s3://lake")
    assert list_raw_days(lake) == ["2024-01-02", "2024-01-03"]
    files = raw_files(lake, list_raw_days(lake))
    frame = read_raw(spark, lake, [k for ks in files.values() for k in ks], ["PETR4"])
    assert sorted((r["trade_date"].isoformat(), r["close"]) for r in frame.collect()) == [
        ("2024-01-02", 30.0), ("2024-01-03", 31.0)]


def test_read_events_takes_the_ex_dates_and_tickers_asked_even_with_arrow_conversion_on(spark, tmp_path):
    """verify turns Spark's Arrow conversion on in its process; the events must still read, as
    Python rows (pandas 3's Arrow-backed strings make Spark 3.5's Arrow path fall back, warning)."""
    import warnings

    import pandas as pd

    from etl.raw_reader import read_events
    from scraper.raw_writer import RunStamp, write_corporate_events

    def event(ticker: str, day: dt.date, ratio: float) -> dict:
        return {"ticker": ticker, "ex_date": day, "kind": "split", "share_ratio": ratio, "cash_per_share": 0.0,
                "source_label": f"{ratio:g}:1", "source": "events_file"}

    lake = Lake.local(tmp_path)
    write_corporate_events(lake, pd.DataFrame([event("PETR4", dt.date(2021, 6, 10), 2.0),
                                               event("VALE3", dt.date(2021, 6, 11), 3.0),
                                               event("PETR4", dt.date(2021, 7, 1), 4.0)]),
                           RunStamp("csv", {}, dt.datetime(2021, 7, 2, tzinfo=dt.UTC), "r1"))
    was = spark.conf.get("spark.sql.execution.arrow.pyspark.enabled")
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # Two files in range: two chunks per column, what Spark's Arrow path cannot take.
            rows = read_events(spark, lake, "2021-06-01", "2021-06-30", None).collect()
            petr4 = read_events(spark, lake, "2021-06-01", "2021-07-31", ["PETR4"]).collect()
    finally:
        spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", was)
    assert sorted((r.ticker, r.ex_date, r.share_ratio, r.source, r.run_id) for r in rows) == [
        ("PETR4", dt.date(2021, 6, 10), 2.0, "events_file", "r1"), ("VALE3", dt.date(2021, 6, 11), 3.0, "events_file", "r1")]
    assert sorted((r.ex_date, r.share_ratio) for r in petr4) == [(dt.date(2021, 6, 10), 2.0), (dt.date(2021, 7, 1), 4.0)]
    assert not [w for w in caught if "Arrow" in str(w.message)]
    assert read_events(spark, lake, "2021-08-01", "2021-08-31", None) is None
