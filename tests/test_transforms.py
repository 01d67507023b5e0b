"""The refinement rules on local Spark, against values worked out by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from etl.transforms import build_tables, refine_daily, select_changed, summarize_monthly
from scraper.raw_writer import RAW_QUOTES_SCHEMA

T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
T1 = dt.datetime(2024, 3, 2, 12, 0, tzinfo=dt.UTC)


def raw_row(ticker, day, close, *, ingested=T0, volume=100, adj=None, run="r0", source="csv", prev=None):
    """A raw quote whose open/high/low sit around the close; `prev`: the calendar's session before it."""
    return (dt.date.fromisoformat(day), ticker, close - 0.5, close + 1.0, close - 1.0, close,
            adj if adj is not None else close * 0.9, volume, None, None, source, f"{ticker}.SA", ingested, run,
            None, None if prev is None else dt.date.fromisoformat(prev))


def raw_frame(spark, rows):
    from pyspark.sql.types import (
        DateType,
        DoubleType,
        IntegerType,
        LongType,
        StringType,
        StructField,
        StructType,
        TimestampType,
    )

    types = {"date32[day]": DateType(), "string": StringType(), "double": DoubleType(),
             "int64": LongType(), "int32": IntegerType(), "timestamp[us, tz=UTC]": TimestampType()}
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
    built = build_tables(refine_daily(two_tickers))
    assert set(built) == {"quotes_daily", "quotes_monthly"}
    out = select_changed(built, ["2024-01-08"])
    daily_out, monthly_out = out["quotes_daily"], out["quotes_monthly"]
    # BBBB4 has no session on the 8th: none of its rows can change.
    assert sorted((r["ticker"], r["dt"]) for r in daily_out.collect()) == [
        ("AAAA3", "2024-01-08"), ("AAAA3", "2024-01-09"), ("AAAA3", "2024-02-01")]
    # January's summary, and February's return (it divides by January's close).
    assert sorted((r["ticker"], r["month"]) for r in monthly_out.collect()) == [
        ("AAAA3", "2024-01"), ("AAAA3", "2024-02")]
    monthly_out = select_changed(built, ["2024-01-03"])["quotes_monthly"]
    assert sorted((r["ticker"], r["month"]) for r in monthly_out.collect()) == [
        ("AAAA3", "2024-01"), ("AAAA3", "2024-02"), ("BBBB4", "2024-01")]


def test_select_changed_reaches_nineteen_sessions_forward_and_no_further(spark):
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(25)]
    daily = refine_daily(raw_frame(spark, [raw_row("CCCC3", d.isoformat(), float(i + 1)) for i, d in enumerate(days)]))
    daily_out = select_changed(build_tables(daily), [days[2].isoformat()])["quotes_daily"]
    # ma_20 of the 20th session from the change (days[21]) still averages it; days[22] no longer does.
    assert sorted(r["dt"] for r in daily_out.collect()) == [d.isoformat() for d in days[2:22]]


# --- corporate events: values worked out by hand ---------------------------------------------

def events_frame(spark, rows):
    """corporate_events rows: (ticker, ex_date, kind, share_ratio, cash_per_share[, source, ingested])."""
    from etl.raw_reader import EVENTS_DDL

    def full(ticker, day, kind, ratio, cash, source="events_file", ingested=T0):
        return (ticker, dt.date.fromisoformat(day), kind, ratio, cash, source, kind, ingested, "r0")

    return spark.createDataFrame([full(*row) for row in rows], EVENTS_DDL)


