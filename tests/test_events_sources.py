"""Corporate events read from each source, offline, on real payloads (tests/data/corporate_events/)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from scraper import calendar_b3
from scraper.errors import SourceDataError
from scraper.events import (
    read_b3_events_arg,
    read_b3_events_file,
    read_events_file,
    ticker_of_isin,
    undo_splits,
    yahoo_events,
)
from tests.conftest import REPO

EVENTS_DATA = REPO / "tests" / "data" / "corporate_events"
D = dt.date.fromisoformat


def payload_file(tmp_path: Path, name: str) -> Path:
    """One of the recorded B3 answers of the derived file, as the API's own JSON body."""
    body = json.loads((EVENTS_DATA / "b3_listed_company_events.DERIVED.json").read_text())[name]
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(body))
    return path


def rows(events: pd.DataFrame) -> list[tuple]:
    return [(r.ticker, r.ex_date.isoformat(), r.kind, round(r.share_ratio, 12), round(r.cash_per_share, 12),
             r.source_label) for r in events.sort_values(["ticker", "ex_date", "kind"]).itertuples()]


def test_b3_stock_events_read_as_the_shared_readme_says(tmp_path):
    mglu = read_b3_events_file(payload_file(tmp_path, "MGLU_SUPPLEMENT"), calendar_b3.next_session)
    assert rows(mglu) == [
        # DESDOBRAMENTO 300 % -> 4 shares per old one; last day with the right 13/10/2020 (Tue) -> ex Wed 14.
        ("MGLU3", "2020-10-14", "split", 4.0, 0.0, "DESDOBRAMENTO"),
        # GRUPAMENTO 0,10 is the ratio itself; 24/05/2024 a Friday -> ex Monday 27 (the COTAHIST jump day).
        ("MGLU3", "2024-05-27", "reverse_split", 0.1, 0.0, "GRUPAMENTO"),
        # BONIFICACAO 5 % -> 1.05; 29/12/2025 (Mon) -> ex Tue 30.
        ("MGLU3", "2025-12-30", "bonus", 1.05, 0.0, "BONIFICACAO"),
    ]
    bbas = read_b3_events_file(payload_file(tmp_path, "BBAS_SUPPLEMENT"), calendar_b3.next_session)
    # Listed for three ISINs; only the traded paper BRBBASACNOR3 (BBAS3) is kept: the split once.
    assert rows(bbas) == [("BBAS3", "2024-04-16", "split", 2.0, 0.0, "DESDOBRAMENTO")]
    itub = read_b3_events_file(payload_file(tmp_path, "ITUB_SUPPLEMENT"), calendar_b3.next_session)
    # CIS RED CAP changes no price basis we know of: left out. 23/12/2025 -> B3 is closed on the 24th
    # and the 25th: ex Friday 26.
    assert rows(itub) == [("ITUB4", "2025-12-26", "bonus", 1.03, 0.0, "BONIFICACAO")]


def test_b3_cash_events_are_brl_per_share_on_the_next_session(tmp_path):
    abev = read_b3_events_file(EVENTS_DATA / "GetListedSupplementCompany_ABEV.rb3.json", calendar_b3.next_session)
    # 17/12/2021 was a Friday: ex Monday 20; the rate is R$ per share in pt-BR notation.
    assert rows(abev) == [("ABEV3", "2021-12-20", "cash_dividend", 1.0, 0.1334, "DIVIDENDO"),
                          ("ABEV3", "2021-12-20", "interest_on_capital", 1.0, 0.4702, "JRS CAP PROPRIO")]
    # The same payload given twice (a page fetched twice) is one event each, not twice the cash.
    doubled = tmp_path / "twice.json"
    body = json.loads((EVENTS_DATA / "GetListedSupplementCompany_ABEV.rb3.json").read_text())
    doubled.write_text(json.dumps(body + body))
    assert rows(read_b3_events_file(doubled, calendar_b3.next_session)) == rows(abev)


