"""Incremental runs read and rewrite only what they must, and still equal a full recompute."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from etl.refine import raw_days_needed, sessions_needed
from tests.conftest import SAMPLE_DIR
from tests.helpers import END, START, assert_equals_reference, assert_same_tables, copy_lake, csv_run, expected_daily
from tests.helpers import run_scraper as run
from tests.helpers import sorted_table as table

pytestmark = pytest.mark.integration


def test_backfill_into_the_middle_of_existing_history_equals_a_full_run(full_lake, tmp_path):
    """History that arrives after later days: the backfilled sessions, the windows of the sessions
    after them, and a month whose second half was there already (its summary merges both)."""
    lake = tmp_path / "lake"
    assert csv_run(lake, START, "2019-11-29") == 0
    assert csv_run(lake, "2019-12-16", END) == 0
    assert csv_run(lake, "2019-12-02", "2019-12-13") == 0  # early December arrives last
    assert_same_tables(lake, full_lake)


def test_one_day_run_on_a_long_history_rewrites_only_that_day(full_lake, lake_to_march_30, tmp_path):
    lake = copy_lake(lake_to_march_30, tmp_path)  # START to 2020-03-30 in one run
    files = {p: p.stat().st_mtime_ns for p in (lake / "refined/quotes_daily").rglob("*.parquet")}
    assert csv_run(lake, "2020-03-31", END) == 0
    assert_same_tables(lake, full_lake)
    changed = sorted(p.relative_to(lake / "refined/quotes_daily").parent.as_posix()
                     for p in (lake / "refined/quotes_daily").rglob("*.parquet") if files.get(p) != p.stat().st_mtime_ns)
    assert changed == ["dt=2020-03-31/ticker=PETR4", "dt=2020-03-31/ticker=VALE3"]


GAP_FIRST, GAP_LAST = "2019-11-01", "2020-01-31"  # VALE3 suspended for three months


@pytest.fixture(scope="module")
def gap_csv_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gap_csv")
    shutil.copy(SAMPLE_DIR / "PETR4.SA.csv", folder)
    vale = pd.read_csv(SAMPLE_DIR / "VALE3.SA.csv", dtype=str)
    vale[(vale["Date"] < GAP_FIRST) | (vale["Date"] > GAP_LAST)].to_csv(folder / "VALE3.SA.csv", index=False)
    return folder


def gap_run(lake: Path, folder: Path, start: str, end: str) -> int:
    return run(lake, "--source", "csv", "--csv-dir", str(folder), "--tickers", "PETR4,VALE3",
               "--start", start, "--end", end)


def test_a_ticker_back_from_a_three_month_gap_gets_its_windows_right(gap_csv_dir, tmp_path):
    lake = tmp_path / "lake"
    assert gap_run(lake, gap_csv_dir, START, GAP_LAST) == 0
    assert gap_run(lake, gap_csv_dir, "2020-02-03", END) == 0  # VALE3's first session after the gap
    # What a full recompute gives, computed from the CSV files with pandas.
    assert_equals_reference(lake, expected_daily(START, END, csv_dir=gap_csv_dir))
    daily = table(lake, "quotes_daily").set_index(["ticker", "dt"])
    back = daily.loc[("VALE3", "2020-02-03")]
    assert back["days_since_prev_session"] == 95  # from Thursday 2019-10-31
    vale = pd.read_csv(gap_csv_dir / "VALE3.SA.csv")
    closes = vale[vale["Date"] <= "2020-02-03"]["Close"].tail(20)  # 19 of them from October
    assert back["ma_20"] == pytest.approx(closes.mean(), rel=1e-12)
    # B3 had sessions in the three months VALE3's file lacks: no daily return across them, flagged.
    assert np.isnan(back["daily_return"]) and back["gap_before"]
    monthly = table(lake, "quotes_monthly").set_index(["ticker", "month"])
    october_close = vale[vale["Date"] <= "2019-10-31"]["Close"].iloc[-1]
    assert monthly.loc[("VALE3", "2020-02"), "monthly_return"] == pytest.approx(
        monthly.loc[("VALE3", "2020-02"), "close_price"] / october_close - 1, rel=1e-12)


def days(first: str, count: int, step: int = 1) -> list[dt.date]:
    start = dt.date.fromisoformat(first)
    return [start + dt.timedelta(days=i * step) for i in range(count)]


def test_raw_days_needed_widens_per_ticker_only_as_far_as_it_must():
    daily = days("2024-01-01", 60)  # AAAA3: a session every day of January and February
    gapped = days("2023-06-01", 25) + days("2024-02-20", 5)  # BBBB4: 25 sessions in June 2023, then late February
    sessions = sessions_needed({"AAAA3": daily, "BBBB4": gapped}, ["AAAA3", "BBBB4"], ["2024-02-26"])
    needed = raw_days_needed(sessions, ["2024-02-26"])
    # The 20-session moving average reaches 19 sessions back (stated here, not read from etl.refine).
    # AAAA3: February from its start, January 31 (last session of the month before), and the 19
    # sessions before the 26th all lie in February. BBBB4 reaches back into June 2023: its 19
    # sessions before the 26th are its 5 of late February and the last 14 of June (12th to 25th).
    expected = {d for d in daily if dt.date(2024, 1, 31) <= d} | set(days("2023-06-12", 14)) | set(gapped[25:])
    assert needed == sorted(d.isoformat() for d in expected)
