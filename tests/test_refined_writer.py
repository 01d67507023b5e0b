"""The refined writers: from Spark tasks, replace exactly the partitions they write, atomically, on a folder and on S3."""

from __future__ import annotations

import datetime as dt
import os

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from b3_quotes.contract.tables import Column, Table
from b3_quotes.storage import Lake
from etl.refined_writer import compact_years, merge_compact, read_compact_year, write_partitions
from etl.task_errors import LakeFileError

T = Table("t", "t", (Column("dt", "string"), Column("ticker", "string")), (Column("close_price", "double"),), "test")
C = Table("c", "c", (Column("year", "string"),), (Column("close_price", "double"),), "test compact")


def rows(spark, closes: dict[tuple[str, str], float]):
    data = [(dt.date.fromisoformat(day), close, day, ticker) for (day, ticker), close in closes.items()]
    return spark.createDataFrame(data, "trade_date date, close_price double, dt string, ticker string")


def files_under(root) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_write_partitions_replaces_written_partitions_and_keeps_others(spark, tmp_path, monkeypatch):
    root = Lake.local(tmp_path)
    first = write_partitions(rows(spark, {("2024-01-02", "PETR4"): 30.0, ("2024-01-02", "VALE3"): 70.0,
                                          ("2024-01-03", "VALE3"): 71.0}), root, T)
    assert sorted(first) == ["dt=2024-01-02/ticker=PETR4", "dt=2024-01-02/ticker=VALE3", "dt=2024-01-03/ticker=VALE3"]
    assert (first.rows, len(first)) == (3, 3)
    stale = tmp_path / "t/dt=2024-01-02/ticker=PETR4/part-w0-0.snappy.parquet"  # an older writer's name
    stale.write_bytes(b"old")
    (tmp_path / "t/dt=2024-01-02/ticker=PETR4/.tmp-killed-0.parquet").write_bytes(b"PAR1 half")  # a killed run's
    # The driver writes no file: the Spark tasks (other processes) do.
    monkeypatch.setattr(Lake, "write_parquet", lambda *a, **k: pytest.fail("written by the driver"))
    written = write_partitions(rows(spark, {("2024-01-02", "PETR4"): 31.0}), root, T)
    assert list(written) == ["dt=2024-01-02/ticker=PETR4"] and written.rows == 1
    assert files_under(tmp_path / "t") == ["dt=2024-01-02/ticker=PETR4/part-0.snappy.parquet",
                                           "dt=2024-01-02/ticker=VALE3/part-0.snappy.parquet",
                                           "dt=2024-01-03/ticker=VALE3/part-0.snappy.parquet"]
    petr = tmp_path / "t/dt=2024-01-02/ticker=PETR4/part-0.snappy.parquet"
    assert pq.read_table(petr).column("close_price").to_pylist() == [31.0]
    vale = tmp_path / "t/dt=2024-01-02/ticker=VALE3/part-0.snappy.parquet"
    assert pq.read_table(vale).column("close_price").to_pylist() == [70.0]  # untouched
    assert pq.read_schema(vale).names == ["trade_date", "close_price"]  # partition values live in the path only


def test_write_partitions_of_nothing_writes_nothing(spark, tmp_path):
    written = write_partitions(rows(spark, {}).limit(0), Lake.local(tmp_path), T)
    assert (list(written), written.rows) == ([], 0)
    assert not (tmp_path / "t").exists()


def test_files_get_the_mode_the_umask_gives(spark, tmp_path):
    old = os.umask(0o022)
    try:
        write_partitions(rows(spark, {("2024-01-02", "PETR4"): 30.0}), Lake.local(tmp_path), T)
        Lake.at(str(tmp_path)).write_bytes("m/x.json", b"{}")
    finally:
        os.umask(old)
    # Spark's workers inherit the umask of the process that started them (0o022 here by default).
    assert (tmp_path / "t/dt=2024-01-02/ticker=PETR4/part-0.snappy.parquet").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "m/x.json").stat().st_mode & 0o777 == 0o644


def test_write_partitions_to_s3_from_tasks(spark, s3_endpoint):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="t/dt=2024-01-02/ticker=PETR4/old.parquet", Body=b"old")
    s3.put_object(Bucket="lake", Key="t/dt=2024-01-01/ticker=PETR4/keep.parquet", Body=b"keep")
    written = write_partitions(rows(spark, {("2024-01-02", "PETR4"): 31.0, ("2024-01-02", "VALE3"): 70.0}),
                               Lake.at("s3://lake"), T)
    assert sorted(written) == ["dt=2024-01-02/ticker=PETR4", "dt=2024-01-02/ticker=VALE3"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="t/")["Contents"])
    # The replaced object is deleted, the other partition kept, and no empty `folder/` keys appear.
    assert keys == ["t/dt=2024-01-01/ticker=PETR4/keep.parquet",
                    "t/dt=2024-01-02/ticker=PETR4/part-0.snappy.parquet",
                    "t/dt=2024-01-02/ticker=VALE3/part-0.snappy.parquet"]


