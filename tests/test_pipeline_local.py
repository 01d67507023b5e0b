"""The whole local pipeline in a temporary folder: scraper -> raw -> handler -> Spark -> DuckDB."""

from __future__ import annotations

import shutil
import time

import pandas as pd
import pytest

from b3_quotes.catalog.query import bind_params
from b3_quotes.local_mode.duckdb_views import CATALOG_FILE
from tests.conftest import REPO, SAMPLE_DIR
from tests.helpers import (
    END,
    SPLIT,
    START,
    TICKERS,
    assert_close,
    csv_run,
    expected_daily,
    expected_monthly,
    read_table,
    run_local,
)
from tests.helpers import run_scraper as run

pytestmark = pytest.mark.integration


def test_full_run_lays_out_raw_and_refined_tables(full_lake):
    raw_days = sorted(p.name for p in (full_lake / "raw/quotes").iterdir())
    assert raw_days[0] == "dt=2019-10-01" and raw_days[-1] == "dt=2020-03-31"
    assert len(list((full_lake / "raw/_manifests").glob("*.json"))) == 1
    daily_parts = list((full_lake / "refined/quotes_daily").glob("dt=*/ticker=*"))
    assert (full_lake / "refined/quotes_daily/dt=2020-03-31/ticker=PETR4").is_dir()
    assert all(len(list(p.glob("*.parquet"))) == 1 for p in daily_parts)
    assert (full_lake / "refined/quotes_monthly/month=2020-02/ticker=VALE3").is_dir()
    assert (full_lake / CATALOG_FILE).is_file()


def test_full_run_equals_independent_computation(full_lake):
    actual = read_table(full_lake, "quotes_daily").sort_values(["ticker", "dt"]).reset_index(drop=True)
    expected = expected_daily(START, END).sort_values(["ticker", "dt"]).reset_index(drop=True)
    assert list(actual["dt"]) == list(expected["dt"]) and list(actual["ticker"]) == list(expected["ticker"])
    for column in ("close_price", "daily_return", "ma_5", "ma_20", "days_since_prev_session", "volume"):
        assert_close(actual[column], expected[column])
    # Carnival (Feb 24-25) and a `null` Ash Wednesday row in Yahoo's file: Friday 21st to Thursday 27th.
    petr = actual[actual["ticker"] == "PETR4"].set_index("dt")
    assert petr.loc["2020-02-27", "days_since_prev_session"] == 6
    assert petr.loc["2020-03-31", "close_price"] == 13.99  # the CSV row: 2020-03-31,...,13.990000,...


def test_full_run_monthly_equals_independent_computation(full_lake):
    actual = read_table(full_lake, "quotes_monthly").sort_values(["ticker", "month"]).reset_index(drop=True)
    expected = expected_monthly(expected_daily(START, END)).sort_values(["ticker", "month"]).reset_index(drop=True)
    assert list(zip(actual["ticker"], actual["month"])) == list(zip(expected["ticker"], expected["month"]))
    for column in ("sessions", "close_price", "total_volume", "avg_close_price", "monthly_return"):
        assert_close(actual[column], expected[column])


def test_two_incremental_runs_equal_one_full_run(full_lake, tmp_path):
    lake = tmp_path / "lake"
    assert csv_run(lake, START, "2020-01-14") == 0
    assert csv_run(lake, SPLIT, END) == 0  # splits January in two
    for table, keys in (("quotes_daily", ["ticker", "dt"]), ("quotes_monthly", ["ticker", "month"])):
        incremental = read_table(lake, table).drop(columns=["ingested_at"], errors="ignore")
        full = read_table(full_lake, table).drop(columns=["ingested_at"], errors="ignore")
        pd.testing.assert_frame_equal(incremental.sort_values(keys).reset_index(drop=True),
                                      full.sort_values(keys).reset_index(drop=True), check_exact=False, rtol=1e-12)


def test_same_run_twice_leaves_no_duplicates(tmp_path, capsys):
    lake = tmp_path / "lake"
    assert csv_run(lake, "2020-03-02", END) == 0
    assert "refining locally" in capsys.readouterr().out
    first_raw = sorted(p.relative_to(lake) for p in (lake / "raw/quotes").rglob("*.parquet"))
    assert run(lake, "--source", "csv", "--csv-dir", str(SAMPLE_DIR), "--tickers", "PETR4,VALE3",
               "--start", "2020-03-02", "--end", END, "--quiet") == 0
    assert capsys.readouterr() == ("", "")  # --quiet: nothing went wrong, nothing said
    assert sorted(p.relative_to(lake) for p in (lake / "raw/quotes").rglob("*.parquet")) == first_raw
    daily = read_table(lake, "quotes_daily")
    assert len(daily) == 2 * 22 and not daily.duplicated(["ticker", "dt"]).any()
    assert len(read_table(lake, "quotes_monthly")) == 2


