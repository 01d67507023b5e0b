"""The refined writers: replace exactly the partitions they write, atomically, on a folder and on S3."""

from __future__ import annotations

import datetime as dt

import boto3
import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from etl.lake_io import compact_years, merge_compact, read_compact_year, write_file_atomically, write_partitions


def rows(spark, closes: dict[tuple[str, str], float]):
    data = [(dt.date.fromisoformat(day), close, day, ticker) for (day, ticker), close in closes.items()]
    return spark.createDataFrame(data, "trade_date date, close_price double, dt string, ticker string")


def test_write_partitions_replaces_written_partitions_and_keeps_others(spark, tmp_path):
    root = tmp_path.as_uri()
    write_partitions(rows(spark, {("2024-01-02", "PETR4"): 30.0, ("2024-01-02", "VALE3"): 70.0}), root, "t",
                     ["dt", "ticker"])
    stale = tmp_path / "t/dt=2024-01-02/ticker=PETR4/part-w0-0.snappy.parquet"  # an older writer's name
    stale.write_bytes(b"old")
    (tmp_path / "t/dt=2024-01-02/ticker=PETR4/.tmp-killed-0.parquet").write_bytes(b"PAR1 half")  # a killed run's
    written = write_partitions(rows(spark, {("2024-01-02", "PETR4"): 31.0}), root, "t", ["dt", "ticker"])
    assert written == 1
    petr = list((tmp_path / "t/dt=2024-01-02/ticker=PETR4").iterdir())
    assert [p.name for p in petr] == ["part-0.snappy.parquet"]  # replaced in place; stale and hidden gone
    assert pq.read_table(petr[0]).column("close_price").to_pylist() == [31.0]
    vale = tmp_path / "t/dt=2024-01-02/ticker=VALE3/part-0.snappy.parquet"
    assert pq.read_table(vale).column("close_price").to_pylist() == [70.0]  # untouched
    assert "dt" not in pq.read_schema(vale).names  # partition values live in the path only


def test_a_backfill_lists_only_the_folders_that_existed_and_still_cleans_them(tmp_path, monkeypatch):
    """Many new days (a backfill): new folders are not listed one by one, existing ones are cleaned."""
    import etl.lake_io as lake_io

    root = str(tmp_path)
    old = tmp_path / "t/dt=2024-01-02/ticker=PETR4"
    old.mkdir(parents=True)
    (old / "part-w0-0.snappy.parquet").write_bytes(b"old")
    listed: list[str] = []
    real_info = pafs.LocalFileSystem.get_file_info

    class Recording(pafs.LocalFileSystem):
        def get_file_info(self, paths_or_selector):
            if isinstance(paths_or_selector, pafs.FileSelector):
                listed.append(paths_or_selector.base_dir.removeprefix(f"{root}/t").lstrip("/"))
            return real_info(self, paths_or_selector)

    monkeypatch.setattr(lake_io, "_filesystem", lambda lake, table: (Recording(), f"{lake}/{table}"))
    days = [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(lake_io.LIST_TABLE_ABOVE + 6)]
    table = pa.table({"trade_date": pa.array(days, pa.date32()), "close_price": [float(i) for i in range(len(days))],
                      "dt": [d.isoformat() for d in days], "ticker": ["PETR4"] * len(days)})
    assert write_partitions(table, root, "t", ["dt", "ticker"]) == len(days)
    assert listed == ["", "dt=2024-01-02"]  # the table's top level once, then the one folder that existed
    assert sorted(p.name for p in old.iterdir()) == ["part-0.snappy.parquet"]
    assert len(list((tmp_path / "t").glob("dt=*/ticker=PETR4/part-0.snappy.parquet"))) == len(days)
    assert pq.read_table(tmp_path / "t/dt=2024-03-11/ticker=PETR4/part-0.snappy.parquet")["close_price"].to_pylist() == [
        float((dt.date(2024, 3, 11) - dt.date(2024, 1, 2)).days)]


def test_write_partitions_of_nothing_writes_nothing(spark, tmp_path):
    empty = rows(spark, {}).limit(0)
    assert write_partitions(empty, tmp_path.as_uri(), "t", ["dt", "ticker"]) == 0
    assert not (tmp_path / "t").exists()


