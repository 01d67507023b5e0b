"""A committed run never refines over missing raw; derived files that cannot be read are rebuilt from raw."""

from __future__ import annotations

import json

import pytest

from tests.helpers import END, assert_same_tables, copy_lake, csv_run

pytestmark = pytest.mark.integration


def refined_files(lake) -> dict:
    return {p: p.stat().st_mtime_ns for p in (lake / "refined").rglob("*.parquet")}


def pending(lake) -> list[str]:
    done = {p.name for p in (lake / "refined/_processed_runs").iterdir()}
    return sorted(p.name for p in (lake / "raw/_manifests").glob("*.json") if p.name not in done)


def test_a_missing_raw_day_the_history_needs_stops_the_run_and_writes_nothing(lake_to_march_30, tmp_path, capsys):
    lake = copy_lake(lake_to_march_30, tmp_path)  # 2019-10-01 to 2020-03-30 in one run
    manifest = json.loads(next((lake / "raw/_manifests").glob("*.json")).read_text())
    lost = next(f for f in manifest["files"] if "dt=2020-03-24/" in f)  # within the next day's ma_20 window
    (lake / lost).unlink()
    before = refined_files(lake)
    capsys.readouterr()
    assert csv_run(lake, "2020-03-31", "2020-03-31") == 6
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "raw day 2020-03-24 of PETR4 is missing" in err[0] and f"{lake}/raw/quotes/dt=2020-03-24" in err[0]
    assert "stays pending" in err[0]
    assert refined_files(lake) == before  # nothing written
    assert len(pending(lake)) == 1  # the new run waits for the raw day to come back


def test_a_missing_raw_file_a_pending_manifest_lists_stops_the_run(tmp_path, capsys):
    lake = tmp_path / "lake"
    assert csv_run(lake, "2019-10-01", "2019-12-30") == 0
    manifest_file = next((lake / "raw/_manifests").glob("*.json"))
    listed = json.loads(manifest_file.read_text())["files"]
    # A later run's manifest names a file that is not there: a manifest re-sent by hand after a delete.
    (lake / listed[-1]).unlink()
    (lake / "refined/_processed_runs" / manifest_file.name).unlink()
    capsys.readouterr()
    assert csv_run(lake, "2020-01-02", "2020-01-02") == 6
    err = capsys.readouterr().err
    assert f"raw file {lake / listed[-1]} is missing (a scrape run's manifest lists it)" in err
    assert manifest_file.name in pending(lake)


def test_a_truncated_compact_file_is_rebuilt_from_raw(full_lake, lake_to_march_30, tmp_path, capsys):
    lake = copy_lake(lake_to_march_30, tmp_path)  # 2019-10-01 to 2020-03-30 in one run
    year = lake / "refined/quotes_daily_compact/year=2020/part-0.snappy.parquet"
    year.write_bytes(year.read_bytes()[:200])  # truncated
    capsys.readouterr()
    assert csv_run(lake, "2020-03-31", END) == 0
    out = capsys.readouterr().out
    assert f"warning: {year} cannot be read" in out and "rebuilding the refined tables from raw" in out
    assert_same_tables(lake, full_lake)  # as if nothing had happened