@pytest.fixture
def with_events(spark):
    from etl.transforms import events_in_effect

    rows = [
        # SPLT3: 2:1 split ex 2024-01-05 (12.0 the day before is 6.0 in the new basis).
        raw_row("SPLT3", "2023-12-29", 9.0), raw_row("SPLT3", "2024-01-02", 10.0), raw_row("SPLT3", "2024-01-03", 11.0),
        raw_row("SPLT3", "2024-01-04", 12.0), raw_row("SPLT3", "2024-01-05", 6.5), raw_row("SPLT3", "2024-01-08", 7.0),
        # DIVD4: R$ 1.00 dividend ex 2024-01-03.
        raw_row("DIVD4", "2023-12-29", 20.5), raw_row("DIVD4", "2024-01-02", 20.0), raw_row("DIVD4", "2024-01-03", 19.5),
        # REVS3: 10:1 reverse split ex 2024-01-03 (MGLU3's real closes: 1.32 -> 13.15).
        raw_row("REVS3", "2024-01-02", 1.32), raw_row("REVS3", "2024-01-03", 13.15),
        # BONS3: 5 % bonus ex 2024-01-03, the price exactly diluted.
        raw_row("BONS3", "2024-01-02", 10.5), raw_row("BONS3", "2024-01-03", 10.0),
        # GAPP3: no trade on its ex date 2024-01-03: the split counts on its next session.
        raw_row("GAPP3", "2024-01-02", 10.0), raw_row("GAPP3", "2024-01-04", 5.2),
    ]
    events = events_frame(spark, [
        ("SPLT3", "2024-01-05", "split", 2.0, 0.0),
        ("SPLT3", "2024-01-05", "split", 2.0, 0.0, "b3", T1),  # the same split from a second source: once
        ("DIVD4", "2024-01-03", "cash_dividend", 1.0, 1.0),
        ("REVS3", "2024-01-03", "reverse_split", 0.1, 0.0),
        ("BONS3", "2024-01-03", "bonus", 1.05, 0.0),
        ("GAPP3", "2024-01-03", "split", 2.0, 0.0),
    ])
    daily = refine_daily(raw_frame(spark, rows), events_in_effect(events))
    return by_key(daily, "ticker", "dt"), by_key(summarize_monthly(daily), "ticker", "month")


def test_a_split_is_no_return_and_the_averages_are_in_the_last_sessions_basis(with_events):
    daily, _ = with_events
    ex = daily[("SPLT3", "2024-01-05")]
    # 12.00 before a 2:1 split is 6.00 after it: 6.50 / 6.00 - 1; applied once though two sources list it.
    assert ex["share_ratio"] == 2.0 and ex["daily_return"] == pytest.approx(6.5 / 6.0 - 1, abs=1e-15)
    assert ex["close_price"] == 6.5 and daily[("SPLT3", "2024-01-04")]["close_price"] == 12.0  # as traded
    # ma_5 on the ex date: 9, 10, 11, 12 halved and 6.5 -> (4.5 + 5 + 5.5 + 6 + 6.5) / 5.
    assert ex["ma_5"] == pytest.approx(5.5, abs=1e-12)
    # The next session: 10, 11, 12 halved, 6.5, 7 -> 30 / 5; its return is plain (no event).
    after = daily[("SPLT3", "2024-01-08")]
    assert after["ma_5"] == pytest.approx(6.0, abs=1e-12) and after["share_ratio"] == 1.0
    assert after["daily_return"] == pytest.approx(7.0 / 6.5 - 1, abs=1e-15)
    # Before the split the window is one basis: (9 + 10 + 11 + 12) / 4 sessions: no ma_5 yet.
    assert daily[("SPLT3", "2024-01-04")]["ma_5"] is None


def test_a_dividend_is_a_price_return_and_no_total_return_loss(with_events):
    daily, monthly = with_events
    ex = daily[("DIVD4", "2024-01-03")]
    assert ex["daily_return"] == pytest.approx(19.5 / 20.0 - 1, abs=1e-15)  # the price fell by the cash
    assert ex["total_return"] == pytest.approx((19.5 + 1.0) / 20.0 - 1, abs=1e-15)  # +2.5 % with the cash
    assert ex["cash_per_share"] == 1.0
    # The month: 19.50 / 20.50 - 1 in price, and with the real 1.00 reinvested at 19.50 exactly even.
    january = monthly[("DIVD4", "2024-01")]
    assert january["monthly_return"] == pytest.approx(19.5 / 20.5 - 1, abs=1e-15)
    assert january["monthly_total_return"] == pytest.approx(0.0, abs=1e-15)