def test_write_partitions_to_s3(spark, s3_endpoint):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="refined/t/dt=2024-01-02/ticker=PETR4/old.parquet", Body=b"old")
    s3.put_object(Bucket="lake", Key="refined/t/dt=2024-01-01/ticker=PETR4/keep.parquet", Body=b"keep")
    write_partitions(rows(spark, {("2024-01-02", "PETR4"): 31.0, ("2024-01-02", "VALE3"): 70.0}),
                     "s3://lake", "refined/t", ["dt", "ticker"])
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="refined/")["Contents"])
    # The replaced object is deleted, the other partition kept, and no empty `folder/` keys appear.
    assert keys == ["refined/t/dt=2024-01-01/ticker=PETR4/keep.parquet",
                    "refined/t/dt=2024-01-02/ticker=PETR4/part-0.snappy.parquet",
                    "refined/t/dt=2024-01-02/ticker=VALE3/part-0.snappy.parquet"]


def test_a_write_killed_before_its_renames_leaves_the_old_files_visible_and_whole(spark, tmp_path, monkeypatch):
    root = tmp_path.as_uri()
    write_partitions(rows(spark, {("2024-01-02", "PETR4"): 30.0}), root, "t", ["dt", "ticker"])

    def killed(filesystem, source, target):
        raise KeyboardInterrupt("killed")  # the new files are written (hidden), none renamed yet

    monkeypatch.setattr("etl.lake_io._rename", killed)
    with pytest.raises(KeyboardInterrupt):
        write_partitions(rows(spark, {("2024-01-02", "PETR4"): 31.0, ("2024-01-03", "PETR4"): 32.0}),
                         root, "t", ["dt", "ticker"])
    visible = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "t").rglob("*")
                     if p.is_file() and not p.name.startswith("."))
    assert visible == ["t/dt=2024-01-02/ticker=PETR4/part-0.snappy.parquet"]
    assert pq.read_table(tmp_path / visible[0]).column("close_price").to_pylist() == [30.0]
    with duckdb.connect() as con:  # a reader of the whole table skips the hidden leftovers
        assert con.execute(f"SELECT close_price FROM read_parquet('{tmp_path}/t/*/*/*.parquet')").fetchall() == [
            (30.0,)]

    monkeypatch.undo()  # the next run converges: new values, no leftover
    write_partitions(rows(spark, {("2024-01-02", "PETR4"): 31.0, ("2024-01-03", "PETR4"): 32.0}),
                     root, "t", ["dt", "ticker"])
    files = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "t").rglob("*") if p.is_file())
    assert files == ["t/dt=2024-01-02/ticker=PETR4/part-0.snappy.parquet",
                     "t/dt=2024-01-03/ticker=PETR4/part-0.snappy.parquet"]


def test_write_file_atomically_replaces_whole_or_not_at_all(tmp_path, monkeypatch):
    filesystem, target = pafs.LocalFileSystem(), f"{tmp_path}/year=2024/part-0.snappy.parquet"
    write_file_atomically(filesystem, target, pa.table({"x": [1]}))
    real_write = pq.write_table

    def dies_half_way(table, where, **kwargs):
        with open(where, "wb") as handle:
            handle.write(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", dies_half_way)
    with pytest.raises(OSError, match="No space"):
        write_file_atomically(filesystem, target, pa.table({"x": [2]}))
    monkeypatch.setattr(pq, "write_table", real_write)
    assert pq.read_table(target).column("x").to_pylist() == [1]
    assert [p.name for p in (tmp_path / "year=2024").iterdir()] == ["part-0.snappy.parquet"]  # temp removed


def test_merge_compact_rewrites_only_the_years_touched_sorted_by_ticker(tmp_path):
    root = str(tmp_path)

    def daily(items):
        return pa.table({"close_price": [c for _, _, c in items], "dt": [d for d, _, _ in items],
                         "ticker": [t for _, t, _ in items]})

    assert merge_compact(root, "c", daily([("2023-12-29", "VALE3", 70.0), ("2023-12-28", "PETR4", 30.0),
                                           ("2024-01-02", "PETR4", 31.0)]), ["ticker", "dt"]) == ["2023", "2024"]
    before_2023 = (tmp_path / "c/year=2023/part-0.snappy.parquet").stat().st_mtime_ns
    assert merge_compact(root, "c", daily([("2024-01-03", "PETR4", 32.0), ("2024-01-02", "PETR4", 31.5),
                                           ("2024-01-02", "ABEV3", 13.0)]), ["ticker", "dt"]) == ["2024"]
    assert (tmp_path / "c/year=2023/part-0.snappy.parquet").stat().st_mtime_ns == before_2023
    year = read_compact_year(root, "c", "2024")
    assert year is not None
    assert list(zip(year["ticker"].to_pylist(), year["dt"].to_pylist(), year["close_price"].to_pylist())) == [
        ("ABEV3", "2024-01-02", 13.0), ("PETR4", "2024-01-02", 31.5), ("PETR4", "2024-01-03", 32.0)]
    assert compact_years(root, "c") == ["2023", "2024"]