def test_unknown_ticker_loads_the_others_and_exits_3(tmp_path, capsys):
    lake = tmp_path / "lake"
    code = run(lake, "--source", "csv", "--csv-dir", str(SAMPLE_DIR), "--tickers", "PETR4,XPTO3",
               "--start", "2020-06-01", "--end", "2020-06-09")
    assert code == 3
    assert "no data for XPTO3" in capsys.readouterr().err
    assert set(read_table(lake, "quotes_daily")["ticker"]) == {"PETR4"}


def test_holiday_range_is_a_notice_and_calls_no_source(tmp_path, capsys, monkeypatch):
    import yfinance

    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pytest.fail("no session: nothing to download"))
    code = run(tmp_path / "lake", "--tickers", "PETR4", "--start", "2024-12-25", "--end", "2024-12-25")
    assert code == 0
    assert "no B3 session between 2024-12-25 and 2024-12-25" in capsys.readouterr().out
    assert not (tmp_path / "lake").exists()


def test_malformed_csv_writes_nothing_and_exits_5(tmp_path, capsys):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    shutil.copy(SAMPLE_DIR / "PETR4.SA.csv", csv_dir)
    lines = (SAMPLE_DIR / "VALE3.SA.csv").read_text().splitlines()
    lines[5] = lines[5].replace(",", ";")
    (csv_dir / "VALE3.SA.csv").write_text("\n".join(lines))
    code = run(tmp_path / "lake", "--source", "csv", "--csv-dir", str(csv_dir), "--tickers", ",".join(TICKERS))
    assert code == 5
    err = capsys.readouterr().err
    assert "VALE3.SA.csv:6" in err and "nothing written" in err
    assert not (tmp_path / "lake").exists()


def test_unreachable_network_times_out_and_exits_4(tmp_path, capsys, monkeypatch):
    import yfinance

    monkeypatch.setattr(yfinance, "download", lambda *a, **k: time.sleep(60))
    monkeypatch.setenv("DOWNLOAD_TIMEOUT_S", "1")
    began = time.monotonic()
    code = run(tmp_path / "lake", "--tickers", "PETR4", "--start", "2024-01-02", "--end", "2024-01-05")
    assert code == 4 and time.monotonic() - began < 10
    assert "did not answer within 1 s" in capsys.readouterr().err
    assert not (tmp_path / "lake").exists()


def test_sql_examples_run_on_the_local_catalog(full_lake):
    # ibov_weighted_returns.sql needs the IBOV snapshot: run in the b3 test below.
    # Each ${name} at its file's default, as `python -m b3_quotes.catalog.query --file` binds it.
    results = {p.stem: run_local(full_lake, bind_params(p.read_text())) for p in sorted((REPO / "sql").glob("*.sql"))
               if not p.stem.startswith("ibov")}
    assert {r[0] for r in results["ticker_history"][1]} >= {"2019-10-01", "2020-03-31"}
    assert set(results) >= {"latest_sessions", "monthly_returns", "best_and_worst_days"}
    columns, rows = results["latest_sessions"]
    latest = [dict(zip(columns, r)) for r in rows]
    assert [(r["ticker"], r["dt"]) for r in latest[:3]] == [("PETR4", "2020-03-31"), ("PETR4", "2020-03-30"),
                                                           ("PETR4", "2020-03-27")]
    assert len(latest) == 6
    expected = expected_daily(START, END).set_index(["ticker", "dt"])
    assert latest[0]["ma_20"] == pytest.approx(expected.loc[("PETR4", "2020-03-31"), "ma_20"])
    columns, rows = results["monthly_returns"]
    assert len(rows) == 2 * 6  # two tickers, October to March
    columns, rows = results["best_and_worst_days"]
    best = {r[0]: r[1] for r in rows}
    assert best["PETR4"] == pytest.approx(expected.loc["PETR4", "daily_return"].max())


B3_DATA = REPO / "data" / "b3"


def test_b3_source_with_ibov_universe_through_the_pipeline(tmp_path, capsys):
    lake = tmp_path / "lake"
    code = run(lake, "--source", "b3", "--cotahist-file", str(B3_DATA / "COTAHIST_D25062021.ZIP"),
               "--universe", "ibov", "--ibov-file", str(B3_DATA / "GetPortfolioDay_IBOV_2025-04-07.body.json"))
    out = capsys.readouterr()
    # The 2025 portfolio holds 9 stocks that did not trade under those codes in June 2021.
    assert code == 3 and "no data for AZZA3" in out.err
    assert "IBOV portfolio of 2025-04-07: 87 stocks" in out.out
    daily = read_table(lake, "quotes_daily").set_index("ticker")
    assert len(daily) == 87 - 9
    assert daily.loc["PETR4", "close_price"] == 29.10 and daily.loc["PETR4", "volume"] == 84_950_900
    assert daily["source"].eq("b3").all() and daily["adj_close_price"].isna().all()
    assert (lake / "raw/ibov_portfolio/dt=2025-04-07/ibov.parquet").is_file()
    columns, rows = run_local(lake, (REPO / "sql" / "ibov_weighted_returns.sql").read_text())
    (row,) = [dict(zip(columns, r)) for r in rows]
    assert row["dt"] == "2021-06-25" and row["constituents_quoted"] == 78
    assert row["weighted_daily_return"] is None  # one session: no previous close yet


