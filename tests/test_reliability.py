"""Bad input, outages and a busy lake: one clear line, the documented exit code, nothing lost.

These runs stop before the refine step (or replace it), so no Spark is needed here; the
whole-pipeline faults (kills, concurrent runs, a full disk) are in test_faults.py.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from b3_quotes.storage import Lake
from b3_quotes.storage.lock import LOCK_FILE, LakeBusy, lake_lock
from scraper import calendar_b3
from scraper.errors import SourceDataError
from scraper.run import scrape
from scraper.sources.b3_cotahist import B3Source
from scraper.sources.csv_files import CsvSource
from scraper.sources.yfinance_source import YFinanceSource
from tests.conftest import REPO, SAMPLE_DIR, TEST_DATA
from tests.helpers import run_scraper as run

B3_DATA = REPO / "data" / "b3"
PORTFOLIO = B3_DATA / "GetPortfolioDay_IBOV_2025-04-07.body.json"
NOW = dt.datetime(2021, 6, 28, 12, 0, tzinfo=dt.UTC)  # after every session the tests load


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def write_csv(folder: Path, ticker: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ticker}.SA.csv"
    path.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n" + body)
    return path


# --- usage ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", " , "])
def test_empty_tickers_is_a_usage_error(tmp_path, capsys, value):
    assert run(tmp_path / "lake", "--source", "sample", "--tickers", value) == 2
    assert "--tickers is empty" in one_error_line(capsys)
    assert not (tmp_path / "lake").exists()


def test_range_before_the_calendar_says_so(tmp_path, capsys):
    code = run(tmp_path / "lake", "--tickers", "PETR4", "--start", "1999-03-01", "--end", "1999-03-05")
    assert code == 2
    line = one_error_line(capsys)
    assert "lies before 2000-01-03, the first session the B3 calendar knows" in line


def test_range_straddling_the_calendar_start_is_a_notice():
    from scraper.run import _calendar_notes

    assert calendar_b3.first_session() == dt.date(2000, 1, 3)
    (note,) = _calendar_notes(dt.date(1999, 12, 1), dt.date(2000, 1, 31))
    assert "days before 2000-01-03 are not in the B3 calendar" in note
    assert _calendar_notes(dt.date(2000, 1, 3), dt.date(2000, 1, 31)) == []


# --- unreadable input: 5, naming the file ---------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data, not a CSV text file"),
        ("Date,Open,High,Low,Close,Adj Close,Volume\n2020-06-01,1,2,1,2,2,10\n".encode("utf-16"), "UTF-16 text"),
        ("Date,Open\n2020-06-01,\xe9".encode("latin-1"), "not UTF-8 text"),
    ],
)
def test_unreadable_csv_exits_5_naming_the_file(tmp_path, capsys, content, message):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "PETR4.SA.csv").write_bytes(content)
    assert run(tmp_path / "lake", "--source", "csv", "--csv-dir", str(csv_dir), "--tickers", "PETR4") == 5
    line = one_error_line(capsys)
    assert str(csv_dir / "PETR4.SA.csv") in line and message in line
    assert not (tmp_path / "lake").exists()


def test_missing_cotahist_file_exits_5(tmp_path, capsys):
    missing = tmp_path / "COTAHIST_A2023.ZIP"
    assert run(tmp_path / "lake", "--source", "b3", "--cotahist-file", str(missing), "--tickers", "PETR4") == 5
    assert f"--cotahist-file {missing}: no such file" in one_error_line(capsys)


def test_a_bad_cotahist_file_after_a_committed_one_says_what_is_committed(tmp_path, capsys):
    good, bad = REPO / "data/b3/COTAHIST_D25062021.ZIP", tmp_path / "COTAHIST_D28062021.TXT"
    bad.write_text("not a COTAHIST file\n")
    args = ["--source", "b3", "--tickers", "PETR4", "--cotahist-file", str(good), "--cotahist-file"]
    assert run(tmp_path / "lake", *args, str(tmp_path / "missing.ZIP")) == 5  # checked before any file is read
    assert not (tmp_path / "lake").exists()
    capsys.readouterr()
    assert run(tmp_path / "lake", *args, str(bad)) == 5
    line = one_error_line(capsys)
    assert line.startswith(f"error: bad input at {bad}: ") and "the 1 file(s) before it are committed" in line
    (manifest,) = (tmp_path / "lake/raw/_manifests").glob("*.json")  # the first file's run, pending
    assert json.loads(manifest.read_text())["partitions"] == ["2021-06-25"]


def test_missing_ibov_file_exits_5(tmp_path, capsys):
    missing = tmp_path / "portfolio.json"
    assert run(tmp_path / "lake", "--source", "sample", "--universe", "ibov", "--ibov-file", str(missing)) == 5
    assert f"--ibov-file {missing}: no such file" in one_error_line(capsys)
    assert not (tmp_path / "lake").exists()


def test_binary_ibov_file_exits_5_naming_it(tmp_path, capsys):
    binary = tmp_path / "portfolio.json"
    binary.write_bytes(b"\x00\xff\x10garbage")
    assert run(tmp_path / "lake", "--source", "sample", "--universe", "ibov", "--ibov-file", str(binary)) == 5
    assert str(binary) in one_error_line(capsys)


def test_volume_too_large_to_store_exits_5_naming_file_and_line(tmp_path, capsys):
    path = write_csv(tmp_path / "csv", "PETR4", "2020-06-01,1,2,1,2,2,10\n2020-06-02,1,2,1,2,2,1e19\n")
    assert run(tmp_path / "lake", "--source", "csv", "--csv-dir", str(path.parent), "--tickers", "PETR4") == 5
    line = one_error_line(capsys)
    assert f"{path}:3: volume 1e+19 cannot be stored" in line and "re-run" not in line
    assert not (tmp_path / "lake").exists()


def test_debug_flag_shows_the_traceback(tmp_path, capsys):
    missing = tmp_path / "nope.ZIP"
    assert run(tmp_path / "lake", "--debug", "--source", "b3", "--cotahist-file", str(missing)) == 5
    err = capsys.readouterr().err
    assert "Traceback" in err and "FileNotFoundError" in err and err.rstrip().endswith("no such file")


# --- outages: 4 -------------------------------------------------------------------------------


def test_yfinance_offline_empty_frame_without_errors_is_an_outage(tmp_path, capsys, monkeypatch):
    # What yfinance 1.7 does offline: an empty frame, nothing raised, nothing in shared._ERRORS.
    import yfinance
    import yfinance.shared

    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())
    monkeypatch.setattr(yfinance.shared, "_ERRORS", {})
    monkeypatch.setattr("scraper.sources.yfinance_source.yahoo_reachable", lambda: False)
    code = run(tmp_path / "lake", "--tickers", "PETR4,VALE3", "--start", "2024-01-02", "--end", "2024-01-05")
    assert code == 4
    line = one_error_line(capsys)
    assert "source unavailable" in line and "query2.finance.yahoo.com:443 is unreachable" in line
    assert not (tmp_path / "lake").exists()


def test_yfinance_empty_answer_with_the_network_up_is_unknown_tickers(monkeypatch):
    import yfinance
    import yfinance.shared

    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())
    monkeypatch.setattr(yfinance.shared, "_ERRORS", {})
    probes = []
    source = YFinanceSource(timeout_s=5, reachable=lambda: probes.append(1) or True)
    result = source.fetch(["XPTO3"], dt.date(2024, 1, 2), dt.date(2024, 1, 5))
    assert result.missing == ["XPTO3"] and probes == [1]


def test_yfinance_offline_as_it_logs_it_is_an_outage(tmp_path, capsys, monkeypatch):
    # yfinance 1.7's own log lines with the network down (recorded on this machine): "Domain name
    # not found" must not read as an unknown ticker.
    import logging

    import yfinance
    import yfinance.shared

    def download(*a, **k):
        log = logging.getLogger("yfinance")
        log.error("Failed to get ticker 'PETR4.SA' reason: Failed to perform, curl: (6) Could not resolve host: "
                  "query2.finance.yahoo.com (Domain name not found). See https://curl.se/libcurl/c/libcurl-errors.html "
                  "first for more details.")
        log.error("\n1 Failed download:")
        log.error("['PETR4.SA']: DNSError('Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com.')")
        return pd.DataFrame()

    monkeypatch.setattr(yfinance, "download", download)
    monkeypatch.setattr(yfinance.shared, "_ERRORS", {})
    monkeypatch.setattr("scraper.sources.yfinance_source.yahoo_reachable", lambda: pytest.fail("the log already says why"))
    assert run(tmp_path / "lake", "--tickers", "PETR4", "--start", "2024-01-02", "--end", "2024-01-05") == 4
    line = one_error_line(capsys)
    assert "Could not resolve host: query2.finance.yahoo.com" in line and "(and 1 more)" in line


def test_yfinance_logged_unknown_ticker_needs_no_probe(monkeypatch):
    import logging

    import yfinance
    import yfinance.shared

    def download(*a, **k):
        logging.getLogger("yfinance").error("['XPTO3.SA']: possibly delisted; no timezone found")
        return pd.DataFrame()

    monkeypatch.setattr(yfinance, "download", download)
    monkeypatch.setattr(yfinance.shared, "_ERRORS", {})
    source = YFinanceSource(timeout_s=5, reachable=lambda: pytest.fail("the log already says why"))
    assert source.fetch(["XPTO3"], dt.date(2024, 1, 2), dt.date(2024, 1, 5)).missing == ["XPTO3"]


# --- no source reads outside its folder -------------------------------------------------------


def test_csv_source_refuses_a_ticker_that_is_a_path(tmp_path):
    write_csv(tmp_path, "SECRET", "2020-06-01,1,2,1,2,2,10\n")  # outside the folder given
    (tmp_path / "csv").mkdir()
    with pytest.raises(SourceDataError, match="invalid ticker '../SECRET'"):
        CsvSource(tmp_path / "csv").fetch(["../SECRET"], None, None)


def test_ibov_file_tickers_are_validated_like_tickers(tmp_path, capsys):
    outside = write_csv(tmp_path, "X", "2020-06-01,1,2,1,2,2,10\n")
    doc = json.loads(PORTFOLIO.read_text())
    doc["results"][0]["cod"] = "../X"
    portfolio = tmp_path / "portfolio.json"
    portfolio.write_text(json.dumps(doc))
    csv_dir = tmp_path / "csv"
    shutil.copytree(SAMPLE_DIR, csv_dir)
    code = run(tmp_path / "lake", "--source", "csv", "--csv-dir", str(csv_dir), "--universe", "ibov",
               "--ibov-file", str(portfolio))
    assert code == 5
    line = one_error_line(capsys)
    assert f"IBOV portfolio {portfolio}: invalid ticker '../X'" in line
    assert outside.is_file() and not (tmp_path / "lake" / "raw" / "quotes").exists()


# --- all instruments ----------------------------------------------------------------------------


def test_all_instruments_keeps_every_forward_term(tmp_path):
    import pyarrow.parquet as pq

    source = B3Source(sessions=calendar_b3.sessions_between, files=[B3_DATA / "COTAHIST_D25062021.ZIP"],
                      all_instruments=True)
    report = scrape(source, Lake.local(tmp_path), ["ABEV3T", "AERI3T", "PETR4"], None, None, NOW)
    assert "duplicate_session" not in report.rejected
    raw = pq.read_table(tmp_path / "raw/quotes/dt=2021-06-25").to_pandas()
    # The 2021-06-25 file quotes ABEV3T at 60 and 90 days and AERI3T at 31, 45, 60, 90 and 180 days.
    terms = raw.groupby("ticker")["source_symbol"].apply(sorted).to_dict()
    assert terms["ABEV3T"] == ["ABEV3T 030/62/060d", "ABEV3T 030/62/090d"]
    assert len(terms["AERI3T"]) == 5 and terms["PETR4"] == ["PETR4"]
    close = raw.set_index("source_symbol")["close"]
    assert (close["ABEV3T 030/62/060d"], close["ABEV3T 030/62/090d"]) == (17.28, 17.24)


# --- the lake lock ------------------------------------------------------------------------------


def test_lake_lock_second_holder_waits_then_gives_up_naming_the_first(tmp_path, said):
    with lake_lock(tmp_path, 1, what="first run"):
        began = time.monotonic()
        with pytest.raises(LakeBusy, match="first run"), lake_lock(tmp_path, 0.6):
            pass
        assert 0.5 <= time.monotonic() - began < 5
    messages = said()
    assert len(messages) == 1 and "waiting for another run (pid" in messages[0]
    with lake_lock(tmp_path, 0):  # released: taken at once
        assert "pid" in (tmp_path / LOCK_FILE).read_text()


def test_lake_lock_is_released_when_its_holder_is_killed(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from b3_quotes.storage.lock import lake_lock\n"
         f"with lake_lock(Path({str(tmp_path)!r}), 0):\n    print('held', flush=True); time.sleep(60)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LakeBusy):
            with lake_lock(tmp_path, 0.2):
                pass
        holder.kill()
        holder.wait(10)
        with lake_lock(tmp_path, 2):
            pass
    finally:
        holder.kill()


def test_busy_lake_exits_7_and_writes_nothing(tmp_path, capsys, monkeypatch):
    lake = tmp_path / "lake"
    monkeypatch.setenv("LAKE_LOCK_WAIT_S", "0.3")
    with lake_lock(lake, 0, what="refine of another run"):
        code = run(lake, "--source", "csv", "--csv-dir", str(SAMPLE_DIR), "--tickers", "PETR4",
                   "--start", "2020-06-01", "--end", "2020-06-09")
    out = capsys.readouterr()
    assert code == 7
    assert "waiting for another run (pid" in out.out
    (line,) = out.err.splitlines()
    assert "the lake is busy, nothing written" in line and "re-run the same command" in line
    assert not (lake / "raw").exists()


def test_refine_failure_exits_6_naming_the_path_and_keeps_the_run_pending(tmp_path, capsys, monkeypatch):
    lake = tmp_path / "lake"
    target = lake / "refined/quotes_daily/dt=2020-06-01/ticker=PETR4/part-0.parquet"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(target))

    monkeypatch.setattr("b3_quotes.local_mode.trigger.trigger_locally", full_disk)
    code = run(lake, "--source", "csv", "--csv-dir", str(SAMPLE_DIR), "--tickers", "PETR4",
               "--start", "2020-06-01", "--end", "2020-06-09")
    assert code == 6
    line = one_error_line(capsys)
    assert f"refining failed writing {target}: No space left on device" in line
    assert "stays pending" in line and "re-run the same command" in line
    assert len(list((lake / "raw/_manifests").glob("*.json"))) == 1  # committed: the next run refines it


def test_catalog_held_by_another_program_is_a_warning(tmp_path, said):
    from b3_quotes.local_mode.trigger import _refresh

    lake = tmp_path / "lake"
    Lake.local(lake).write_bytes("raw/quotes/dt=2020-06-01/x.parquet", (SAMPLE_DIR.parent / "README.md").read_bytes())
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(lake / 'catalog.duckdb')!r}); "
         "print('open', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        _refresh(lake)
        (message,) = said()
        assert message.startswith(f"warning: catalog {lake / 'catalog.duckdb'} not refreshed (")
        assert "the next query refreshes it" in message
    finally:
        holder.kill()
        holder.wait(10)


# --- the data-quality report -------------------------------------------------------------------

BAD_ROWS = """2020-06-01,22.00,22.50,21.50,22.10,22.10,1000
2020-06-02,22.00,22.50,21.50,inf,22.10,1000
2020-06-03,22.00,1e308,21.50,22.10,22.10,1000
2020-06-04,22.00,22.50,21.50,23.00,23.00,1000
2020-06-05,22.00,22.50,21.50,22.10,22.10,-5
2020-06-08,null,null,null,null,null,null
2020-06-09,22.00,22.50,21.50,22.10,22.10,2000
2020-06-10,22.00,22.50,21.50,22.10,22.10,1000
2020-06-12,22.00,21.00,21.50,21.20,21.20,1000
2020-06-12,22.00,22.50,21.50,22.20,22.20,1100
2020-06-15,22.00,22.50"""  # cut off: a download that died mid-line


@dataclass(frozen=True)
class RecordingLake(Lake):
    """A local lake that keeps the keys it was given to write, in order."""

    keys: list[str] = field(default_factory=list, compare=False)

    def write_bytes(self, key: str, data: bytes) -> None:
        self.keys.append(key)
        super().write_bytes(key, data)


def test_data_quality_report_lists_every_rejected_row(tmp_path):
    csv_dir = tmp_path / "csv"
    write_csv(csv_dir, "PETR4", BAD_ROWS)
    storage = RecordingLake(str((tmp_path / "lake").resolve()))
    report = scrape(CsvSource(csv_dir), storage, ["PETR4"], None, None, NOW)
    # 06-01, 06-04 (its close above high is kept as it came), 06-09, 06-10, 06-12 (its valid repeat)
    assert report.written is not None and report.written.rows == 5
    assert report.rejected == {"non_finite_value": 1, "absurd_magnitude": 1, "negative_volume": 1,
                               "missing_price": 1, "high_below_low": 1, "truncated_line": 1}
    assert report.kept_with_issue == {"open_close_outside_range": 1}
    # The report lands before the manifest, which commits the run.
    assert storage.keys[-1] == report.written.manifest_key
    assert all(k.startswith(("raw/quote_issues/", "raw/quotes/")) for k in storage.keys[:-1])
    manifest = json.loads((tmp_path / "lake" / report.written.manifest_key).read_text())
    assert manifest["rejected_rows"] == 6 and len(manifest["issue_files"]) == 7

    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT CAST(dt AS varchar), ticker, CAST(trade_date AS varchar), reason, open, high, low, close, volume, "
            f"source, source_symbol, run_id, detail, action "
            f"FROM read_parquet('{tmp_path}/lake/raw/quote_issues/*/*.parquet', "
            "hive_partitioning = true) ORDER BY dt").fetchall()
    run_id = report.written.run_id
    inf, nan = float("inf"), None
    expected = [
        ("2020-06-02", "PETR4", "2020-06-02", "non_finite_value", 22.0, 22.5, 21.5, inf, 1000.0, "close inf"),
        ("2020-06-03", "PETR4", "2020-06-03", "absurd_magnitude", 22.0, 1e308, 21.5, 22.1, 1000.0, "high 1e+308"),
        ("2020-06-04", "PETR4", "2020-06-04", "open_close_outside_range", 22.0, 22.5, 21.5, 23.0, 1000.0,
         "close 23 is 0.5 above high 22.5: kept"),
        ("2020-06-05", "PETR4", "2020-06-05", "negative_volume", 22.0, 22.5, 21.5, 22.1, -5.0, "volume -5"),
        ("2020-06-08", "PETR4", "2020-06-08", "missing_price", nan, nan, nan, nan, nan, "no open, high, low, close"),
        ("2020-06-12", "PETR4", "2020-06-12", "high_below_low", 22.0, 21.0, 21.5, 21.2, 1000.0,
         "high 21 is 0.5 below low 21.5"),
        ("2020-06-15", "PETR4", "2020-06-15", "truncated_line", 22.0, 22.5, nan, nan, nan,
         "PETR4.SA.csv:12: 3 of 7 fields"),
    ]
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected):
        assert row[:9] == want[:9], row
        assert row[9:12] == ("csv", "PETR4.SA.csv", run_id)
        assert want[9] in row[12], (row[12], want[9])
        assert row[13] == ("kept" if want[3] == "open_close_outside_range" else "rejected")


def test_rejected_report_sql_runs_on_the_local_catalog(tmp_path):
    from tests.helpers import run_local

    csv_dir = tmp_path / "csv"
    write_csv(csv_dir, "PETR4", BAD_ROWS)
    write_csv(csv_dir, "VALE3", "2020-06-01,50,51,49,50.5,50.5,100\n2020-06-02,50,51,49,52,52,100\n")
    lake = tmp_path / "lake"
    report = scrape(CsvSource(csv_dir), Lake.local(lake), ["PETR4", "VALE3"], None, None, NOW)
    assert report.written is not None
    columns, rows = run_local(lake, (REPO / "sql" / "quote_issues_by_reason.sql").read_text())
    by_reason = {r["reason"]: r for r in (dict(zip(columns, row)) for row in rows)}
    outside = by_reason["open_close_outside_range"]
    assert (outside["action"], outside["issue_rows"], outside["tickers"]) == ("kept", 2, 2)  # PETR4 06-04, VALE3 06-02
    assert outside["example"] == "PETR4 2020-06-04: close 23 is 0.5 above high 22.5: kept as the source gave it"
    assert sum(r["issue_rows"] for r in by_reason.values() if r["action"] == "rejected") == 6
    assert {r["run_id"] for r in by_reason.values()} == {report.written.run_id}
    assert {r["run_id"] for r in by_reason.values()} == {report.written.run_id}


def test_summary_counts_rejections_by_reason_and_names_the_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("b3_quotes.local_mode.trigger.trigger_locally", lambda *a, **k: [])
    csv_dir = tmp_path / "csv"
    write_csv(csv_dir, "PETR4", BAD_ROWS)
    assert run(tmp_path / "lake", "--source", "csv", "--csv-dir", str(csv_dir), "--tickers", "PETR4") == 0
    out = capsys.readouterr().out
    assert ("rejected  6 rows (absurd_magnitude 1, high_below_low 1, missing_price 1, negative_volume 1, "
            "non_finite_value 1, truncated_line 1)") in out
    assert "kept      1 rows (open_close_outside_range 1) loaded as the source gave them" in out
    assert f"{tmp_path / 'lake' / 'raw/quote_issues/'} (table quote_issues)" in out


def test_busy_lake_keeps_even_the_ibov_snapshot_out(tmp_path, capsys, monkeypatch):
    lake = tmp_path / "lake"
    monkeypatch.setenv("LAKE_LOCK_WAIT_S", "0")
    with lake_lock(lake, 0):
        code = run(lake, "--source", "csv", "--csv-dir", str(SAMPLE_DIR), "--universe", "ibov",
                   "--ibov-file", str(PORTFOLIO))
    assert code == 7 and "the lake is busy" in one_error_line(capsys)
    assert not (lake / "raw").exists()  # the snapshot is written under the lock, like the quotes


def test_ibov_snapshot_is_kept_when_no_quote_is_written(tmp_path, capsys):
    lake = tmp_path / "lake"
    code = run(lake, "--source", "csv", "--csv-dir", str(tmp_path), "--universe", "ibov", "--ibov-file", str(PORTFOLIO))
    assert code == 3
    assert (lake / "raw/ibov_portfolio/dt=2025-04-07/ibov.parquet").is_file()
    assert "snapshot saved to" in capsys.readouterr().out


def test_theoretical_portfolio_response_is_refused_in_one_line(tmp_path, capsys):
    # Real GetTheoricalPortfolio body (ropensci/rb3): no header date, a reductor.
    theoretical = TEST_DATA / "GetTheoricalPortfolio_IBOV_2025-04-07.body.json"
    code = run(tmp_path / "lake", "--source", "sample", "--universe", "ibov", "--ibov-file", str(theoretical))
    assert code == 5
    line = one_error_line(capsys)
    assert f"--ibov-file {theoretical}: a GetTheoricalPortfolio response" in line and "KeyError" not in line
    assert not (tmp_path / "lake").exists()


def test_no_java_is_one_line_and_the_raw_run_stays_pending(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin-without-java"))
    lake = tmp_path / "lake"
    code = run(lake, "--source", "sample", "--tickers", "PETR4", "--start", "2020-06-01", "--end", "2020-06-05")
    assert code == 6
    line = one_error_line(capsys)
    assert line.startswith("error: refining failed: Java 17 is not installed") and "install a Java 17 runtime" in line
    assert "the raw run is committed" in line and "stays pending" in line
    assert len(list((lake / "raw" / "_manifests").glob("*.json"))) == 1


def test_a_lock_error_is_said_once(tmp_path, capsys, monkeypatch):
    lake = tmp_path / "lake"

    def unwritable(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path / ".lake.lock"))

    monkeypatch.setattr("b3_quotes.runtime.lake_lock", unwritable)  # the local runtime takes the lock
    assert run(lake, "--source", "sample", "--tickers", "PETR4", "--start", "2020-06-01", "--end", "2020-06-05") == 6
    line = one_error_line(capsys)
    assert f"run not committed (no manifest, nothing triggered): cannot lock the lake: {lake / '.lake.lock'}: " \
           "Permission denied; once that is fixed" in line
    assert "LakeWriteError" not in line
