"""Queries on a local lake: the catalog file heals, statements only read the lake's tables, no query waits on a run."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time

import duckdb
import pytest

from b3_quotes.catalog.query import main
from b3_quotes.storage.lock import lake_lock
from tests.conftest import REPO
from tests.helpers import copy_lake, refined_row_digests

pytestmark = pytest.mark.integration

COUNT = "SELECT ticker, count(*) AS sessions, round(sum(close_price), 4) AS closes FROM quotes_daily GROUP BY ticker ORDER BY ticker"


@pytest.fixture
def lake(full_lake, tmp_path):
    return copy_lake(full_lake, tmp_path)


def files(lake) -> dict[str, bytes]:
    """Every table file of the lake, byte for byte."""
    return {str(p.relative_to(lake)): p.read_bytes() for p in sorted((lake / "refined").rglob("*"))
            + sorted((lake / "raw").rglob("*")) if p.is_file()}


def query(lake, sql: str, capsys) -> tuple[int, str, list[str]]:
    code = main(["--lake-dir", str(lake), "--sql", sql])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


def expected_counts(lake) -> str:
    """The same figures read straight from the compact files, without the catalog."""
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT ticker, count(*), round(sum(close_price), 4) FROM read_parquet('{lake}/refined/quotes_daily_compact/*/*.parquet') "
            "GROUP BY ticker ORDER BY ticker").fetchall()
    assert [r[0] for r in rows] == ["PETR4", "VALE3"] and all(r[1] == 122 for r in rows)  # 2019-10-01 .. 2020-03-31
    return "\n".join(f"{t}  {n}  {c:.4f}" for t, n, c in rows)


def table_lines(out: str) -> str:
    return "\n".join(" ".join(line.split()) for line in out.splitlines()[2:]).replace(" ", "  ")


@pytest.mark.parametrize("damage", ["empty", "truncated", "junk", "foreign"])
def test_a_broken_catalog_file_is_rebuilt_by_the_next_query_with_one_line(lake, capsys, damage):
    catalog = lake / "catalog.duckdb"
    assert catalog.stat().st_size > 0
    if damage == "empty":
        catalog.write_bytes(b"")  # what a query on a full disk used to leave
    elif damage == "truncated":
        catalog.write_bytes(catalog.read_bytes()[:5000])
    elif damage == "junk":
        catalog.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    else:  # another program's DuckDB database, with a table where our view should be
        catalog.unlink()
        with duckdb.connect(str(catalog)) as con:
            con.execute("CREATE TABLE quotes_daily AS SELECT 'XXXX3' AS ticker, 1 AS sessions")
    before = refined_row_digests(lake)

    code, out, err = query(lake, COUNT, capsys)
    assert code == 0, err
    assert table_lines(out) == expected_counts(lake)
    assert len(err) == 1 and err[0].startswith(f"catalog {catalog} could not be used (") \
        and err[0].endswith("): rebuilt from the contract"), err
    # Healed for good: the next query says nothing, and the data was not touched.
    assert query(lake, COUNT, capsys)[2] == []
    assert refined_row_digests(lake) == before


def test_the_run_s_catalog_message_is_true_a_query_refreshes_a_missing_catalog(lake, capsys):
    (lake / "catalog.duckdb").unlink()
    code, out, err = query(lake, COUNT, capsys)
    assert (code, err) == (0, []) and table_lines(out) == expected_counts(lake)
    assert (lake / "catalog.duckdb").is_file()


OUTSIDE = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('{lake}/notes.txt')",  # the lake's folder, not one of its tables
    "SELECT * FROM read_text('{lake}/refined/quotes_daily_compact/../../notes.txt')",
    "SELECT * FROM read_csv('{lake}/refined/quotes_daily_compact/../../../../../../../../etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
]


@pytest.mark.parametrize("sql", OUTSIDE)
def test_no_file_outside_the_lake_s_tables_can_be_read(lake, capsys, sql):
    (lake / "notes.txt").write_text("a user's file in the lake's folder")
    code, out, err = query(lake, sql.format(lake=lake), capsys)
    assert (code, out) == (3, "")
    assert len(err) == 1 and err[0].startswith("error: refused: Cannot access file ") \
        and err[0].endswith("(queries read only the lake's tables)"), err


WRITES = [
    "COPY (SELECT 1 AS a) TO '{compact}'",
    "COPY quotes_daily TO '{lake}/refined/quotes_daily_compact/year=2019/part-1.parquet'",
    "EXPLAIN ANALYZE COPY (SELECT 1 AS a) TO '{compact}'",
    "CREATE TABLE t AS SELECT 1",
    "INSERT INTO quotes_daily SELECT * FROM quotes_daily",
    "ATTACH '{lake}/other.duckdb'",
    "SET enable_external_access = true",
    "PRAGMA profile_output = '{lake}/x'",
    "DROP VIEW quotes_daily",
    "SELECT 1; COPY (SELECT 1 AS a) TO '{compact}'",  # one refused statement: none runs
]


@pytest.mark.parametrize("sql", WRITES)
def test_a_statement_that_writes_is_refused_in_one_line_and_nothing_changes(lake, capsys, sql):
    compact = lake / "refined/quotes_daily_compact/year=2019/part-0.snappy.parquet"
    before, digests = files(lake), refined_row_digests(lake)
    code, out, err = query(lake, sql.format(lake=lake, compact=compact), capsys)
    assert (code, out) == (3, "")
    assert len(err) == 1 and err[0].startswith("error: refused: ") and err[0].endswith("nothing was run"), err
    assert files(lake) == before and refined_row_digests(lake) == digests
    assert not (lake / "other.duckdb").exists() and not (lake / "x").exists()
    # The views still answer as before.
    assert table_lines(query(lake, COUNT, capsys)[1]) == expected_counts(lake)


def test_several_statements_each_show_their_result(lake, capsys):
    code, out, err = query(lake, "SELECT 'first' AS which; SELECT count(*) AS n FROM quotes_monthly;\n"
                                 "DESCRIBE quotes_daily", capsys)
    assert (code, err) == (0, [])
    blocks = out.split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["-- statement 1 of 3", "-- statement 2 of 3", "-- statement 3 of 3"]
    assert blocks[0].splitlines()[1:] == ["which", "-----", "first"]
    assert blocks[1].splitlines()[-1].strip() == "12"  # 2 tickers x 6 months (2019-10 .. 2020-03)
    assert "close_price" in blocks[2] and "column_name" in blocks[2]


def test_a_query_during_a_run_answers_at_once_from_the_committed_lake(lake, capsys, monkeypatch):
    monkeypatch.setenv("LAKE_LOCK_WAIT_S", "30")
    expected = expected_counts(lake)
    (lake / "catalog.duckdb").unlink()  # the query must also write the catalog while the run holds the lake
    with lake_lock(lake, 1, what="scrape"):  # a run holds the lake (an flock: contended in one process too)
        began = time.monotonic()
        code, out, err = query(lake, COUNT, capsys)
        seconds = time.monotonic() - began
    assert (code, err) == (0, []) and table_lines(out) == expected
    assert seconds < 5, seconds  # it used to wait for the lock (41.6 s seen with two scrapes running)


def test_a_catalog_another_program_holds_open_for_writing_is_read_from_memory(lake, capsys):
    expected = expected_counts(lake)
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                               "print('open', flush=True); sys.stdin.read()", str(lake / "catalog.duckdb")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout and holder.stdout.readline() == "open\n"  # a DuckDB shell on the catalog
        code, out, err = query(lake, COUNT, capsys)
    finally:
        holder.communicate("")
    assert (code, err) == (0, []) and table_lines(out) == expected


def test_a_catalog_this_process_holds_open_is_read_from_memory(lake, capsys):
    expected = expected_counts(lake)
    with duckdb.connect(str(lake / "catalog.duckdb")):  # a notebook's connection, in this process
        code, out, err = query(lake, COUNT, capsys)
    assert (code, err) == (0, []) and table_lines(out) == expected


def test_queries_and_catalog_rewrites_at_once_all_answer(lake, capsys):
    """Readers keep the catalog they opened while writers rename new ones over it: nobody waits or fails."""
    from b3_quotes.local_mode.duckdb_views import open_catalog, refresh_catalog

    expected = [("PETR4", 122), ("VALE3", 122)]
    failures: list[BaseException] = []

    def rewrite() -> None:
        try:
            for _ in range(15):
                (lake / "catalog.duckdb").unlink(missing_ok=True)  # forces a whole new file each time
                refresh_catalog(lake)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            failures.append(exc)

    writer = threading.Thread(target=rewrite)
    writer.start()
    answers = []
    while writer.is_alive() or not answers:
        with open_catalog(lake) as con:
            answers.append(con.execute("SELECT ticker, count(*) FROM quotes_daily GROUP BY 1 ORDER BY 1").fetchall())
    writer.join()
    assert failures == [] and answers and all(a == expected for a in answers)


def test_a_reader_that_stops_early_ends_the_query_quietly(lake):
    command = (f"{shutil.which('python3') and sys.executable} -m b3_quotes.catalog.query --lake-dir '{lake}' "
               "--sql 'SELECT * FROM quotes_daily CROSS JOIN range(2000)' | head -n 1; "
               "echo \"status ${PIPESTATUS[0]}\"")  # rows past any pipe's buffer: the writer meets the closed pipe
    done = subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines()[0].split()[:2] == ["trade_date", "open_price"]
    assert done.stdout.splitlines()[-1] == "status 141"  # as a program SIGPIPE ended
    assert done.stderr == ""  # no BrokenPipeError traceback
