"""The local DuckDB catalog: one set of names for raw quotes, whichever names each file has."""

from __future__ import annotations

import duckdb

from local_mode.catalog import connect, refresh_catalog
from tests.test_raw_reader import put_local, raw_file


def test_quotes_view_shows_new_names_over_old_new_and_mixed_files(tmp_path):
    for lake, legacy_flags in (("old", [True]), ("new", [False]), ("mixed", [True, False])):
        root = tmp_path / lake
        for i, legacy in enumerate(legacy_flags):
            day = f"2024-01-0{i + 2}"
            put_local(root, f"raw/quotes/dt={day}/f.parquet", raw_file(day, {"PETR4": 30.0 + i}, legacy=legacy))
        assert refresh_catalog(root) == ["quotes"]
        with connect(root, read_only=True) as con:
            cursor = con.execute("SELECT * FROM quotes ORDER BY dt")
            names = [d[0] for d in cursor.description or []]
            rows = [dict(zip(names, r)) for r in cursor.fetchall()]
        for name in ("open", "high", "low", "close", "adj_close", "volume", "ticker", "trade_date", "dt"):
            assert names.count(name) == 1, (lake, names)
        assert not {"Open", "Adj Close", "Volume"} & set(names), (lake, names)
        assert [(r["dt"], r["close"], r["adj_close"], r["volume"]) for r in rows] == [
            (f"2024-01-0{i + 2}", 30.0 + i, (30.0 + i) * 0.9, 100) for i in range(len(legacy_flags))], lake


def test_quotes_view_answers_a_filter_on_a_renamed_column(tmp_path):
    put_local(tmp_path, "raw/quotes/dt=2024-01-02/f.parquet", raw_file("2024-01-02", {"PETR4": 30.0}, legacy=True))
    put_local(tmp_path, "raw/quotes/dt=2024-01-03/f.parquet", raw_file("2024-01-03", {"PETR4": 40.0}))
    refresh_catalog(tmp_path)
    with duckdb.connect(str(tmp_path / "catalog.duckdb"), read_only=True) as con:
        assert con.execute("SELECT dt FROM quotes WHERE close > 35").fetchall() == [("2024-01-03",)]