# ABEV's GetListedCashDividends page (rb3's recording), by hand: all ON (ABEV3), quoted per share;
# the ex date is the B3 session after lastDatePriorEx.
ABEV_CASH = [
    ("2014-01-15", "cash_dividend", 0.1, "DIVIDENDO"),  # 14/01/2014 a Tuesday
    ("2014-01-15", "interest_on_capital", 0.154, "JRS CAP PROPRIO"),
    ("2014-04-03", "cash_dividend", 0.13, "DIVIDENDO"),  # two rows of 02/04/2014, 0,06 and 0,07: added
    ("2014-07-29", "cash_dividend", 0.06, "DIVIDENDO"),
    ("2014-07-29", "interest_on_capital", 0.1, "JRS CAP PROPRIO"),
    ("2014-10-28", "cash_dividend", 0.22, "DIVIDENDO"),
    ("2015-01-02", "interest_on_capital", 0.13, "JRS CAP PROPRIO"),  # 30/12/2014: B3 shut on the 31st and 1st
    ("2015-01-08", "interest_on_capital", 0.096, "JRS CAP PROPRIO"),
    ("2015-03-02", "interest_on_capital", 0.09, "JRS CAP PROPRIO"),  # 0,03 + 0,06 of Friday 27/02/2015
    ("2015-06-02", "interest_on_capital", 0.1, "JRS CAP PROPRIO"),
    ("2015-09-09", "cash_dividend", 0.15, "DIVIDENDO"),
    ("2015-12-22", "interest_on_capital", 0.15, "JRS CAP PROPRIO"),
    ("2016-02-01", "interest_on_capital", 0.13, "JRS CAP PROPRIO"),  # Friday 29/01/2016 -> Monday
    ("2016-07-12", "cash_dividend", 0.13, "DIVIDENDO"),
    ("2016-11-01", "cash_dividend", 0.16, "DIVIDENDO"),
    ("2016-12-22", "interest_on_capital", 0.22, "JRS CAP PROPRIO"),
    ("2017-01-24", "cash_dividend", 0.07, "DIVIDENDO"),
    ("2017-06-26", "cash_dividend", 0.16, "DIVIDENDO"),  # Friday 23/06/2017 -> Monday
    ("2017-12-19", "interest_on_capital", 0.31, "JRS CAP PROPRIO"),
    ("2018-02-01", "cash_dividend", 0.07, "DIVIDENDO"),
    ("2018-06-18", "cash_dividend", 0.16, "DIVIDENDO"),
    ("2018-12-19", "interest_on_capital", 0.32, "JRS CAP PROPRIO"),
    ("2019-12-20", "interest_on_capital", 0.4906, "JRS CAP PROPRIO"),
    ("2020-12-18", "interest_on_capital", 0.4137, "JRS CAP PROPRIO"),
    ("2021-01-14", "cash_dividend", 0.0767, "DIVIDENDO"),
    ("2021-12-20", "cash_dividend", 0.1334, "DIVIDENDO"),  # the supplement's two rows, the same values
    ("2021-12-20", "interest_on_capital", 0.4702, "JRS CAP PROPRIO"),
]


def test_b3_cash_dividend_history_reads_per_share_on_the_next_session():
    abev = read_b3_events_arg(f"ABEV={EVENTS_DATA / 'GetListedCashDividends_ABEV.rb3.json'}", calendar_b3.next_session)
    assert rows(abev) == [("ABEV3", day, kind, 1.0, cash, label) for day, kind, cash, label in ABEV_CASH]
    supplement = read_b3_events_file(EVENTS_DATA / "GetListedSupplementCompany_ABEV.rb3.json", calendar_b3.next_session)
    assert set(rows(supplement)) <= set(rows(abev))  # the supplement lists the latest two only


def test_b3_cash_dividend_page_papers_and_old_quotes_per_thousand(tmp_path):
    page = payload_file(tmp_path, "PETR_CASH_PAGE")
    assert rows(read_b3_events_arg(f"PETR={page}", calendar_b3.next_session)) == [
        # ON: 22/04/2026, a Wednesday -> Thursday 23.
        ("PETR3", "2026-04-23", "interest_on_capital", 1.0, 0.31311454, "JRS CAP PROPRIO"),
        # PN 0,17 per 1,000 shares (quotedPerShares 1000) on 30/09/2004, a Thursday.
        ("PETR4", "2004-10-01", "cash_dividend", 1.0, 0.00017, "DIVIDENDO"),
        # PN: listed twice, field for field: one JCP (as a supplement entry listed twice). 01/06/2026 a Monday.
        ("PETR4", "2026-06-02", "interest_on_capital", 1.0, 0.35048636, "JRS CAP PROPRIO"),
    ]
    with pytest.raises(SourceDataError, match="names no company: give it as --b3-events-file COMPANY="):
        read_b3_events_arg(str(page), calendar_b3.next_session)


def test_isin_to_ticker():
    assert ticker_of_isin("BRBBASACNOR3") == "BBAS3" and ticker_of_isin("BRITUBACNPR1") == "ITUB4"
    assert ticker_of_isin("BRBBASA04OR8") is None  # an older paper: no traded code