def test_a_run_whose_trigger_was_lost_is_refined_by_the_next_run(tmp_path):
    import datetime as dt

    from b3_quotes.contract.tables import RAW_QUOTES
    from b3_quotes.storage import Lake
    from scraper.raw_writer import RunStamp, write_raw_run
    from scraper.sources.csv_files import CsvSource

    lake = tmp_path / "lake"
    # Run A lands in raw but its event never starts a job (refused while busy, then dropped).
    quotes = CsvSource(SAMPLE_DIR).fetch(["VALE3"], dt.date(2020, 3, 2), dt.date(2020, 3, 6)).quotes
    now = dt.datetime(2020, 3, 7, tzinfo=dt.UTC)
    write_raw_run(Lake.local(lake), {RAW_QUOTES: quotes}, RunStamp("csv", {}, now, "run-a"))
    # Run B arrives normally, for another ticker and later days.
    assert run(lake, "--source", "csv", "--csv-dir", str(SAMPLE_DIR), "--tickers", "PETR4",
               "--start", "2020-03-09", "--end", "2020-03-13") == 0
    daily = read_table(lake, "quotes_daily")
    assert sorted(daily.loc[daily["ticker"] == "VALE3", "dt"]) == [f"2020-03-0{d}" for d in (2, 3, 4, 5, 6)]
    assert len(daily[daily["ticker"] == "PETR4"]) == 5
    processed = sorted(p.name for p in (lake / "refined/_processed_runs").iterdir())
    assert len(processed) == 2 and "run-a.json" in processed


def test_write_failure_half_way_commits_nothing_and_a_rerun_completes(tmp_path, capsys, monkeypatch):
    from b3_quotes.storage import Lake

    lake = tmp_path / "lake"
    real_put = Lake.write_bytes
    calls = {"n": 0}

    def flaky_put(self, key, data):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("No space left on device")
        real_put(self, key, data)

    monkeypatch.setattr(Lake, "write_bytes", flaky_put)
    assert csv_run(lake, "2020-03-02", "2020-03-06") == 6
    err = capsys.readouterr().err
    assert "run not committed" in err and "No space left on device" in err
    assert len(list((lake / "raw/quotes").rglob("*.parquet"))) == 2  # two complete day files, no more
    assert not (lake / "raw/_manifests").exists() and not (lake / "refined").exists()

    monkeypatch.setattr(Lake, "write_bytes", real_put)
    assert csv_run(lake, "2020-03-02", "2020-03-06") == 0
    assert len(list((lake / "raw/quotes").rglob("*.parquet"))) == 5  # the same names, rewritten
    daily = read_table(lake, "quotes_daily")
    assert len(daily) == 2 * 5 and not daily.duplicated(["ticker", "dt"]).any()


@pytest.mark.parametrize("folder", ["São Paulo, 100% #1/My Documents"])
def test_any_lake_path_works_through_the_pipeline(tmp_path, folder):
    # Spaces, a comma, `%`, `#` and a non-ASCII letter: Path.as_uri() would percent-encode them all.
    lake = tmp_path / folder / "lake"
    assert csv_run(lake, "2020-03-02", "2020-03-06") == 0
    daily = read_table(lake, "quotes_daily")
    assert len(daily) == 2 * 5 and set(daily["ticker"]) == {"PETR4", "VALE3"}
    columns, rows = run_local(lake, "SELECT count(*) FROM quotes_daily")
    assert rows == [(10,)]


def test_a_malformed_manifest_is_set_aside_and_the_run_refined(tmp_path, capsys):
    lake = tmp_path / "lake"
    (lake / "raw/_manifests").mkdir(parents=True)
    (lake / "raw/_manifests/0-broken.json").write_text('{"run_id": "broken", "partitions": [')
    assert csv_run(lake, "2020-03-02", "2020-03-06") == 0
    assert "raw/_manifests/0-broken.json set aside (not UTF-8 JSON" in capsys.readouterr().out
    assert len(read_table(lake, "quotes_daily")) == 2 * 5
    assert (lake / "refined/_set_aside_manifests/0-broken.json").is_file()
    assert csv_run(lake, "2020-03-09", "2020-03-13") == 0  # the next run no longer meets it
    assert "0-broken.json" not in capsys.readouterr().out
    assert len(read_table(lake, "quotes_daily")) == 2 * 10
