"""The local DuckDB catalog: a view per table of the contract, queryable before its first file, read-only lakes."""

from __future__ import annotations

import datetime as dt

import duckdb

from b3_quotes.local_mode.duckdb_views import connect, refresh_catalog
from tests.conftest import REPO
from tests.helpers import put_local, raw_file, run_local


def test_quotes_view_merges_files_of_several_scraper_versions_by_name(tmp_path):
    put_local(tmp_path, "raw/quotes/dt=2024-01-02/f.parquet", raw_file("2024-01-02", {"PETR4": 30.0}))
    put_local(tmp_path, "raw/quotes/dt=2024-01-03/f.parquet", raw_file("2024-01-03", {"PETR4": 40.0}))
    assert refresh_catalog(tmp_path) == ["quotes"]
    with connect(tmp_path, read_only=True) as con:
        assert con.execute("SELECT dt, close, adj_close, volume FROM quotes WHERE close > 35").fetchall() == [
            ("2024-01-03", 40.0, 36.0, 100)]


def test_every_table_of_the_contract_is_queryable_before_it_has_files(tmp_path):
    from b3_quotes.contract.tables import TABLES

    put_local(tmp_path, "raw/quotes/dt=2024-01-02/f.parquet", raw_file("2024-01-02", {"PETR4": 30.0}))
    for name, table in TABLES.items():
        if name == "quotes":
            continue
        columns, rows = run_local(tmp_path, f"SELECT * FROM {name}")
        assert rows == [] and columns == [c.name for c in (*table.columns, *table.partition_keys)], name
    # The repository's report on a lake without a single issue: no row, no error.
    sql = (REPO / "sql" / "quote_issues_by_reason.sql").read_text()
    assert run_local(tmp_path, sql)[1] == []
    with duckdb.connect(str(tmp_path / "catalog.duckdb"), read_only=True) as con:
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'quotes_daily'").fetchall())
    assert (types["volume"], types["trade_date"], types["ingested_at"], types["dt"]) == (
        "BIGINT", "DATE", "TIMESTAMP WITH TIME ZONE", "VARCHAR")
    # Its first file replaces the empty view.
    put_local(tmp_path, "raw/quote_issues/dt=2024-01-02/f.parquet", issue_file())
    assert run_local(tmp_path, "SELECT ticker, action FROM quote_issues")[1] == [("PETR4", "kept")]


def issue_file() -> bytes:
    import io

    import pandas as pd
    import pyarrow.parquet as pq

    from scraper.raw_writer import to_issues_table

    rows = pd.DataFrame([{"ticker": "PETR4", "trade_date": dt.date(2024, 1, 2), "open": 30.0, "high": 31.0,
                          "low": 29.0, "close": 31.5, "adj_close": 31.5, "volume": 1.0,
                          "reason": "open_close_outside_range", "action": "kept", "detail": "x"}])
    buffer = io.BytesIO()
    pq.write_table(to_issues_table(rows, "csv", {}, dt.datetime(2024, 1, 3, tzinfo=dt.UTC), "r"), buffer)
    return buffer.getvalue()


def test_a_lake_this_user_may_only_read_is_queried_in_memory(tmp_path, monkeypatch):
    put_local(tmp_path, "raw/quotes/dt=2024-01-02/f.parquet", raw_file("2024-01-02", {"PETR4": 30.0}))
    real_connect = duckdb.connect

    def read_only_lake(database=":memory:", read_only=False, **kwargs):
        # What DuckDB raises opening the catalog for writing in a folder the user may not write.
        if database != ":memory:" and not read_only:
            raise duckdb.IOException(f'IO Error: Cannot open file "{database}": Permission denied')
        return real_connect(database, read_only=read_only, **kwargs)

    monkeypatch.setattr(duckdb, "connect", read_only_lake)
    assert run_local(tmp_path, "SELECT ticker, close FROM quotes")[1] == [("PETR4", 30.0)]
    assert run_local(tmp_path, "SELECT count(*) FROM ibov_portfolio")[1] == [(0,)]
    assert not (tmp_path / "catalog.duckdb").exists()


def test_quotes_daily_and_monthly_read_the_compact_files_with_the_same_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from b3_quotes.contract.arrow import arrow_schema
    from b3_quotes.contract.tables import QUOTES_DAILY_COMPACT

    schema = arrow_schema(QUOTES_DAILY_COMPACT)
    rows = {c.name: [None, None] for c in QUOTES_DAILY_COMPACT.columns}
    rows.update(trade_date=[dt.date(2024, 1, 2), dt.date(2024, 1, 3)], close_price=[30.0, 31.0],
                dt=["2024-01-02", "2024-01-03"], ticker=["PETR4", "PETR4"])
    (tmp_path / "refined/quotes_daily_compact/year=2024").mkdir(parents=True)
    pq.write_table(pa.table(rows, schema=schema), tmp_path / "refined/quotes_daily_compact/year=2024/part-0.snappy.parquet")
    refresh_catalog(tmp_path)
    with connect(tmp_path, read_only=True) as con:
        cursor = con.execute("SELECT * FROM quotes_daily ORDER BY dt")
        names = [d[0] for d in cursor.description or []]
        assert [(r[names.index("dt")], r[names.index("close_price")]) for r in cursor.fetchall()] == [
            ("2024-01-02", 30.0), ("2024-01-03", 31.0)]
    assert names == [c.name for c in QUOTES_DAILY_COMPACT.columns]  # the partitioned table's columns, no year
