"""The refined writer: replaces exactly the partitions it writes, on a folder and on S3 (moto server)."""

from __future__ import annotations

import datetime as dt

import boto3
import pyarrow.parquet as pq

from etl.lake_io import write_partitions


def rows(spark, closes: dict[tuple[str, str], float]):
    data = [(dt.date.fromisoformat(day), close, day, ticker) for (day, ticker), close in closes.items()]
    return spark.createDataFrame(data, "trade_date date, close_price double, dt string, ticker string")


def test_write_partitions_replaces_written_partitions_and_keeps_others(spark, tmp_path):
    root = tmp_path.as_uri()
    write_partitions(rows(spark, {("2024-01-02", "PETR4"): 30.0, ("2024-01-02", "VALE3"): 70.0}), root, "t",
                     ["dt", "ticker"], "w1")
    stale = tmp_path / "t/dt=2024-01-02/ticker=PETR4/stale-from-an-older-writer.parquet"
    stale.write_bytes(b"old")
    written = write_partitions(rows(spark, {("2024-01-02", "PETR4"): 31.0}), root, "t", ["dt", "ticker"], "w2")
    assert written == 1
    petr = list((tmp_path / "t/dt=2024-01-02/ticker=PETR4").iterdir())
    assert [p.name for p in petr] == ["part-w2-0.snappy.parquet"]  # w1's file and the stale one are gone
    assert pq.read_table(petr[0]).column("close_price").to_pylist() == [31.0]
    vale = tmp_path / "t/dt=2024-01-02/ticker=VALE3/part-w1-0.snappy.parquet"
    assert pq.read_table(vale).column("close_price").to_pylist() == [70.0]  # untouched
    assert "dt" not in pq.read_schema(vale).names  # partition values live in the path only


def test_write_partitions_of_nothing_writes_nothing(spark, tmp_path):
    empty = rows(spark, {}).limit(0)
    assert write_partitions(empty, tmp_path.as_uri(), "t", ["dt", "ticker"], "w1") == 0
    assert not (tmp_path / "t").exists()


def test_write_partitions_to_s3(spark, s3_endpoint):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="refined/t/dt=2024-01-02/ticker=PETR4/old.parquet", Body=b"old")
    s3.put_object(Bucket="lake", Key="refined/t/dt=2024-01-01/ticker=PETR4/keep.parquet", Body=b"keep")
    write_partitions(rows(spark, {("2024-01-02", "PETR4"): 31.0, ("2024-01-02", "VALE3"): 70.0}),
                     "s3://lake", "refined/t", ["dt", "ticker"], "w1")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="refined/")["Contents"])
    # The replaced object is deleted, the other partition kept, and no empty `folder/` keys appear.
    assert keys == ["refined/t/dt=2024-01-01/ticker=PETR4/keep.parquet",
                    "refined/t/dt=2024-01-02/ticker=PETR4/part-w1-0.snappy.parquet",
                    "refined/t/dt=2024-01-02/ticker=VALE3/part-w1-0.snappy.parquet"]
