"""The yfinance source, with `yf.download` replaced by real recorded quotes in its 1.7 shape."""

from __future__ import annotations

import datetime as dt
import time

import pandas as pd
import pytest

from scraper.errors import SourceUnavailable
from scraper.http_client import run_with_deadline
from scraper.sources.yfinance_source import YFinanceSource
from tests.conftest import SAMPLE_DIR

START, END = dt.date(2020, 6, 1), dt.date(2020, 6, 9)


def recorded_download(symbols: list[str]) -> pd.DataFrame:
    """What yfinance 1.7 returns with auto_adjust=False: ('Price','Ticker') columns, naive dates, Yahoo's names.

    The bundled files are Yahoo's own CSVs: their header is the download frame's price level.
    """
    frames = {}
    for symbol in symbols:
        csv = pd.read_csv(SAMPLE_DIR / f"{symbol}.csv", na_values=["null"], index_col="Date", parse_dates=["Date"],
                          float_precision="round_trip")
        frames[symbol] = csv.loc[pd.Timestamp(START):pd.Timestamp(END)]
    wide = pd.concat(frames, axis=1, names=["Ticker", "Price"]).swaplevel(0, 1, axis=1).sort_index(axis=1)
    return wide


@pytest.fixture
def fake_download(monkeypatch):
    calls = []

    def download(tickers, **kwargs):
        calls.append({"tickers": list(tickers), **kwargs})
        known = [t for t in tickers if (SAMPLE_DIR / f"{t}.csv").exists()]
        return recorded_download(known) if known else pd.DataFrame()

    import yfinance

    monkeypatch.setattr(yfinance, "download", download)
    return calls


def test_yfinance_source_long_quotes_from_batch(fake_download):
    result = YFinanceSource(timeout_s=10, today=lambda: END).fetch(["PETR4", "VALE3"], START, END)
    call = fake_download[0]
    assert call["tickers"] == ["PETR4.SA", "VALE3.SA"]
    assert call["auto_adjust"] is False and call["end"] == "2020-06-10"  # end is exclusive there
    q = result.quotes.set_index(["ticker", "trade_date"])
    assert len(q) == 14 and result.missing == []
    assert list(result.quotes.columns) == ["ticker", "trade_date", "open", "high", "low", "close", "adj_close", "volume"]
    assert q.loc[("PETR4", dt.date(2020, 6, 9)), "close"] == 21.719999
    assert q.loc[("VALE3", dt.date(2020, 6, 8)), "adj_close"] == 54.779999
    assert result.symbols == {"PETR4": "PETR4.SA", "VALE3": "VALE3.SA"}


def test_yfinance_source_unknown_ticker_is_reported(fake_download, monkeypatch):
    import yfinance.shared

    monkeypatch.setattr(yfinance.shared, "_ERRORS", {"XPTO3.SA": "YFTzMissingError('possibly delisted; no timezone found')"})
    result = YFinanceSource(timeout_s=10).fetch(["PETR4", "XPTO3"], START, END)
    assert result.missing == ["XPTO3"] and set(result.quotes["ticker"]) == {"PETR4"}
    only_unknown = YFinanceSource(timeout_s=10).fetch(["XPTO3"], START, END)
    assert only_unknown.missing == ["XPTO3"] and only_unknown.quotes.empty


def test_yfinance_source_network_failure_raises(monkeypatch):
    import yfinance
    import yfinance.shared

    monkeypatch.setattr(yfinance, "download", lambda tickers, **kw: pd.DataFrame())
    monkeypatch.setattr(yfinance.shared, "_ERRORS", {"PETR4.SA": "ConnectionError('Failed to resolve query2.finance.yahoo.com')"})
    with pytest.raises(SourceUnavailable, match="Failed to resolve"):
        YFinanceSource(timeout_s=10).fetch(["PETR4"], START, END)


def test_yfinance_source_hangs_are_cut_at_the_deadline(monkeypatch):
    import yfinance

    monkeypatch.setattr(yfinance, "download", lambda tickers, **kw: time.sleep(30))
    began = time.monotonic()
    with pytest.raises(SourceUnavailable, match="did not answer within 0.5 s"):
        YFinanceSource(timeout_s=0.5).fetch(["PETR4"], START, END)
    assert time.monotonic() - began < 5


def test_run_with_deadline_passes_errors_through():
    def boom():
        raise KeyError("inner")

    with pytest.raises(KeyError, match="inner"):
        run_with_deadline(boom, 5, "test")


def test_the_downloads_own_splits_are_undone_and_its_actions_loaded_as_events(monkeypatch):
    # The recorded download with yfinance's action columns (actions=True): a 2:1 split of PETR4 put on
    # 2020-06-05 and a 0.25 dividend on 2020-06-03, both in the adjusted basis of the download.
    def download(tickers, **kwargs):
        wide = recorded_download(list(tickers))
        days = wide.index
        wide[("Dividends", "PETR4.SA")] = [0.25 if d == pd.Timestamp("2020-06-03") else 0.0 for d in days]
        wide[("Stock Splits", "PETR4.SA")] = [2.0 if d == pd.Timestamp("2020-06-05") else 0.0 for d in days]
        wide[("Dividends", "VALE3.SA")] = 0.0
        wide[("Stock Splits", "VALE3.SA")] = 0.0
        assert kwargs["actions"] is True  # the splits the prices are adjusted for are asked for
        return wide.sort_index(axis=1)

    import yfinance

    monkeypatch.setattr(yfinance, "download", download)
    result = YFinanceSource(timeout_s=10, today=lambda: END).fetch(["PETR4", "VALE3"], START, END)
    q = result.quotes.set_index(["ticker", "trade_date"])
    # Before the ex date the price is twice Yahoo's (as traded), the volume half; from it on, as given.
    assert q.loc[("PETR4", dt.date(2020, 6, 4)), "close"] == 2 * 21.43
    assert q.loc[("PETR4", dt.date(2020, 6, 9)), "close"] == 21.719999
    assert q.loc[("VALE3", dt.date(2020, 6, 4)), "close"] == 55.66  # no split: untouched
    assert list(result.quotes.columns) == ["ticker", "trade_date", "open", "high", "low", "close", "adj_close", "volume"]
    events = result.events.sort_values("ex_date")
    assert [(e.ticker, e.ex_date, e.kind, e.share_ratio, e.cash_per_share) for e in events.itertuples()] == [
        ("PETR4", dt.date(2020, 6, 3), "cash_dividend", 1.0, 0.5),  # 0.25 a share after the split, 0.50 before
        ("PETR4", dt.date(2020, 6, 5), "split", 2.0, 0.0)]

    # A range that ends before the split: the download still reaches today, so the split Yahoo
    # adjusted the range's prices for is undone; the event itself is outside the range: not loaded.
    early = YFinanceSource(timeout_s=10, today=lambda: END).fetch(["PETR4"], START, dt.date(2020, 6, 4))
    assert early.quotes["trade_date"].max() == dt.date(2020, 6, 4)
    assert early.quotes.set_index("trade_date").loc[dt.date(2020, 6, 4), "close"] == 2 * 21.43
    assert [(e.ex_date, e.kind) for e in early.events.itertuples()] == [(dt.date(2020, 6, 3), "cash_dividend")]