def test_a_write_killed_before_its_rename_leaves_the_old_file_visible_and_whole(tmp_path, monkeypatch):
    lake = Lake.at(str(tmp_path))
    lake.write_parquet("t/dt=2024-01-02/ticker=PETR4/part-0.snappy.parquet", pa.table({"close_price": [30.0]}))

    def killed(source, target):
        raise KeyboardInterrupt("killed")  # the new file is written (hidden), not renamed yet

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        lake.write_parquet("t/dt=2024-01-02/ticker=PETR4/part-0.snappy.parquet", pa.table({"close_price": [31.0]}))
    monkeypatch.undo()
    assert files_under(tmp_path / "t") == ["dt=2024-01-02/ticker=PETR4/part-0.snappy.parquet"]  # temp removed
    with duckdb.connect() as con:
        assert con.execute(f"SELECT close_price FROM read_parquet('{tmp_path}/t/*/*/*.parquet')").fetchall() == [
            (30.0,)]


def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    lake = Lake.at(str(tmp_path))
    lake.write_parquet("c/year=2024/part-0.snappy.parquet", pa.table({"x": [1]}))

    def dies_half_way(table, where, **kwargs):
        with open(where, "wb") as handle:
            handle.write(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", dies_half_way)
    with pytest.raises(OSError, match="No space") as caught:
        lake.write_parquet("c/year=2024/part-0.snappy.parquet", pa.table({"x": [2]}))
    monkeypatch.undo()
    assert caught.value.filename == f"{tmp_path}/c/year=2024/part-0.snappy.parquet"
    assert pq.read_table(tmp_path / "c/year=2024/part-0.snappy.parquet").column("x").to_pylist() == [1]
    assert files_under(tmp_path / "c") == ["year=2024/part-0.snappy.parquet"]


def test_merge_compact_rewrites_only_the_years_touched_sorted_by_ticker(spark, tmp_path):
    root = Lake.local(tmp_path)

    def daily(items):
        return spark.createDataFrame([(c, d, t) for d, t, c in items], "close_price double, dt string, ticker string")

    assert merge_compact(daily([("2023-12-29", "VALE3", 70.0), ("2023-12-28", "PETR4", 30.0),
                                ("2024-01-02", "PETR4", 31.0)]), root, C, ["ticker", "dt"]) == ["2023", "2024"]
    before_2023 = (tmp_path / "c/year=2023/part-0.snappy.parquet").stat().st_mtime_ns
    assert merge_compact(daily([("2024-01-03", "PETR4", 32.0), ("2024-01-02", "PETR4", 31.5),
                                ("2024-01-02", "ABEV3", 13.0)]), root, C, ["ticker", "dt"]) == ["2024"]
    assert (tmp_path / "c/year=2023/part-0.snappy.parquet").stat().st_mtime_ns == before_2023
    year = read_compact_year(root, C, "2024")
    assert year is not None
    assert list(zip(year["ticker"].to_pylist(), year["dt"].to_pylist(), year["close_price"].to_pylist())) == [
        ("ABEV3", "2024-01-02", 13.0), ("PETR4", "2024-01-02", 31.5), ("PETR4", "2024-01-03", 32.0)]
    assert compact_years(root, C) == ["2023", "2024"]
    # replace: the year is what the rows say, nothing kept
    assert merge_compact(daily([("2024-01-05", "VALE3", 72.0)]), root, C, ["ticker", "dt"], replace=True) == ["2024"]
    assert read_compact_year(root, C, "2024")["ticker"].to_pylist() == ["VALE3"]


def test_an_unreadable_compact_year_is_named(tmp_path):
    (tmp_path / "c/year=2020").mkdir(parents=True)
    (tmp_path / "c/year=2020/part-0.snappy.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(LakeFileError) as caught:
        read_compact_year(Lake.at(str(tmp_path)), C, "2020")
    assert (caught.value.kind, caught.value.key) == ("unreadable", "c/year=2020/part-0.snappy.parquet")
    assert read_compact_year(Lake.at(str(tmp_path)), C, "2019") is None
