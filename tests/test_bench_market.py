"""bench_market's own pieces: the COTAHIST files it writes, the phases it reads from a command's lines."""

from __future__ import annotations

import datetime as dt
import sys

import pandas as pd

from scraper.sources.b3_cotahist import parse_cotahist, standard_lot
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))  # the benchmarks import each other as scripts do
import bench_market  # noqa: E402  # pyright: ignore[reportMissingImports] - a script folder, put on sys.path above


def test_written_cotahist_reads_back_through_the_b3_parser(tmp_path):
    quotes = pd.DataFrame({
        "ticker": ["PETR4", "TAEE11", "PETR4"],
        "trade_date": [dt.date(2024, 12, 27), dt.date(2024, 12, 27), dt.date(2024, 12, 30)],
        "open": [36.504, 35.0, 37.0], "high": [37.2, 35.5, 37.456], "low": [36.1, 34.9, 36.8],
        "close": [36.996, 35.1, 37.3], "adj_close": [0.0] * 3, "volume": [1_000_000, 25_000, 900],
    })

    parsed = standard_lot(parse_cotahist(bench_market.write_cotahist(tmp_path / "COTAHIST_A2024.TXT", quotes)
                                         .read_bytes(), "bench"))

    assert len(parsed) == 3  # every row a round-lot cash-market record (CODBDI 02, TPMERC 010)
    petr = parsed[parsed["trade_date"] == dt.date(2024, 12, 27)].set_index("ticker").loc["PETR4"]
    # Prices to two decimals, as B3 publishes them: 36.504 -> 36.50, 36.996 -> 37.00.
    assert (petr["open"], petr["high"], petr["low"], petr["close"]) == (36.50, 37.20, 36.10, 37.00)
    assert petr["volume"] == 1_000_000 and petr["traded_value"] == 37_000_000.00


def test_phases_are_the_time_between_the_lines_that_close_them():
    lines = [(1.0, "scraping 2 tickers from b3 into the local lake /x"), (3.5, "tickers   2: A, B"),
             (4.0, "refining locally (Lambda handler -> local Glue job -> catalog)"),
             (9.0, "  job b3-quotes-refine (jr_local_x): refined 1 scrape run(s), wrote 2 daily and 2 monthly rows"),
             (9.5, "  catalog /x/catalog.duckdb: quotes")]
    run = bench_market.CommandRun(seconds=10.0, lines=lines)

    phases = dict(bench_market.phases(run))

    assert phases == {
        "Python start, imports, universe (all: COTAHIST parse)": 1.0,
        "fetch (ibov: COTAHIST parse), validate, write raw": 2.5,
        # no progress lines (too few partitions): the phases between merge into one
        "Spark start, raw read, refine + write quotes_daily + write quotes_monthly and the compact tables": 5.5,
        "catalog refresh": 0.5,
        "exit (Spark stops)": 0.5,
    }


def test_a_command_peak_memory_is_its_own_not_the_parent_s():
    from process_tree import run_command  # pyright: ignore[reportMissingImports]

    ballast = bytearray(300 * 2**20)  # this process 300 MB bigger: a forked child's ru_maxrss would count it
    ballast[::4096] = b"1" * len(ballast[::4096])  # touched, so resident
    child = "x = bytearray(120 * 2**20); x[::4096] = b'1' * len(x[::4096]); import time; time.sleep(0.3); print('done')"

    run = run_command([sys.executable, "-c", child])

    assert [line for _, line in run.lines] == ["done"]
    assert 120 <= run.peaks_mb["driver"] < 200  # 120 MB touched, plus Python itself
    assert set(run.peaks_mb) == {"driver"}
    del ballast
