"""Corporate events through the whole local pipeline, on real prices.

The independent check: a real split-adjusted Yahoo series (the bundled sample) with an event put
back into it by hand gives exactly the untouched series' returns, averages and monthly rows, and
the back-adjusted view gives the untouched prices. Real COTAHIST records around BBAS3's split and
MGLU3's reverse split, with B3's own event payloads, give as-traded prices and flat returns.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, SAMPLE_DIR
from tests.helpers import END, START, TICKERS, run_local, run_scraper, sorted_table

EVENTS_DATA = REPO / "tests" / "data" / "corporate_events"
EX_DATE = "2020-01-15"  # a Wednesday inside the full lake's range, both tickers trade on it
# The values that do not depend on the price basis, and those in the basis of the row's own last
# session: the untouched (adjusted to the latest basis) series' times the ratio before the event.
RETURNS = {"quotes_daily": ["daily_return", "total_return"], "quotes_monthly": ["monthly_return", "monthly_total_return"]}
IN_ROW_BASIS = {"quotes_daily": ["ma_5", "ma_20", "close_price", "open_price", "high_price", "low_price"],
                "quotes_monthly": ["avg_close_price", "close_price", "open_price", "high_price", "low_price"]}
PERIOD = {"quotes_daily": ("dt", EX_DATE), "quotes_monthly": ("month", EX_DATE[:7])}


def with_event_put_back(folder: Path, ratio: float, yahoo_columns: bool) -> Path:
    """The sample's files with a `ratio` (new shares per old) event on EX_DATE for every ticker.

    yahoo_columns: the prices stay as Yahoo adjusted them, and `Stock Splits` says `ratio` on the ex
    date (what Ticker.history() writes). Otherwise the event is put back into the prices by hand,
    as traded: before the ex date each price times `ratio`, the volume divided by it.
    """
    folder.mkdir()
    for ticker in TICKERS:
        csv = pd.read_csv(SAMPLE_DIR / f"{ticker}.SA.csv", dtype={"Date": str})
        before = csv["Date"] < EX_DATE
        if yahoo_columns:
            csv["Dividends"] = 0.0
            csv["Stock Splits"] = np.where(csv["Date"] == EX_DATE, ratio, 0.0)
        else:
            for column in ("Open", "High", "Low", "Close"):
                csv.loc[before, column] = csv.loc[before, column] * ratio
            csv.loc[before, "Volume"] = (csv.loc[before, "Volume"] / ratio).round()
        csv.to_csv(folder / f"{ticker}.SA.csv", index=False, float_format="%.17g")
    return folder


def events_file(path: Path, kind: str, ratio: float) -> Path:
    path.write_text("ticker,ex_date,kind,share_ratio,cash_per_share\n"
                    + "".join(f"{t},{EX_DATE},{kind},{ratio},\n" for t in TICKERS))
    return path


@pytest.mark.parametrize(("kind", "ratio", "yahoo_columns"), [
    ("split", 2.0, True),            # Yahoo's own split column: undone, then corrected for
    ("split", 2.0, False),           # a 2:1 split put back by hand, the event from --events-file
    ("reverse_split", 0.1, False),   # a 10:1 reverse split
    ("bonus", 1.05, False),          # a 5 % bonus
])
def test_an_event_put_back_into_real_prices_changes_no_return_and_the_view_undoes_it(
        full_lake, tmp_path, kind, ratio, yahoo_columns):
    csv_dir = with_event_put_back(tmp_path / "csv", ratio, yahoo_columns)
    lake = tmp_path / "lake"
    extra = [] if yahoo_columns else ["--events-file", str(events_file(tmp_path / "events.csv", kind, ratio))]
    assert run_scraper(lake, "--source", "csv", "--csv-dir", str(csv_dir), "--tickers", ",".join(TICKERS),
                       "--start", START, "--end", END, *extra) == 0
    for table in RETURNS:
        got, untouched = sorted_table(lake, table), sorted_table(full_lake, table)
        assert len(got) == len(untouched) > 0
        for column in RETURNS[table]:  # every event-corrected return is the untouched series' one
            np.testing.assert_allclose(got[column].astype(float), untouched[column].astype(float),
                                       rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=f"{table}.{column}")
        # Prices as traded, averages in the basis of their window's (month's) last session: before
        # the event that is the old basis, the untouched value times the ratio; from it on, the same.
        period, first_new = PERIOD[table]
        factor = np.where((got[period] < first_new).to_numpy(), ratio, 1.0)
        for column in IN_ROW_BASIS[table]:
            np.testing.assert_allclose(got[column].astype(float), untouched[column].astype(float) * factor,
                                       rtol=1e-9, equal_nan=True, err_msg=f"{table}.{column}")
    daily, untouched = sorted_table(lake, "quotes_daily"), sorted_table(full_lake, "quotes_daily")
    assert set(daily.loc[daily["dt"] == EX_DATE, "share_ratio"]) == {ratio}
    assert set(daily.loc[daily["dt"] != EX_DATE, "share_ratio"]) == {1.0}
    # The back-adjusted view gives the untouched prices and volumes back.
    columns, rows = run_local(lake, "SELECT ticker, dt, open, high, low, close, volume, total_return_close "
                                    "FROM quotes_daily_adjusted ORDER BY ticker, dt")
    view = pd.DataFrame(rows, columns=columns)
    assert list(zip(view["ticker"], view["dt"])) == list(zip(untouched["ticker"], untouched["dt"]))
    for mine, theirs in (("open", "open_price"), ("high", "high_price"), ("low", "low_price"), ("close", "close_price"),
                         ("total_return_close", "close_price")):  # no cash: the total-return close is the close
        np.testing.assert_allclose(view[mine], untouched[theirs], rtol=1e-9, err_msg=mine)
    # A volume divided by the ratio was rounded to whole shares: back within the ratio's rounding.
    np.testing.assert_allclose(view["volume"], untouched["volume"], atol=max(1.0, ratio))


def cotahist_file(path: Path, records: list[str]) -> Path:
    """Real records between a header and a trailer (what B3's daily file wraps them in)."""
    header = "00COTAHIST.2024BOVESPA 20240527".ljust(245)
    trailer = ("99COTAHIST.2024BOVESPA 20240527" + f"{len(records) + 2:011d}").ljust(245)
    path.write_bytes("\r\n".join([header, *records, trailer]).encode() + b"\r\n")
    return path


def payload(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(json.loads((EVENTS_DATA / "b3_listed_company_events.DERIVED.json").read_text())[name]))
    return path


@pytest.fixture(scope="module")
def b3_events_lake(tmp_path_factory) -> Path:
    """The 2024 COTAHIST event records of BBAS3, MGLU3 and VALE3, with B3's BBAS and MGLU payloads."""
    tmp = tmp_path_factory.mktemp("b3_events")
    records = [r for r in (EVENTS_DATA / "cotahist_event_records_2024.DERIVED.TXT").read_text().splitlines()
               if r[12:24].strip() in ("BBAS3", "MGLU3", "VALE3")]
    cotahist = cotahist_file(tmp / "COTAHIST_EVENTS.TXT", records)
    lake = tmp / "lake"
    assert run_scraper(lake, "--source", "b3", "--cotahist-file", str(cotahist), "--tickers", "BBAS3,MGLU3,VALE3",
                       "--b3-events-file", str(payload(tmp, "BBAS_SUPPLEMENT")),
                       "--b3-events-file", str(payload(tmp, "MGLU_SUPPLEMENT"))) == 0
    return lake


def test_cotahist_closes_are_stored_as_traded_and_the_events_returns_are_flat(b3_events_lake):
    columns, rows = run_local(b3_events_lake, "SELECT ticker, dt, close_price, daily_return, share_ratio "
                                              "FROM quotes_daily WHERE ticker IN ('BBAS3', 'MGLU3') ORDER BY ticker, dt")
    daily = {(r[0], r[1]): dict(zip(columns, r)) for r in rows}
    # The records' PREULT (positions 109-121, two decimals): B3's file says 56.46 and 27.91, 1.32 and 13.15.
    assert daily[("BBAS3", "2024-04-15")]["close_price"] == 56.46 and daily[("BBAS3", "2024-04-16")]["close_price"] == 27.91
    assert daily[("MGLU3", "2024-05-24")]["close_price"] == 1.32 and daily[("MGLU3", "2024-05-27")]["close_price"] == 13.15
    # The split's day: 56.46 is 28.23 in the new basis, -1.13 % (not -50.6 %); MGLU3: 1.32 is 13.20, -0.38 % (not +896 %).
    assert daily[("BBAS3", "2024-04-16")]["daily_return"] == pytest.approx(27.91 / 28.23 - 1, abs=1e-12)
    assert daily[("MGLU3", "2024-05-27")]["daily_return"] == pytest.approx(13.15 / 13.2 - 1, abs=1e-12)
    assert daily[("MGLU3", "2024-05-27")]["share_ratio"] == 0.1


def test_dismes_is_kept_and_an_increment_with_no_event_is_reported(b3_events_lake):
    columns, rows = run_local(b3_events_lake, "SELECT ticker, CAST(trade_date AS VARCHAR), dismes FROM quotes "
                                              "WHERE ticker = 'MGLU3' ORDER BY trade_date")
    assert rows == [("MGLU3", "2024-05-24", 123), ("MGLU3", "2024-05-27", 124)]  # DISMES, positions 243-245
    _, issues = run_local(b3_events_lake, "SELECT ticker, CAST(trade_date AS VARCHAR), reason, action FROM quote_issues "
                                          "WHERE reason = 'distribution_without_event' ORDER BY ticker, trade_date")
    # VALE3's dividend (209 -> 210 on 2024-03-12) has no event loaded: reported, kept. MGLU3's and
    # BBAS3's split days have B3's events. BBAS3's records jump from 02-22 to 04-15 and from 04-16 to
    # 06-12 (321, 323: events between the records) and 06-13 -> 06-14 (324): no event known for those.
    assert issues == [("BBAS3", "2024-02-22", "distribution_without_event", "kept"),
                      ("BBAS3", "2024-04-15", "distribution_without_event", "kept"),
                      ("BBAS3", "2024-06-12", "distribution_without_event", "kept"),
                      ("BBAS3", "2024-06-14", "distribution_without_event", "kept"),
                      ("VALE3", "2024-03-12", "distribution_without_event", "kept")]


def test_loading_the_same_events_twice_adds_nothing(b3_events_lake, tmp_path):
    before = run_local(b3_events_lake, "SELECT * EXCLUDE (ingested_at, run_id) FROM corporate_events ORDER BY ALL")[1]
    assert run_scraper(b3_events_lake, "--events-only", "--b3-events-file", str(payload(tmp_path, "BBAS_SUPPLEMENT")),
                       "--b3-events-file", str(payload(tmp_path, "MGLU_SUPPLEMENT"))) == 0
    after = run_local(b3_events_lake, "SELECT * EXCLUDE (ingested_at, run_id) FROM corporate_events ORDER BY ALL")[1]
    assert after == before and len(after) == 4  # BBAS3's split, MGLU3's split, reverse split and bonus


def test_incremental_runs_with_events_equal_one_full_run(full_lake, tmp_path):
    from tests.helpers import assert_same_tables

    csv_dir = with_event_put_back(tmp_path / "csv", 2.0, yahoo_columns=False)
    events = ["--events-file", str(events_file(tmp_path / "events.csv", "split", 2.0))]
    scrape = ["--source", "csv", "--csv-dir", str(csv_dir), "--tickers", ",".join(TICKERS)]
    full = tmp_path / "full"
    assert run_scraper(full, *scrape, "--start", START, "--end", END, *events) == 0
    # The event loaded with the first run, before its ex date has a price; the rest day by day, then in a block.
    daily = tmp_path / "daily"
    assert run_scraper(daily, *scrape, "--start", START, "--end", "2020-01-10", *events) == 0
    for day in ("2020-01-13", "2020-01-14", EX_DATE, "2020-01-16"):
        assert run_scraper(daily, *scrape, "--start", day, "--end", day) == 0
    assert run_scraper(daily, *scrape, "--start", "2020-01-17", "--end", END) == 0
    assert_same_tables(daily, full)


def refined_files(lake: Path) -> dict[str, int]:
    return {str(p.relative_to(lake)): p.stat().st_mtime_ns for p in (lake / "refined").rglob("*.parquet")}


def test_a_late_events_file_rewrites_only_the_windows_it_touches(full_lake, tmp_path):
    from tests.helpers import copy_lake

    lake = copy_lake(full_lake, tmp_path)
    before = refined_files(lake)
    # VALE3 paid R$ 2.00 on 2020-01-15 (a made-up dividend: what it changes is the point), loaded afterwards.
    late = tmp_path / "late.csv"
    late.write_text(f"ticker,ex_date,kind,share_ratio,cash_per_share\nVALE3,{EX_DATE},cash_dividend,,2.0\n")
    assert run_scraper(lake, "--events-only", "--events-file", str(late)) == 0
    after = refined_files(lake)
    rewritten = sorted(k for k in after if after[k] != before.get(k))
    vale_days = sorted(k.split("/")[2][3:] for k in before if k.startswith("refined/quotes_daily/dt=") and "VALE3" in k)
    reach = [d for d in vale_days if d >= EX_DATE][:20]  # the ex date and the 19 sessions its windows reach
    assert rewritten == sorted([
        *(f"refined/quotes_daily/dt={d}/ticker=VALE3/part-0.snappy.parquet" for d in reach),
        "refined/quotes_monthly/month=2020-01/ticker=VALE3/part-0.snappy.parquet",
        "refined/quotes_monthly/month=2020-02/ticker=VALE3/part-0.snappy.parquet",  # its return reads January's close
        "refined/quotes_daily_compact/year=2020/part-0.snappy.parquet",
        "refined/quotes_monthly_compact/year=2020/part-0.snappy.parquet",
    ])
    untouched, got = sorted_table(full_lake, "quotes_daily"), sorted_table(lake, "quotes_daily")
    ex = (got["ticker"] == "VALE3") & (got["dt"] == EX_DATE)
    # The price return is the same; the total return adds 2.00 on the previous close.
    previous_close = untouched.loc[(untouched["ticker"] == "VALE3") & (untouched["dt"] < EX_DATE), "close_price"].iloc[-1]
    assert got.loc[ex, "daily_return"].item() == pytest.approx(untouched.loc[ex, "daily_return"].item(), abs=1e-15)
    assert got.loc[ex, "total_return"].item() == pytest.approx(
        untouched.loc[ex, "daily_return"].item() + 2.0 / previous_close, abs=1e-12)


def test_a_lake_refined_before_these_columns_is_rebuilt_from_raw_once(full_lake, tmp_path, capsys):
    import pyarrow.parquet as pq

    from tests.helpers import assert_same_tables, copy_lake, csv_run

    lake = copy_lake(full_lake, tmp_path)
    new = {"total_return", "gap_before", "share_ratio", "cash_per_share", "monthly_total_return"}
    for path in (lake / "refined").glob("*_compact/year=*/*.parquet"):  # as the previous version wrote them
        table = pq.read_table(path, partitioning=None)
        pq.write_table(table.drop_columns([c for c in table.column_names if c in new]), path)
    assert csv_run(lake, "2020-03-31", "2020-03-31") == 0  # a day again: its years' compact files are merged
    assert "lacks total_return" in capsys.readouterr().out  # said, then every refined table rebuilt from raw
    assert_same_tables(lake, full_lake)
