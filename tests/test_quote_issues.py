"""Validation on real files: usable sessions are never dropped, dates are sane, big files are fast."""

from __future__ import annotations

import csv
import datetime as dt
import time

import pandas as pd
import pytest

from b3_quotes.storage import Lake
from scraper import calendar_b3
from scraper.raw_writer import RunStamp, write_quote_issues
from scraper.run import scrape
from scraper.sources.csv_files import CsvSource, read_yahoo_csv_checked
from scraper.validation import count_reasons, validate_quotes
from tests.conftest import TEST_DATA

FORMATS = TEST_DATA / "yfinance_formats"
RULES = calendar_b3.session_rules(dt.datetime(2025, 12, 1, 12, tzinfo=dt.UTC))


def with_ticker(frame: pd.DataFrame, ticker: str) -> pd.DataFrame:
    return frame.assign(ticker=ticker)


def test_float_rounding_outside_the_range_is_no_issue():
    # Counted with the csv module: 27 real sessions have Open or Close outside [Low, High] by
    # at most 3.6e-15, one rounding step of yfinance's 16-digit adjusted prices.
    path = FORMATS / "PETR4.SA.multiindex_download.csv"
    rows = list(csv.reader(path.open()))[3:]
    outside = [r for r in rows if any(not float(r[3]) <= float(x) <= float(r[2]) for x in (r[1], r[4]))]
    assert len(outside) == 27
    valid, issues = validate_quotes(with_ticker(read_yahoo_csv_checked(path)[0], "PETR4"), RULES)
    assert "open_close_outside_range" not in set(issues["reason"])
    kept_days = set(valid["trade_date"])
    assert {dt.date.fromisoformat(r[0]) for r in outside} <= kept_days
    assert len(valid) == len(rows) - len(issues)


def test_yahoo_close_below_its_low_is_kept_and_recorded():
    # Real ABEV3 2014-07-28: Close 16.309999 under Low 16.450001 (Yahoo's own bar).
    frame = with_ticker(read_yahoo_csv_checked(TEST_DATA / "yahoo_inconsistent" / "ABEV3.SA.csv")[0], "ABEV3")
    valid, issues = validate_quotes(frame, RULES)
    day = dt.date(2014, 7, 28)
    assert valid.loc[valid["trade_date"] == day, "close"].item() == 16.309999
    assert len(valid) == len(frame)  # every session loaded: the moving averages of the next days hold
    (issue,) = issues.to_dict("records")
    assert (issue["trade_date"], issue["reason"], issue["action"]) == (day, "open_close_outside_range", "kept")
    assert issue["detail"] == "close 16.309999 is 0.14 below low 16.450001: kept as the source gave it"


def test_high_below_low_within_rounding_is_no_issue():
    day = dt.date(2024, 1, 2)
    frame = pd.DataFrame([("PETR4", day, 30.0, 30.0 - 1e-12, 30.0, 30.0, 30.0, 1.0),
                          ("VALE3", day, 30.0, 29.99, 30.0, 30.0, 30.0, 1.0)],
                         columns=["ticker", "trade_date", "open", "high", "low", "close", "adj_close", "volume"])
    valid, issues = validate_quotes(frame, RULES)
    assert list(valid["ticker"]) == ["PETR4"]
    assert list(issues["detail"]) == ["high 29.99 is 0.01 below low 30"]


@pytest.mark.parametrize(
    ("now", "latest"),
    [
        ("2024-01-05T20:59:00+00:00", "2024-01-04"),  # Friday, a minute before B3's 18:00 close
        ("2024-01-05T21:01:00+00:00", "2024-01-05"),  # just after it
        ("2024-01-06T12:00:00+00:00", "2024-01-05"),  # Saturday
    ],
)
def test_latest_closed_session_follows_the_closing_bell(now, latest):
    assert calendar_b3.latest_closed_session(dt.datetime.fromisoformat(now)) == dt.date.fromisoformat(latest)


def test_future_and_uncalendared_dates_are_rejected_with_their_reason():
    rules = calendar_b3.session_rules(dt.datetime(2024, 1, 5, 12, tzinfo=dt.UTC))
    days = [dt.date(2024, 1, 4), dt.date(2024, 1, 5), dt.date(1999, 12, 30), dt.date(2031, 1, 2)]
    frame = pd.DataFrame({"ticker": "PETR4", "trade_date": days, "open": 30.0, "high": 31.0, "low": 29.0,
                          "close": 30.0, "adj_close": 30.0, "volume": 1.0})
    valid, issues = validate_quotes(frame, rules)
    assert list(valid["trade_date"]) == [dt.date(2024, 1, 4)]
    by_day = dict(zip(issues["trade_date"], zip(issues["reason"], issues["detail"])))
    assert by_day[dt.date(2024, 1, 5)] == ("future_date", "2024-01-05 is after 2024-01-04, the last closed "
                                           "B3 session (São Paulo time)")
    assert by_day[dt.date(2031, 1, 2)][0] == "future_date"
    reason, detail = by_day[dt.date(1999, 12, 30)]
    assert reason == "outside_calendar" and "outside the B3 calendar (2000-01-03 .. " in detail
    assert "cannot be checked as a session" in detail


