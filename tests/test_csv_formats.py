"""The CSV source reads what yfinance writes today: real files of each format (tests/data/README.md)."""

from __future__ import annotations

import datetime as dt
import math
import shutil

import pandas as pd
import pytest

from b3_quotes.config.settings import normalize_ticker
from b3_quotes.storage import Lake
from scraper.errors import SourceDataError
from scraper.run import scrape
from scraper.sources.csv_files import CsvSource, read_yahoo_csv_checked
from tests.conftest import TEST_DATA

FORMATS = TEST_DATA / "yfinance_formats"
NOW = dt.datetime(2025, 12, 1, 12, tzinfo=dt.UTC)


def test_multiindex_download_three_line_header():
    frame = read_yahoo_csv_checked(FORMATS / "PETR4.SA.multiindex_download.csv")[0]
    first = frame.iloc[0]
    # The file's line 4: 2015-01-02,2.745659244726361,2.745659244726361,2.569761318693598,2.572509527206421,49559500
    assert first["trade_date"] == dt.date(2015, 1, 2)
    assert (first["open"], first["low"], first["close"], first["volume"]) == (
        2.745659244726361, 2.569761318693598, 2.572509527206421, 49559500)
    assert frame["adj_close"].isna().all()  # auto_adjust=True writes no Adj Close
    assert len(frame) == 2487 and frame["trade_date"].iloc[-1] == dt.date(2024, 12, 30)


def test_no_adj_close_with_float_volume():
    frame = read_yahoo_csv_checked(FORMATS / "PETR4.SA.no_adj_close.csv")[0]
    row = frame[frame["trade_date"] == dt.date(2018, 1, 2)].iloc[0]
    assert (row["open"], row["high"], row["close"], row["volume"]) == (16.19, 16.55, 16.55, 33461800)
    assert math.isnan(row["adj_close"])


def test_ticker_history_tz_aware_dates_are_sao_paulo_days():
    frame = read_yahoo_csv_checked(FORMATS / "VALE3.SA.ticker_history.csv")[0]
    # `2010-01-04 00:00:00-02:00` (summer time) is 2010-01-04 in São Paulo.
    assert list(frame["trade_date"].iloc[:3]) == [dt.date(2010, 1, 4), dt.date(2010, 1, 5), dt.date(2010, 1, 6)]
    assert frame.iloc[0]["close"] == 26.09892463684082


def test_a_utc_timestamp_is_read_as_the_sao_paulo_day(tmp_path):
    path = tmp_path / "PETR4.SA.csv"
    # 01:30 UTC on the 3rd is 23:30 on the 2nd in São Paulo (summer time then: UTC-2).
    path.write_text("Date,Open,High,Low,Close,Volume\n2019-01-03 01:30:00+00:00,1,2,1,2,10\n")
    assert list(read_yahoo_csv_checked(path)[0]["trade_date"]) == [dt.date(2019, 1, 2)]


def test_columns_in_any_order(tmp_path):
    path = tmp_path / "PETR4.SA.csv"
    path.write_text("Volume,Close,Date,Low,Adj Close,High,Open\n1000,22.1,2020-06-01,21.5,21.9,22.5,22.0\n")
    row = read_yahoo_csv_checked(path)[0].iloc[0]
    assert (row["trade_date"], row["open"], row["high"], row["low"], row["close"], row["adj_close"],
            row["volume"]) == (dt.date(2020, 6, 1), 22.0, 22.5, 21.5, 22.1, 21.9, 1000)


@pytest.mark.parametrize("symbol", ["^BVSP", "BVSP", "bvsp.sa", "IBOV"])
def test_the_ibovespa_is_one_ticker(symbol):
    assert normalize_ticker(symbol) == "IBOV"


@pytest.mark.parametrize("file_name", ["BVSP.csv", "^BVSP.csv"])
def test_the_index_file_loads_under_ibov(tmp_path, file_name):
    shutil.copy(TEST_DATA / "yahoo_index" / "BVSP.csv", tmp_path / file_name)
    report = scrape(CsvSource(tmp_path), Lake.local(tmp_path / "lake"), ["IBOV"], None, None, NOW)
    assert report.written is not None and report.written.rows == 7 and report.written.days[0] == "2020-06-01"
    raw = pd.read_parquet(tmp_path / "lake" / "raw" / "quotes" / "dt=2020-06-09")
    assert list(raw["ticker"]) == ["IBOV"] and list(raw["close"]) == [96747.0]
    assert list(raw["source_symbol"]) == [file_name]


def test_a_missing_file_is_named(tmp_path):
    report = scrape(CsvSource(tmp_path), Lake.local(tmp_path / "lake"), ["IBOV", "PETR4"], None, None, NOW)
    assert report.missing == ["IBOV", "PETR4"]
    lines = report.summary_lines(str)
    assert f"no data   IBOV: no file ^BVSP.csv or BVSP.csv in {tmp_path}" in lines
    assert f"no data   PETR4: no file PETR4.SA.csv in {tmp_path}" in lines


def test_brazilian_excel_export_is_refused_saying_what_it_saw(tmp_path):
    path = tmp_path / "PETR4.SA.csv"
    path.write_text("Date;Open;High;Low;Close;Volume\n02/01/2018;16,19;16,55;16,19;16,55;33461800\n")
    with pytest.raises(SourceDataError) as err:
        read_yahoo_csv_checked(path)[0]
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert "';' separators, decimal commas, dd/mm/yyyy dates" in message
