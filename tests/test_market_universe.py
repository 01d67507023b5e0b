"""`--universe all`: every code of the COTAHIST file(s) in the market the b3 source keeps."""

from __future__ import annotations

import zipfile
from pathlib import Path

import duckdb
import pytest

from scraper.sources.b3_cotahist import B3Source
from tests.conftest import REPO, SAMPLE_DIR
from tests.helpers import run_scraper as run

DAILY_ZIP = REPO / "data" / "b3" / "COTAHIST_D25062021.ZIP"
PORTFOLIO = REPO / "data" / "b3" / "GetPortfolioDay_IBOV_2025-04-07.body.json"


def layout_field(record: str, start: int, end: int) -> str:
    """A field by the 1-based inclusive columns of B3's layout (SeriesHistoricas_Layout)."""
    return record[start - 1:end]


def codes_in_file(path: Path, codbdi: str | None = "02", tpmerc: str | None = "010") -> set[str]:
    """CODNEG of every quote record (TIPREG 01), read straight from the fixed-width lines."""
    with zipfile.ZipFile(path) as archive:
        (member,) = archive.namelist()
        lines = archive.read(member).decode("latin-1").splitlines()
    codes = set()
    for line in lines:
        if layout_field(line, 1, 2) != "01":  # TIPREG: 00 header, 01 quote, 99 trailer
            continue
        if codbdi is not None and layout_field(line, 11, 12) != codbdi:  # CODBDI
            continue
        if tpmerc is not None and layout_field(line, 25, 27) != tpmerc:  # TPMERC
            continue
        codes.add(layout_field(line, 13, 24).strip())  # CODNEG
    return codes


def raw_codes(lake: Path) -> list[str]:
    with duckdb.connect() as con:
        return [r[0] for r in con.execute(
            f"SELECT ticker FROM read_parquet('{lake}/raw/quotes/*/*.parquet') ORDER BY ticker").fetchall()]


@pytest.mark.integration
def test_universe_all_lands_every_round_lot_cash_code_of_the_file(tmp_path, capsys):
    lake = tmp_path / "lake"
    expected = codes_in_file(DAILY_ZIP)
    assert len(expected) == 745  # B3's round-lot cash market on 2021-06-25

    code = run(lake, "--source", "b3", "--cotahist-file", str(DAILY_ZIP), "--universe", "all")

    out = capsys.readouterr().out
    assert code == 0
    assert "(CODBDI 02, TPMERC 010): 745 codes" in out
    landed = raw_codes(lake)
    assert len(landed) == len(set(landed)) == 745  # one row per code: a daily file is one session
    assert set(landed) == expected
    # Units, preferred classes and BDRs keep their own codes.
    assert {"TAEE11", "SANB11", "KLBN11", "PETR4", "USIM5", "ELET6", "AAPL34"} <= set(landed)
    # B3 files real-estate funds (FIIs) under CODBDI 12, outside the round lot: --all-instruments keeps them.
    assert "HGLG11" not in landed and "HGLG11" in codes_in_file(DAILY_ZIP, codbdi="12")
    with duckdb.connect() as con:
        (refined,) = con.execute(
            f"SELECT count(DISTINCT ticker) FROM read_parquet('{lake}/refined/quotes_daily/*/*/*.parquet', "
            "hive_partitioning=true)").fetchone() or (0,)
        (petr4,) = con.execute(
            f"SELECT close FROM read_parquet('{lake}/raw/quotes/*/*.parquet') WHERE ticker = 'PETR4'").fetchone() or (0,)
    assert refined == 745
    assert petr4 == 29.10  # the published close (data/b3/README.md)


def test_universe_all_from_env_file_is_the_same_universe(tmp_path, monkeypatch, capsys):
    env_file = tmp_path / "market.env"
    env_file.write_text("SOURCE=b3\nUNIVERSE=all\nTICKERS=PETR4\n")
    monkeypatch.setenv("ENV_FILE", str(env_file))
    refined = []
    monkeypatch.setattr("b3_quotes.runtime.LocalRuntime.after_commit", lambda runtime, key: refined.append(key))
    lake = tmp_path / "lake"

    code = run(lake, "--cotahist-file", str(DAILY_ZIP))

    assert code == 0, capsys.readouterr().err
    assert set(raw_codes(lake)) == codes_in_file(DAILY_ZIP)  # the universe wins over TICKERS, as with ibov
    assert len(refined) == 1


def test_universe_all_with_all_instruments_lists_every_code_of_the_file():
    source = B3Source(sessions=lambda start, end: [], files=[DAILY_ZIP], all_instruments=True)

    codes = source.market_tickers(None, None)

    assert set(codes) == codes_in_file(DAILY_ZIP, codbdi=None, tpmerc=None)
    assert len(codes) == 7074 and codes == sorted(codes)
    assert {"HGLG11", "KNRI11", "BOVA11", "PETR4F"} <= set(codes)  # FIIs, ETFs, odd lots by their own codes


def test_market_list_and_fetch_read_the_files_once(monkeypatch):
    import scraper.sources.b3_cotahist as b3

    reads = []
    real_read = b3.read_input_file
    monkeypatch.setattr(b3, "read_input_file", lambda path, option: reads.append(path) or real_read(path, option))
    source = B3Source(sessions=lambda start, end: [], files=[DAILY_ZIP])

    codes = source.market_tickers(None, None)
    fetched = source.fetch(codes, None, None)

    assert reads == [DAILY_ZIP]
    assert len(fetched.quotes) == 745 and fetched.missing == []
    source.fetch(["PETR4"], None, None)  # a later fetch reads the files again: no stale rows kept
    assert reads == [DAILY_ZIP, DAILY_ZIP]


@pytest.mark.parametrize(("source", "why"), [
    (["--source", "yfinance"], "yfinance cannot (Yahoo has no market list)"),
    (["--source", "sample"], "sample cannot"),
    (["--source", "csv", "--csv-dir", str(SAMPLE_DIR)], "csv cannot"),
])
def test_universe_all_is_refused_by_a_source_without_a_market_list(tmp_path, capsys, source, why):
    lake = tmp_path / "lake"

    code = run(lake, *source, "--universe", "all")

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: --universe all takes every code of a market list")
    assert why in err and "only b3 has" in err
    assert not lake.exists()  # refused before anything was downloaded or written


def test_universe_all_in_the_environment_is_refused_the_same_way(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNIVERSE", "all")
    lake = tmp_path / "lake"

    code = run(lake, "--source", "yfinance")

    assert code == 2
    assert "yfinance cannot (Yahoo has no market list)" in capsys.readouterr().err
    assert not lake.exists()


def test_universe_all_takes_no_ibov_file(tmp_path, capsys):
    code = run(tmp_path / "lake", "--source", "b3", "--cotahist-file", str(DAILY_ZIP), "--universe", "all",
               "--ibov-file", str(PORTFOLIO))

    assert code == 2
    assert "--ibov-file goes with --universe ibov" in capsys.readouterr().err