def test_a_file_of_made_up_dates_is_checked_fast_and_filed_in_one_partition(tmp_path):
    # 200,000 rows, one per calendar day from 1700-01-01 (to 2247-07-26).
    days = pd.date_range("1700-01-01", periods=200_000, freq="D")
    frame = pd.DataFrame({"ticker": "PETR4", "trade_date": days.date, "open": 30.0, "high": 31.0, "low": 29.0,
                          "close": 30.0, "adj_close": 30.0, "volume": 1.0})
    rules = calendar_b3.session_rules(dt.datetime(2025, 12, 1, 12, tzinfo=dt.UTC))
    began = time.perf_counter()
    valid, issues = validate_quotes(frame, rules)
    took = time.perf_counter() - began
    # Independently: the sessions are the calendar's from 2000-01-03 to 2025-12-01 (a Monday,
    # before its close at 12:00 UTC: the last closed one is 2025-11-28).
    sessions = calendar_b3.sessions_between(dt.date(2000, 1, 3), dt.date(2025, 11, 28))
    assert len(valid) == len(sessions)
    in_range = (frame["trade_date"] >= dt.date(2000, 1, 3)) & (frame["trade_date"] <= dt.date(2025, 11, 28))
    future = int((frame["trade_date"] > dt.date(2025, 11, 28)).sum())
    assert count_reasons(issues) == {"future_date": future,
                                     "outside_calendar": int((frame["trade_date"] < dt.date(2000, 1, 3)).sum()),
                                     "not_a_b3_session": int(in_range.sum()) - len(sessions)}
    assert took < 20, f"{took:.1f} s for 200,000 rows"
    now = dt.datetime(2025, 12, 1, 12, tzinfo=dt.UTC)
    undated = issues[issues["reason"] != "not_a_b3_session"]
    assert len(undated) > 190_000
    began = time.perf_counter()
    keys = write_quote_issues(Lake.local(tmp_path), undated, RunStamp("csv", {}, now, "r"))
    assert time.perf_counter() - began < 20
    assert keys == [k for k in keys if "dt=2025-12-01" in k] and len(keys) == 1


def test_csv_run_loads_the_kept_bar_and_reports_it(tmp_path):
    now = dt.datetime(2025, 12, 1, 12, tzinfo=dt.UTC)
    report = scrape(CsvSource(TEST_DATA / "yahoo_inconsistent"), Lake.local(tmp_path / "lake"), ["ABEV3"],
                    None, None, now)
    assert report.written is not None and report.written.rows == 51
    assert report.kept_with_issue == {"open_close_outside_range": 1} and not report.rejected


def test_the_kept_bar_counts_in_the_moving_averages_of_the_next_sessions(tmp_path, capsys):
    from scraper import scraper_upload
    from tests.helpers import run_local

    csv_dir = TEST_DATA / "yahoo_inconsistent"
    lake = tmp_path / "lake"
    assert scraper_upload.main(["--source", "csv", "--csv-dir", str(csv_dir), "--tickers", "ABEV3",
                                "--lake-dir", str(lake)]) == 0
    # By hand from the file: every session's close, the mean of the last 5 and 20 including the day.
    rows = list(csv.reader((csv_dir / "ABEV3.SA.csv").open()))[1:]
    closes = [(r[0], float(r[4])) for r in rows]
    expected = {}
    for n, (day, _) in enumerate(closes):
        window = [c for _, c in closes[max(0, n - 19):n + 1]]
        expected[day] = (sum(window[-5:]) / 5 if n >= 4 else None, sum(window) / 20 if n >= 19 else None)
    _, got = run_local(lake, "SELECT dt, ma_5, ma_20 FROM quotes_daily WHERE dt >= '2014-07-28' ORDER BY dt")
    assert len(got) == sum(day >= "2014-07-28" for day, _ in closes) == 29  # 2014-07-28 .. 2014-09-04
    for day, ma_5, ma_20 in got:
        want_5, want_20 = expected[day]
        assert ma_5 == pytest.approx(want_5, rel=1e-12) and (ma_20 is None) == (want_20 is None), day
        assert want_20 is None or ma_20 == pytest.approx(want_20, rel=1e-12), day
    assert "kept      1 rows (open_close_outside_range 1)" in capsys.readouterr().out
