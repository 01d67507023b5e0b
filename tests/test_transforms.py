"""The refinement rules on local Spark, against values worked out by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from etl.transforms import refine_daily, select_changed, summarize_monthly
from scraper.raw_writer import RAW_QUOTES_SCHEMA

T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
T1 = dt.datetime(2024, 3, 2, 12, 0, tzinfo=dt.UTC)


def raw_row(ticker, day, close, *, ingested=T0, volume=100, adj=None, run="r0", source="csv"):
    """A raw quote whose open/high/low sit around the close."""
    return (dt.date.fromisoformat(day), ticker, close - 0.5, close + 1.0, close - 1.0, close,
            adj if adj is not None else close * 0.9, volume, None, None, source, f"{ticker}.SA", ingested, run)


def raw_frame(spark, rows):
    from pyspark.sql.types import DateType, DoubleType, LongType, StringType, StructField, StructType, TimestampType

    types = {"date32[day]": DateType(), "string": StringType(), "double": DoubleType(),
             "int64": LongType(), "timestamp[us, tz=UTC]": TimestampType()}
    schema = StructType([StructField(f.name, types[str(f.type)]) for f in RAW_QUOTES_SCHEMA])
    frame = spark.createDataFrame(rows, schema)
    return frame.withColumn("dt", frame["trade_date"].cast("string"))


def by_key(frame, *keys):
    return {tuple(r[k] for k in keys): r.asDict() for r in frame.collect()}


@pytest.fixture
def two_tickers(spark):
    # AAAA: six sessions over a weekend gap, one session ingested twice; BBBB interleaved.
    rows = [
        raw_row("AAAA3", "2024-01-02", 10.0),
        raw_row("BBBB4", "2024-01-03", 50.0, volume=7),
        raw_row("AAAA3", "2024-01-03", 11.0),
        raw_row("AAAA3", "2024-01-04", 99.0, run="r0"),        # superseded below
        raw_row("AAAA3", "2024-01-04", 12.0, ingested=T1, run="r1"),
        raw_row("AAAA3", "2024-01-05", 13.0),
        raw_row("BBBB4", "2024-01-05", 40.0, volume=3),
        raw_row("AAAA3", "2024-01-08", 14.0),                  # Monday: 3 days after Friday
        raw_row("AAAA3", "2024-01-09", 15.0),
        raw_row("AAAA3", "2024-02-01", 16.5, volume=1000),
    ]
    return raw_frame(spark, rows)


def test_refine_daily_renames_price_columns(two_tickers):
    daily = refine_daily(two_tickers)
    for name in ("open_price", "high_price", "low_price", "close_price", "adj_close_price", "volume"):
        assert name in daily.columns
    assert not {"open", "high", "low", "close", "adj_close"} & set(daily.columns)


def test_refine_daily_latest_ingestion_wins(two_tickers):
    rows = by_key(refine_daily(two_tickers), "ticker", "dt")
    assert len(rows) == 9  # ten raw rows, one (ticker, day) twice
    assert rows[("AAAA3", "2024-01-04")]["close_price"] == 12.0


def test_refine_daily_returns_and_gaps(two_tickers):
    rows = by_key(refine_daily(two_tickers), "ticker", "dt")
    a = [rows[("AAAA3", d)] for d in ("2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05",
                                       "2024-01-08", "2024-01-09", "2024-02-01")]
    # close 10 -> 11 -> 12 -> 13 -> 14 -> 15 -> 16.5
    assert a[0]["daily_return"] is None
    assert [r["daily_return"] for r in a[1:]] == pytest.approx([0.1, 1 / 11, 1 / 12, 1 / 13, 1 / 14, 0.1])
    assert [r["days_since_prev_session"] for r in a] == [None, 1, 1, 1, 3, 1, 23]
    b = [rows[("BBBB4", d)] for d in ("2024-01-03", "2024-01-05")]
    assert b[0]["daily_return"] is None and b[0]["days_since_prev_session"] is None
    assert b[1]["daily_return"] == pytest.approx(40 / 50 - 1)  # -20 %, ignoring AAAA3 between
    assert b[1]["days_since_prev_session"] == 2


def test_refine_daily_moving_averages_need_full_windows(two_tickers):
    rows = by_key(refine_daily(two_tickers), "ticker", "dt")
    ma5 = [rows[("AAAA3", d)]["ma_5"] for d in ("2024-01-05", "2024-01-08", "2024-01-09", "2024-02-01")]
    # fourth session: only 4 closes; then mean(10..14) = 12, mean(11..15) = 13, mean(12..15, 16.5) = 14.1
    assert ma5[0] is None
    assert ma5[1:] == pytest.approx([12.0, 13.0, 14.1])
    assert all(r["ma_20"] is None for r in rows.values())  # nobody has 20 sessions
    assert rows[("BBBB4", "2024-01-05")]["ma_5"] is None


def test_refine_daily_ma_20_on_the_twentieth_session(spark):
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(21)]
    rows = [raw_row("CCCC3", d.isoformat(), float(i + 1)) for i, d in enumerate(days)]
    out = by_key(refine_daily(raw_frame(spark, rows)), "dt")
    assert out[(days[18].isoformat(),)]["ma_20"] is None
    assert out[(days[19].isoformat(),)]["ma_20"] == pytest.approx(10.5)  # mean(1..20)
    assert out[(days[20].isoformat(),)]["ma_20"] == pytest.approx(11.5)  # mean(2..21)


def test_summarize_monthly_aggregates(two_tickers):
    monthly = by_key(summarize_monthly(refine_daily(two_tickers)), "ticker", "month")
    jan = monthly[("AAAA3", "2024-01")]
    # Jan sessions: closes 10, 11, 12, 13, 14, 15; opens are close - 0.5
    assert jan["sessions"] == 6
    assert jan["open_price"] == 9.5
    assert jan["close_price"] == 15.0
    assert jan["high_price"] == 16.0 and jan["low_price"] == 9.0
    assert jan["total_volume"] == 600
    assert jan["avg_close_price"] == pytest.approx(12.5)
    assert jan["monthly_return"] is None
    assert (jan["first_session"], jan["last_session"]) == (dt.date(2024, 1, 2), dt.date(2024, 1, 9))
    feb = monthly[("AAAA3", "2024-02")]
    assert feb["sessions"] == 1 and feb["total_volume"] == 1000
    assert feb["monthly_return"] == pytest.approx(16.5 / 15 - 1)
    bbbb = monthly[("BBBB4", "2024-01")]
    assert (bbbb["open_price"], bbbb["close_price"], bbbb["total_volume"]) == (49.5, 40.0, 10)


def test_select_changed_keeps_the_changed_rows_and_those_their_windows_reach(two_tickers):
    daily = refine_daily(two_tickers)
    monthly = summarize_monthly(daily)
    daily_out, monthly_out = select_changed(daily, monthly, ["2024-01-08"])
    # BBBB4 has no session on the 8th: none of its rows can change.
    assert sorted((r["ticker"], r["dt"]) for r in daily_out.collect()) == [
        ("AAAA3", "2024-01-08"), ("AAAA3", "2024-01-09"), ("AAAA3", "2024-02-01")]
    # January's summary, and February's return (it divides by January's close).
    assert sorted((r["ticker"], r["month"]) for r in monthly_out.collect()) == [
        ("AAAA3", "2024-01"), ("AAAA3", "2024-02")]
    _, monthly_out = select_changed(daily, monthly, ["2024-01-03"])
    assert sorted((r["ticker"], r["month"]) for r in monthly_out.collect()) == [
        ("AAAA3", "2024-01"), ("AAAA3", "2024-02"), ("BBBB4", "2024-01")]


def test_select_changed_reaches_nineteen_sessions_forward_and_no_further(spark):
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(25)]
    daily = refine_daily(raw_frame(spark, [raw_row("CCCC3", d.isoformat(), float(i + 1)) for i, d in enumerate(days)]))
    daily_out, _ = select_changed(daily, summarize_monthly(daily), [days[2].isoformat()])
    # ma_20 of the 20th session from the change (days[21]) still averages it; days[22] no longer does.
    assert sorted(r["dt"] for r in daily_out.collect()) == [d.isoformat() for d in days[2:22]]
