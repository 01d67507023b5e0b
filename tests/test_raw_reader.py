"""The job's raw reader: exactly the days asked for, legacy column names, Arrow to Spark, folder and S3."""

from __future__ import annotations

import datetime as dt
import io

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.lake_io import RAW_READ_SCHEMA, list_raw_days, read_raw_days, spark_frame_from_arrow
from scraper.raw_writer import RAW_QUOTES_SCHEMA

T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)


def raw_file(day: str, closes: dict[str, float], *, legacy: bool = False) -> bytes:
    """One raw day file as the writer lays it out today, or with the names used before the rename."""
    n = len(closes)
    columns = {
        "trade_date": pa.array([dt.date.fromisoformat(day)] * n, pa.date32()),
        "ticker": pa.array(list(closes)),
        "open": pa.array([c - 0.5 for c in closes.values()]),
        "high": pa.array([c + 1 for c in closes.values()]),
        "low": pa.array([c - 1 for c in closes.values()]),
        "close": pa.array(list(closes.values())),
        "adj_close": pa.array([c * 0.9 for c in closes.values()]),
        "volume": pa.array([100] * n, pa.int64()),
        "source": pa.array(["csv"] * n),
        "ingested_at": pa.array([T0] * n, pa.timestamp("us", tz="UTC")),
        "run_id": pa.array(["r0"] * n),
    }
    if legacy:
        old = {"open": "Open", "high": "High", "low": "Low", "close": "Close", "adj_close": "Adj Close",
               "volume": "Volume"}
        columns = {old.get(k, k): v for k, v in columns.items()}
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def put_local(root, key: str, data: bytes) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_read_schema_is_what_the_raw_writer_writes():
    for field in RAW_READ_SCHEMA:
        assert RAW_QUOTES_SCHEMA.field(field.name).type == field.type


def test_read_raw_days_reads_only_those_days_and_tickers_old_and_new_names(tmp_path):
    put_local(tmp_path, "raw/quotes/dt=2024-01-02/csv-a.parquet", raw_file("2024-01-02", {"PETR4": 30.0, "VALE3": 70.0},
                                                                            legacy=True))
    put_local(tmp_path, "raw/quotes/dt=2024-01-03/csv-a.parquet", raw_file("2024-01-03", {"PETR4": 31.0}))
    put_local(tmp_path, "raw/quotes/dt=2024-01-03/b3-b.parquet", raw_file("2024-01-03", {"VALE3": 71.0}))
    put_local(tmp_path, "raw/quotes/dt=2024-01-04/csv-a.parquet", raw_file("2024-01-04", {"PETR4": 32.0}))
    # A writer killed mid-file leaves only a hidden temporary: never read.
    put_local(tmp_path, "raw/quotes/dt=2024-01-03/.tmp-x1", b"PAR1 truncated")

    assert list_raw_days(tmp_path.as_uri()) == ["2024-01-02", "2024-01-03", "2024-01-04"]
    table = read_raw_days(tmp_path.as_uri(), ["2024-01-03", "2024-01-02", "2024-12-31"], ["PETR4"])
    assert table.schema == RAW_READ_SCHEMA
    rows = sorted(zip(table["trade_date"].to_pylist(), table["close"].to_pylist(), table["adj_close"].to_pylist()))
    assert rows == [(dt.date(2024, 1, 2), 30.0, 27.0), (dt.date(2024, 1, 3), 31.0, pytest.approx(27.9))]
    assert table["volume"].to_pylist() == [100, 100]
    everyone = read_raw_days(tmp_path.as_uri(), ["2024-01-03"])
    assert sorted(everyone["ticker"].to_pylist()) == ["PETR4", "VALE3"]


def test_read_raw_days_of_an_empty_lake_is_empty(tmp_path):
    assert list_raw_days(tmp_path.as_uri()) == []
    assert read_raw_days(tmp_path.as_uri(), ["2024-01-02"], ["PETR4"]).num_rows == 0


def test_spark_frame_from_arrow_keeps_types_and_nulls(spark):
    table = pa.table({
        "trade_date": pa.array([dt.date(2024, 1, 2), None, dt.date(2000, 1, 3)], pa.date32()),
        "close": pa.array([1.5, None, 3.0]),
        "volume": pa.array([None, 7, 2**40], pa.int64()),
        "ingested_at": pa.array([T0, None, dt.datetime(2001, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC)],
                                pa.timestamp("us", tz="UTC")),
        "ticker": pa.array(["PETR4", "VALE3", None]),
    })
    frame = spark_frame_from_arrow(spark, table)
    assert frame.dtypes == [("trade_date", "date"), ("close", "double"), ("volume", "bigint"),
                            ("ingested_at", "timestamp"), ("ticker", "string")]
    back = pa.Table.from_batches(frame._collect_as_arrow())
    assert back.equals(table)  # the microsecond and the nulls survive the trip
    assert spark_frame_from_arrow(spark, table.slice(0, 0)).count() == 0


def test_read_raw_days_from_s3_into_spark(spark, s3_endpoint):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="raw/quotes/dt=2024-01-02/csv-a.parquet",
                  Body=raw_file("2024-01-02", {"PETR4": 30.0, "VALE3": 70.0}, legacy=True))
    s3.put_object(Bucket="lake", Key="raw/quotes/dt=2024-01-03/csv-a.parquet",
                  Body=raw_file("2024-01-03", {"PETR4": 31.0}))
    s3.put_object(Bucket="lake", Key="raw/_manifests/r0.json", Body=b"{}")
    assert list_raw_days("s3://lake") == ["2024-01-02", "2024-01-03"]
    frame = spark_frame_from_arrow(spark, read_raw_days("s3://lake", list_raw_days("s3://lake"), ["PETR4"]))
    assert sorted((r["trade_date"].isoformat(), r["close"]) for r in frame.collect()) == [
        ("2024-01-02", 30.0), ("2024-01-03", 31.0)]


def test_migrate_raw_names_rewrites_old_files_once_and_keeps_their_rows(tmp_path):
    from etl.migrate_raw_names import main

    put_local(tmp_path, "raw/quotes/dt=2024-01-02/old.parquet", raw_file("2024-01-02", {"PETR4": 30.0}, legacy=True))
    put_local(tmp_path, "raw/quotes/dt=2024-01-03/new.parquet", raw_file("2024-01-03", {"PETR4": 31.0}))
    new_before = (tmp_path / "raw/quotes/dt=2024-01-03/new.parquet").read_bytes()
    assert main(["--lake-root", str(tmp_path)]) == 0
    # The file itself: pyarrow 17's read_table would add the folder's `dt=` key as a column.
    migrated = pq.ParquetFile(tmp_path / "raw/quotes/dt=2024-01-02/old.parquet").read()
    assert migrated.column_names == ["trade_date", "ticker", "open", "high", "low", "close", "adj_close", "volume",
                                     "source", "ingested_at", "run_id"]
    assert (migrated["close"].to_pylist(), migrated["adj_close"].to_pylist()) == ([30.0], [27.0])
    assert (tmp_path / "raw/quotes/dt=2024-01-03/new.parquet").read_bytes() == new_before  # untouched
    assert sorted(p.name for p in (tmp_path / "raw/quotes/dt=2024-01-02").iterdir()) == ["old.parquet"]
    from etl.migrate_raw_names import migrate_raw_names

    assert migrate_raw_names(str(tmp_path)) == (0, 2)  # a second run has nothing left to do
