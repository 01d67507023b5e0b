"""The b3 source: COTAHIST parsing on real files, downloads and the IBOV portfolio with HTTP mocked."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import zipfile
from pathlib import Path
from urllib.parse import unquote

import pytest

from scraper import calendar_b3
from scraper.errors import SourceUnavailable
from scraper.http_client import get_with_retries
from scraper.sources.b3_cotahist import B3Source, CotahistError, read_cotahist_bytes, standard_lot
from scraper.sources.b3_portfolio import fetch_ibov_portfolio, parse_portfolio
from tests.conftest import REPO

B3_DATA = REPO / "data" / "b3"
DAILY_ZIP = B3_DATA / "COTAHIST_D25062021.ZIP"
PORTFOLIO = B3_DATA / "GetPortfolioDay_IBOV_2025-04-07.body.json"


def quotes_of(path: Path):
    return standard_lot(read_cotahist_bytes(path.read_bytes(), path.name)).set_index("ticker")


def test_daily_file_2021_06_25_matches_the_published_quotes():
    q = quotes_of(DAILY_ZIP)
    assert {"trade_date", "open", "high", "low", "close", "adj_close", "volume"} <= set(q.columns)
    petr = q.loc["PETR4"]
    assert (petr["open"], petr["high"], petr["low"], petr["close"]) == (29.69, 29.79, 28.95, 29.10)
    assert petr["volume"] == 84_950_900 and petr["trade_date"] == dt.date(2021, 6, 25)
    assert q.loc["VALE3", "close"] == 112.40
    assert q["adj_close"].isna().all()  # B3 publishes no adjusted price


def test_daily_file_all_instruments_keeps_options_and_odd_lots():
    frame = read_cotahist_bytes(DAILY_ZIP.read_bytes(), DAILY_ZIP.name)
    assert len(frame) == 7518  # every quote record; the trailer agrees (checked by the parser)
    assert len(standard_lot(frame)) < len(frame)
    assert "PETR4F" in set(frame["ticker"]) and "PETR4F" not in set(standard_lot(frame)["ticker"])


def test_fatcot_1000_records_come_out_per_share():
    # TNLP4 on 2003-02-12 is quoted per 1,000 shares: PREABE 25.40, PREMAX 25.55, PREMIN 25.10, PREULT 25.31.
    tnlp = quotes_of(B3_DATA / "DemoCotacoesHistoricas12022003.txt").loc["TNLP4"]
    assert tnlp["fatcot"] == 1000
    assert (tnlp["open"], tnlp["high"], tnlp["low"], tnlp["close"]) == pytest.approx((0.0254, 0.02555, 0.0251, 0.02531))
    assert tnlp["volume"] == 2_739_300_000
    # Independent check: traded value / shares is an average price inside the day's range.
    assert tnlp["low"] <= tnlp["traded_value"] / tnlp["volume"] <= tnlp["high"]


def test_truncated_file_is_rejected_naming_it():
    with pytest.raises(CotahistError, match=r"COTAHIST_D04012016_rb3_excerpt.TXT: trailer declares 1745 records but the file holds 506"):
        quotes_of(B3_DATA / "COTAHIST_D04012016_rb3_excerpt.TXT")


def test_short_record_is_rejected_with_its_line():
    lines = (B3_DATA / "DemoCotacoesHistoricas12022003.txt").read_bytes().split(b"\r\n")
    lines[10] = lines[10][:200]
    with pytest.raises(CotahistError, match="broken.txt: line 11 has 200 characters, expected 245"):
        read_cotahist_bytes(b"\r\n".join(lines), "broken.txt")


def test_corrupt_zip_is_rejected():
    data = DAILY_ZIP.read_bytes()
    with pytest.raises(CotahistError, match="bad.zip: corrupt zip"):
        read_cotahist_bytes(data[: len(data) // 2], "bad.zip")


class RecordedHttp:
    """Answers from recorded bodies by URL; anything else is B3's not-found."""

    def __init__(self, bodies: dict[str, bytes], failures: int = 0):
        self.bodies = bodies
        self.failures = failures
        self.urls: list[str] = []

    def get(self, url, timeout_s):
        self.urls.append(url)
        if self.failures:
            self.failures -= 1
            return 503, b"busy"
        return (200, self.bodies[url]) if url in self.bodies else (404, b"not found")


