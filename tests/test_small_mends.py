"""Small things a user met: a binary .env, thousands of unknown tickers, the printed query hint, a parameterised .sql."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from b3_quotes.catalog import query, verify
from b3_quotes.charts import command as chart_command
from tests.conftest import REPO, SAMPLE_DIR
from tests.helpers import copy_lake, run_scraper

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("entry", ["query", "verify", "chart", "scrape"])
def test_a_binary_env_file_is_one_line_naming_it(tmp_path, monkeypatch, capsys, entry):
    env = tmp_path / "binary.env"
    env.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(128, 256)))
    monkeypatch.setenv("ENV_FILE", str(env))
    lake = tmp_path / "lake"
    mains = {"query": lambda: query.main(["--lake-dir", str(lake), "--sql", "SELECT 1"]),
             "verify": lambda: verify.main(["--lake-dir", str(lake)]),
             "chart": lambda: chart_command.main(["--lake-dir", str(lake), "--tickers", "PETR4"]),
             "scrape": lambda: run_scraper(lake, "--source", "sample")}
    assert mains[entry]() == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {env}: not a text file of NAME=value lines (UTF-8): "), err
    assert not lake.exists()  # nothing written


def test_twenty_thousand_unknown_tickers_are_summarised(tmp_path, capsys):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    shutil.copy(SAMPLE_DIR / "PETR4.SA.csv", csv_dir)
    unknown = [f"Z{n // 26 // 26 % 26 + 65:c}{n // 26 % 26 + 65:c}{n % 26 + 65:c}{n // 17576 + 1}" for n in range(20_001)]
    assert len(set(unknown)) == 20_001
    code = run_scraper(tmp_path / "lake", "--source", "csv", "--csv-dir", str(csv_dir), "--start", "2020-03-02",
                       "--end", "2020-03-03", "--tickers", ",".join(["PETR4", *unknown]))
    assert code == 3  # the others are loaded
    captured = capsys.readouterr()
    assert len(captured.out) + len(captured.err) < 5_000  # it was 1.08 MB
    line = next(x for x in captured.out.splitlines() if x.startswith("no data"))
    assert line == (f"no data   20001 tickers, no file <TICKER>.SA.csv in {csv_dir}: "
                    f"{', '.join(unknown[:20])} ... and 19981 more")
    assert captured.err.strip() == (f"error: no data for {', '.join(unknown[:20])} ... and 19981 more; "
                                    "the other tickers were written")
    assert "written   2 rows" in captured.out


def test_a_few_unknown_tickers_keep_a_line_each(tmp_path, capsys):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    shutil.copy(SAMPLE_DIR / "PETR4.SA.csv", csv_dir)
    assert run_scraper(tmp_path / "lake", "--source", "csv", "--csv-dir", str(csv_dir), "--start", "2020-03-02",
                       "--end", "2020-03-03", "--tickers", "PETR4,ABCD3") == 3
    assert f"no data   ABCD3: no file ABCD3.SA.csv in {csv_dir}" in capsys.readouterr().out.splitlines()


def test_the_printed_query_hint_runs_as_pasted_for_a_lake_path_with_spaces_and_quotes(full_lake, tmp_path, capsys):
    lake = copy_lake(full_lake, tmp_path)
    odd = tmp_path / "my lake's copy"
    lake.rename(odd)
    assert run_scraper(odd, "--source", "csv", "--csv-dir", str(SAMPLE_DIR), "--tickers", "PETR4",
                       "--start", "2020-03-31", "--end", "2020-03-31") == 0
    hint = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("query it: "))
    pasted = hint.removeprefix("query it: ").replace("python ", f"{shlex.quote(str(REPO / '.venv/bin/python'))} ", 1)
    done = subprocess.run(["bash", "-c", pasted], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "PETR4" in done.stdout and "2020-03-31" in done.stdout


def test_ticker_history_takes_the_ticker_as_a_parameter(full_lake, tmp_path, capsys):
    full_lake = copy_lake(full_lake, tmp_path)
    sql = str(REPO / "sql/ticker_history.sql")
    assert query.main(["--lake-dir", str(full_lake), "--file", sql, "--param", "ticker=VALE3"]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert len(rows) == 122 and rows[0].split()[:2] == ["2019-10-01", "47.8500"]  # VALE3.SA.csv's open that day, 47.849998
    assert query.main(["--lake-dir", str(full_lake), "--file", sql]) == 0  # the file's default, PETR4
    assert capsys.readouterr().out.splitlines()[2].split()[:2] == ["2019-10-01", "27.6000"]
    # A value is a quoted string: it cannot end the literal.
    assert query.main(["--lake-dir", str(full_lake), "--file", sql, "--param", "ticker=X' OR ''='"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # the header alone
    assert query.main(["--lake-dir", str(full_lake), "--sql", "SELECT ${t}"]) == 2
    assert capsys.readouterr().err.strip() == "error: the SQL uses ${t}: give it with --param t=VALUE"
    assert query.main(["--lake-dir", str(full_lake), "--file", sql, "--param", "tikcer=VALE3"]) == 2
    assert capsys.readouterr().err.strip() == "error: --param tikcer: the SQL uses no ${tikcer}"