def test_bad_b3_payloads_are_one_line_naming_the_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SourceDataError, match="broken.json: not JSON"):
        read_b3_events_file(broken, calendar_b3.next_session)
    body = json.loads(payload_file(tmp_path, "BBAS_SUPPLEMENT").read_text())
    body[0]["stockDividends"][2]["factor"] = "cem"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(body))
    with pytest.raises(SourceDataError, match="bad.json: DESDOBRAMENTO of BRBBASACNOR3 .*unreadable factor"):
        read_b3_events_file(bad, calendar_b3.next_session)


def test_events_file_reads_and_refuses_what_would_bend_returns(tmp_path):
    good = tmp_path / "events.csv"
    good.write_text("ticker,ex_date,kind,share_ratio,cash_per_share\n"
                    "bbas3,2024-04-16,split,2,\nPETR4.SA,2024-06-12,cash_dividend,,1.0\n")
    assert rows(read_events_file(good)) == [("BBAS3", "2024-04-16", "split", 2.0, 0.0, "split"),
                                            ("PETR4", "2024-06-12", "cash_dividend", 1.0, 1.0, "cash_dividend")]
    for line, message in [("BBAS3,2024-04-16,split,0.5,", "a split with share_ratio 0.5"),
                          ("BBAS3,16/04/2024,split,2,", "bad ex_date '16/04/2024'"),
                          ("BBAS3,2024-04-16,desdobramento,2,", "kind 'desdobramento' is not one of"),
                          ("BBAS3,2024-04-16,cash_dividend,,-1", "cash_per_share -1.0 must be zero or more")]:
        bad = tmp_path / "bad.csv"
        bad.write_text(f"ticker,ex_date,kind,share_ratio,cash_per_share\n{line}\n")
        with pytest.raises(SourceDataError, match=f"bad.csv:2: {message}"):
            read_events_file(bad)


def test_undoing_yahoos_splits_gives_prices_as_traded():
    # BBAS3 as Yahoo lists it after its 2:1 split: 28.23 on 2024-04-15; B3's file says 56.46.
    quotes = pd.DataFrame({"ticker": ["BBAS3"] * 3, "trade_date": [D("2024-04-12"), D("2024-04-15"), D("2024-04-16")],
                           "open": [28.0, 28.1, 27.9], "high": [28.5, 28.4, 28.2], "low": [27.8, 27.9, 27.6],
                           "close": [28.2, 28.23, 27.91], "adj_close": [26.0, 26.1, 25.9],
                           "volume": [30_000_000.0, 32_000_000.0, 20_000_000.0]})
    events = yahoo_events("BBAS3", quotes["trade_date"], [0.0, 0.5, 0.0], [0.0, 0.0, 2.0])
    traded, events = undo_splits(quotes, events)
    assert list(traded["close"]) == [56.4, 56.46, 27.91]  # x2 before the ex date, as traded after it
    assert list(traded["volume"]) == [15_000_000.0, 16_000_000.0, 20_000_000.0]
    assert list(traded["adj_close"]) == [26.0, 26.1, 25.9]  # Yahoo's own adjusted close, as given
    # Yahoo's 0.50 dividend before the split is 1.00 per share of its day.
    assert rows(events) == [("BBAS3", "2024-04-15", "cash_dividend", 1.0, 1.0, "Dividends"),
                            ("BBAS3", "2024-04-16", "split", 2.0, 0.0, "Stock Splits")]


class RecordedB3:
    """B3's listed-company API answering from the recorded payloads; every request is kept."""

    def __init__(self, answers: dict[str, tuple[int, bytes]]):
        self.answers, self.asked = answers, []

    def get(self, url: str, timeout_s: float) -> tuple[int, bytes]:
        import base64

        params = json.loads(base64.b64decode(url.rsplit("/", 1)[1]))
        self.asked.append(params)
        return self.answers.get(params["issuingCompany"], (200, b""))