def test_download_range_skips_not_found_days_with_a_notice():
    url = "https://bvmf.bmfbovespa.com.br/InstDados/SerHist/COTAHIST_D25062021.ZIP"
    http = RecordedHttp({url: DAILY_ZIP.read_bytes()})
    notices = []
    source = B3Source(sessions=calendar_b3.sessions_between, http=http, notice=notices.append, sleep=lambda s: None)
    result = source.fetch(["PETR4", "VALE3"], dt.date(2021, 6, 24), dt.date(2021, 6, 27))
    # 26-27 are a weekend: never requested. 24 answers not-found here: a notice, not an error.
    assert [u.rsplit("_", 1)[-1] for u in http.urls] == ["D24062021.ZIP", "D25062021.ZIP"]
    assert notices[0] == "COTAHIST downloads: 2 days to go"  # progress off a terminal: plain lines
    assert "no COTAHIST file for 2021-06-24" in notices[1] and len(notices) == 3
    assert notices[2].startswith("COTAHIST downloads: 2/2 days in ")
    assert sorted(result.quotes["ticker"]) == ["PETR4", "VALE3"] and result.missing == []


def test_transient_failures_are_retried_then_given_up():
    url = "https://example.invalid/x"
    waits = []
    assert get_with_retries(RecordedHttp({url: b"ok"}, failures=2), url, sleep=waits.append) == (200, b"ok")
    assert waits == [1.0, 3.0]
    with pytest.raises(SourceUnavailable, match="failed after 4 attempts: HTTP 503"):
        get_with_retries(RecordedHttp({url: b"ok"}, failures=9), url, sleep=lambda s: None)


def test_ibov_portfolio_87_constituents_weights_sum_to_100():
    http = RecordedHttp({})
    http.get = lambda url, timeout_s: (http.urls.append(url), (200, PORTFOLIO.read_bytes()))[1]
    portfolio = fetch_ibov_portfolio(http, sleep=lambda s: None)
    assert len(portfolio) == 87 and portfolio["ticker"].is_unique
    assert portfolio["weight_pct"].sum() == pytest.approx(100.0, abs=0.01)
    assert portfolio["portfolio_date"].iloc[0] == dt.date(2025, 4, 7)
    wege = portfolio.set_index("ticker").loc["WEGE3"]
    assert (wege["weight_pct"], wege["theoretical_qty"]) == (2.663, 1_243_177_587)
    params = json.loads(base64.b64decode(unquote(http.urls[0].rsplit("/", 1)[-1])))
    assert params == {"pageNumber": 1, "pageSize": 9999, "language": "en-us", "index": "IBOV", "segment": 2}


def test_ibov_portfolio_pt_br_numbers_parse_the_same():
    doc = json.loads(PORTFOLIO.read_text())
    swap = str.maketrans({",": ".", ".": ","})
    for row in doc["results"]:
        row["part"], row["theoricalQty"] = row["part"].translate(swap), row["theoricalQty"].translate(swap)
    month, day, year = doc["header"]["date"].split("/")
    doc["header"]["date"] = f"{day}/{month}/{year}"
    pt = parse_portfolio(json.dumps(doc).encode(), language="pt-br")
    en = parse_portfolio(PORTFOLIO.read_bytes(), language="en-us")
    assert pt.equals(en)


def test_zipped_yearly_style_file_with_several_days(tmp_path):
    # Two days in one file, as monthly and yearly files hold them: header, both days' records, one trailer.
    lines = (B3_DATA / "DemoCotacoesHistoricas12022003.txt").read_bytes().split(b"\r\n")
    header, body, trailer = lines[0], [ln for ln in lines[1:] if ln.startswith(b"01")], lines[-2] if not lines[-1] else lines[-1]
    second = [ln[:2] + b"20030213" + ln[10:] for ln in body]
    total = str(2 + 2 * len(body)).zfill(11).encode()
    trailer = trailer[:31] + total + trailer[42:]
    text = b"\r\n".join([header, *body, *second, trailer]) + b"\r\n"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("COTAHIST_M022003.TXT", text)
    path = tmp_path / "COTAHIST_M022003.ZIP"
    path.write_bytes(archive.getvalue())
    result = B3Source(sessions=calendar_b3.sessions_between, files=[path]).fetch(["PETR4"], None, None)
    assert sorted(result.quotes["trade_date"]) == [dt.date(2003, 2, 12), dt.date(2003, 2, 13)]
