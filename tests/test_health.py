"""The data-health report (`python -m b3_quotes.catalog.health`, sql/data_health.sql) on real lakes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from b3_quotes.catalog import health
from tests.conftest import REPO, SAMPLE_DIR
from tests.helpers import END, START, TICKERS, run_scraper

EVENTS_DATA = REPO / "tests" / "data" / "corporate_events"
EX_DATE = "2020-01-15"


def run_health(lake: Path, capsys, *args: str) -> tuple[int, list[str]]:
    capsys.readouterr()  # the scrapes' output is not the report's
    code = health.main(["--lake-dir", str(lake), *args])
    return code, capsys.readouterr().out.splitlines()


def test_the_two_whole_official_daily_files(tmp_path, capsys):
    lake = tmp_path / "lake"
    assert run_scraper(lake, "--source", "b3", "--universe", "all",
                       "--cotahist-file", str(EVENTS_DATA / "COTAHIST_D03022022.TXT.zip"),
                       "--cotahist-file", str(EVENTS_DATA / "COTAHIST_D04022022.TXT.zip")) == 0
    code, lines = run_health(lake, capsys, "--check")
    # The shared README, from the files themselves: BSLI3 goes ex-dividend on 2022-02-04 (DISMES
    # 185 -> 186), BSLI4 and six BDRs also move DISMES by one; no event is loaded for any.
    assert code == 1 and lines[0].endswith(": 8 finding(s) in 8 ticker(s)")
    assert lines[lines.index("BSLI3") + 1] == (
        "  2022-02-04  distribution_without_event  COTAHIST's distribution number went 185 -> 186: a corporate "
        "event is ex here and none is loaded")
    found = [line.split()[:2] for line in lines[1:] if line.startswith("  ")]
    assert len(found) == 8 and {f[1] for f in found} == {"distribution_without_event"}
    assert sum("BSLI" in line for line in lines) == 2  # BSLI3 and BSLI4; the other six end in 34/35 (BDRs)
    assert all(line.endswith(("34", "35", "39")) for line in lines[1:] if not line.startswith(" ")
               and not line.startswith("BSLI"))


def test_a_lake_with_an_unexplained_jump_and_an_event_that_moved_nothing(tmp_path, capsys):
    # PETR4 with a 3:1 split in its prices (before 2020-01-15 three times Yahoo's) and no event loaded;
    # VALE3 untouched but an events file claims a 2:1 split that day.
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    for ticker in TICKERS:
        csv = pd.read_csv(SAMPLE_DIR / f"{ticker}.SA.csv", dtype={"Date": str})
        if ticker == "PETR4":
            before = csv["Date"] < EX_DATE
            for column in ("Open", "High", "Low", "Close"):
                csv.loc[before, column] *= 3
        csv.to_csv(csv_dir / f"{ticker}.SA.csv", index=False, float_format="%.17g")
    events = tmp_path / "events.csv"
    events.write_text(f"ticker,ex_date,kind,share_ratio,cash_per_share\nVALE3,{EX_DATE},split,2,\n")
    lake = tmp_path / "lake"
    assert run_scraper(lake, "--source", "csv", "--csv-dir", str(csv_dir), "--tickers", ",".join(TICKERS),
                       "--start", START, "--end", END, "--events-file", str(events)) == 0
    code, lines = run_health(lake, capsys)
    print("\n".join(lines))  # looked at: docs/operations.md shows this report
    assert code == 0  # without --check the report only informs
    petr = pd.read_csv(SAMPLE_DIR / "PETR4.SA.csv").set_index("Date")["Close"]
    vale = pd.read_csv(SAMPLE_DIR / "VALE3.SA.csv").set_index("Date")["Close"]
    jump = petr[EX_DATE] / (3 * petr["2020-01-14"]) - 1  # the traded move, no event to correct it
    moved = vale[EX_DATE] / vale["2020-01-14"] - 1  # a split of 2 should have halved the price
    assert lines == [
        f"data health of the local lake {lake}: 4 finding(s) in 2 ticker(s)",
        "PETR4",
        f"  2020-01-15  jump_without_event          daily_return {jump:+.1%} and no corporate event loaded: a split "
        "or bonus the source did not adjust, or a wrong price? (--events-file, --b3-events-file)",
        # Yahoo has no bar for Ash Wednesday 2020-02-26 (B3 traded from 13:00); the 24th and 25th were Carnival.
        "  2020-02-27  sessions_missing            1 B3 session(s) missing since 2020-02-21 in the lake: no "
        "daily_return across the gap",
        "VALE3",
        f"  2020-01-15  event_without_move          an event of 2.0 new shares per old, but the traded price moved "
        f"{moved:+.1%}: were the prices already adjusted, or is the event wrong?",
        "  2020-02-27  sessions_missing            1 B3 session(s) missing since 2020-02-21 in the lake: no "
        "daily_return across the gap",
    ] and jump == pytest.approx(-0.67, abs=0.01)


def test_readmes_old_order_a_year_apart_and_two_sources_is_reported_not_a_return(tmp_path, capsys):
    # The sample (Yahoo, to 2020-06-09), then B3's file of 2021-06-25 into the same lake: issue 33's case.
    lake = tmp_path / "lake"
    assert run_scraper(lake, "--source", "csv", "--csv-dir", str(SAMPLE_DIR), "--tickers", "VALE3",
                       "--start", "2020-06-01", "--end", "2020-06-09") == 0
    assert run_scraper(lake, "--source", "b3", "--cotahist-file", str(REPO / "data" / "b3" / "COTAHIST_D25062021.ZIP"),
                       "--tickers", "VALE3") == 0
    code, lines = run_health(lake, capsys, "--check")
    print("\n".join(lines))
    import exchange_calendars

    between = len(exchange_calendars.get_calendar("BVMF").sessions_in_range("2020-06-10", "2021-06-24"))
    assert code == 1 and lines == [
        f"data health of the local lake {lake}: 2 finding(s) in 1 ticker(s)",
        "VALE3",
        f"  2021-06-25  sessions_missing            {between} B3 session(s) missing since 2020-06-09 in the lake: "
        "no daily_return across the gap",
        "  2021-06-25  source_changed              price source changed (csv -> b3) since 2020-06-09: check both "
        "agree on the price basis",
    ] and 250 < between < 270  # a year of B3 sessions
    from tests.helpers import run_local

    _, rows = run_local(lake, "SELECT daily_return, gap_before FROM quotes_daily WHERE dt = '2021-06-25'")
    assert rows == [(None, True)]  # was +104.4 % across 381 days


def test_zero_volume_words():
    rows = [("PETR4", dt.date(2024, 1, 4), "zero_volume", dt.date(2024, 1, 3), 0.0, None)]
    assert health.findings(rows) == [("PETR4", "2024-01-04", "zero_volume", "no share traded")]