def test_b3_events_are_fetched_once_per_company_from_the_recorded_answers(tmp_path):
    from scraper.events import fetch_b3_events

    recorded = json.loads((EVENTS_DATA / "b3_listed_company_events.DERIVED.json").read_text())
    http = RecordedB3({"BBAS": (200, json.dumps(recorded["BBAS_SUPPLEMENT"]).encode()),
                       "MGLU": (200, json.dumps(recorded["MGLU_SUPPLEMENT"]).encode())})
    events = fetch_b3_events(http, ["BBAS3", "MGLU3", "VALE3"], calendar_b3.next_session, sleep=lambda s: None)
    # One request per company, with B3's own parameters; VALE's empty answer is no event.
    assert http.asked == [{"issuingCompany": c, "language": "pt-br"} for c in ("BBAS", "MGLU", "VALE")]
    assert [(t, d, k) for t, d, k, *_ in rows(events)] == [
        ("BBAS3", "2024-04-16", "split"), ("MGLU3", "2020-10-14", "split"),
        ("MGLU3", "2024-05-27", "reverse_split"), ("MGLU3", "2025-12-30", "bonus")]
    refused = RecordedB3({"BBAS": (403, b"forbidden")})
    from scraper.errors import SourceUnavailable

    with pytest.raises(SourceUnavailable, match="HTTP 403 for BBAS"):
        fetch_b3_events(refused, ["BBAS3"], calendar_b3.next_session, sleep=lambda s: None)


def test_the_adjusted_views_sql_by_hand():
    """b3_quotes.contract.tables' view SQL on a hand-made quotes_daily_compact, in DuckDB (Athena runs the same text)."""
    import duckdb

    from b3_quotes.contract.tables import QUOTES_DAILY_ADJUSTED

    con = duckdb.connect()
    con.execute("CREATE TABLE quotes_daily_compact (ticker VARCHAR, trade_date DATE, dt VARCHAR, open_price DOUBLE, "
                "high_price DOUBLE, low_price DOUBLE, close_price DOUBLE, volume BIGINT, share_ratio DOUBLE, "
                "cash_per_share DOUBLE)")
    con.executemany("INSERT INTO quotes_daily_compact VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        (t, D(d), d, c - 0.5, c + 1, c - 1, c, v, r, cash) for t, d, c, v, r, cash in [
            # A R$ 1.00 dividend ex 01-03, then a 2:1 split ex 01-04.
            ("AAAA3", "2024-01-02", 20.0, 100, 1.0, 0.0), ("AAAA3", "2024-01-03", 19.5, 100, 1.0, 1.0),
            ("AAAA3", "2024-01-04", 9.9, 300, 2.0, 0.0), ("AAAA3", "2024-01-05", 10.0, 200, 1.0, 0.0)]])
    rows = con.execute(f"SELECT dt, open, close, volume, total_return_close FROM ({QUOTES_DAILY_ADJUSTED.sql}) "
                       "ORDER BY dt").fetchall()
    # Before the split every price is halved and the volume doubled; the dividend's factor is
    # 1 - 1.00 / 20.00 = 0.95 (the close before it), applied to the sessions before its ex date.
    expected = [("2024-01-02", 19.5 / 2, 10.0, 200, 10.0 * 0.95), ("2024-01-03", 19.0 / 2, 9.75, 200, 9.75),
                ("2024-01-04", 9.4, 9.9, 300, 9.9), ("2024-01-05", 9.5, 10.0, 200, 10.0)]
    assert [r[0] for r in rows] == [e[0] for e in expected]
    for got, want in zip(rows, expected):
        assert got[1:] == pytest.approx(want[1:], rel=1e-12), got[0]


def test_a_lake_refined_by_an_older_version_stays_queryable_without_the_view(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from b3_quotes.local_mode.duckdb_views import connect, refresh_catalog

    year = tmp_path / "refined" / "quotes_daily_compact" / "year=2020"
    year.mkdir(parents=True)
    old = pa.table({"ticker": ["PETR4"], "trade_date": pa.array([D("2020-01-02")]), "close_price": [30.0],
                    "dt": ["2020-01-02"]})  # no share_ratio: written before corporate events
    pq.write_table(old, year / "part-0.snappy.parquet")
    refresh_catalog(tmp_path)
    with connect(tmp_path) as con:
        assert con.execute("SELECT ticker, close_price FROM quotes_daily").fetchall() == [("PETR4", 30.0)]
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert "quotes_daily_adjusted" not in views and "quotes_daily" in views
    pq.write_table(old.append_column("share_ratio", pa.array([1.0])).append_column("cash_per_share", pa.array([0.0]))
                   .append_column("open_price", pa.array([29.0])).append_column("high_price", pa.array([31.0]))
                   .append_column("low_price", pa.array([28.0])).append_column("volume", pa.array([5])),
                   year / "part-0.snappy.parquet")  # rebuilt: the columns are there
    refresh_catalog(tmp_path)
    with connect(tmp_path) as con:
        assert con.execute("SELECT ticker, close, volume FROM quotes_daily_adjusted").fetchall() == [("PETR4", 30.0, 5.0)]