def test_reverse_split_bonus_and_an_ex_date_without_a_trade(with_events):
    daily, _ = with_events
    # 1.32 is 13.20 after a 10:1 reverse split: 13.15 / 13.20 - 1 (not +896 %).
    assert daily[("REVS3", "2024-01-03")]["daily_return"] == pytest.approx(13.15 / 13.2 - 1, abs=1e-12)
    # 10.50 is 10.00 after a 5 % bonus: no move.
    assert daily[("BONS3", "2024-01-03")]["daily_return"] == pytest.approx(0.0, abs=1e-15)
    # GAPP3 did not trade on 2024-01-03: its next session carries the split, 5.20 / 5.00 - 1.
    row = daily[("GAPP3", "2024-01-04")]
    assert row["share_ratio"] == 2.0 and row["daily_return"] == pytest.approx(0.04, abs=1e-15)


def test_the_monthly_return_crosses_a_split_in_the_new_basis(with_events):
    _, monthly = with_events
    # December's 9.00 is 4.50 in January's basis: 7.00 / 4.50 - 1; no cash, so the total is the same.
    january = monthly[("SPLT3", "2024-01")]
    assert january["monthly_return"] == pytest.approx(7.0 / 4.5 - 1, abs=1e-15)
    assert january["monthly_total_return"] == pytest.approx(7.0 / 4.5 - 1, abs=1e-15)
    assert monthly[("SPLT3", "2023-12")]["monthly_return"] is None
    # January's prices in the basis of its last session: 10, 11, 12 halved, 6.5, 7 -> mean 6.0; the
    # open 9.5 (the first close 10 - 0.5) halved; highs (close + 1) 11, 12, 13 halved, 7.5, 8 -> 8.0;
    # lows (close - 1) 9, 10, 11 halved, 5.5, 6 -> 4.5. The close is the last session's, 7.0.
    assert (january["avg_close_price"], january["open_price"], january["high_price"], january["low_price"],
            january["close_price"]) == pytest.approx((6.0, 4.75, 8.0, 4.5, 7.0), abs=1e-12)


def test_a_gap_in_the_lake_is_no_return(spark):
    rows = [raw_row("GAPS3", "2024-01-02", 10.0, prev="2023-12-29"),
            raw_row("GAPS3", "2024-01-04", 11.0, prev="2024-01-03"),  # 2024-01-03 was a session: missing here
            raw_row("GAPS3", "2024-01-05", 12.0, prev="2024-01-04"),
            raw_row("OLDS3", "2024-01-02", 10.0), raw_row("OLDS3", "2024-01-04", 11.0)]  # no calendar day: unknown
    daily = by_key(refine_daily(raw_frame(spark, rows)), "ticker", "dt")
    gap = daily[("GAPS3", "2024-01-04")]
    assert gap["gap_before"] is True and gap["daily_return"] is None and gap["total_return"] is None
    assert daily[("GAPS3", "2024-01-05")]["gap_before"] is False
    assert daily[("GAPS3", "2024-01-05")]["daily_return"] == pytest.approx(12.0 / 11.0 - 1, abs=1e-15)
    assert daily[("GAPS3", "2024-01-02")]["gap_before"] is None  # the first session: nothing before it
    assert daily[("OLDS3", "2024-01-04")]["gap_before"] is None
    assert daily[("OLDS3", "2024-01-04")]["daily_return"] == pytest.approx(0.1, abs=1e-15)


def test_a_late_event_changes_the_session_it_applies_to_and_the_windows_it_reaches(spark):
    from etl.transforms import events_in_effect, refine_daily_with_events

    days = [dt.date(2024, 1, 2) + dt.timedelta(days=n) for n in range(40)]
    days = [d for d in days if d.weekday() < 5 and d != dt.date(2024, 1, 10)][:25]  # no trade on 01-10
    raw = raw_frame(spark, [raw_row("LATE3", d.isoformat(), 10.0 + i) for i, d in enumerate(days)])
    events = events_in_effect(events_frame(spark, [("LATE3", "2024-01-10", "split", 2.0, 0.0)]))
    daily = refine_daily_with_events(raw, events)
    # The ex date is no session of LATE3: 2024-01-11 is the first session the split applies to,
    # and it reaches 19 sessions on; nothing before it changes.
    out = select_changed(build_tables(daily), ["2024-01-10"], ["2024-01-10"])["quotes_daily"]
    later = [d.isoformat() for d in days if d > dt.date(2024, 1, 10)][:20]
    assert sorted(r["dt"] for r in out.collect()) == later
