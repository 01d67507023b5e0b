"""python -m b3_quotes.catalog.verify: every file read, raw vs refined vs compact compared, --repair rebuilds refined/."""

from __future__ import annotations

import shlex
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from b3_quotes.catalog import verify
from tests.conftest import SAMPLE_DIR
from tests.helpers import (
    assert_same_tables,
    copy_lake,
    csv_run,
    read_table,
    refined_row_digests,
    run_local,
    run_scraper,
)

pytestmark = pytest.mark.integration


def test_verify_finds_a_corrupt_partition_and_a_missing_compact_row_and_repair_heals_both(full_lake, tmp_path,
                                                                                          capsys):
    lake = copy_lake(full_lake, tmp_path)
    assert verify.main(["--lake-dir", str(lake), "--quiet"]) == 0
    assert capsys.readouterr().out == ""  # a scheduled check says nothing when all is well

    corrupt = lake / "refined/quotes_daily/dt=2020-02-03/ticker=PETR4/part-0.snappy.parquet"
    corrupt.write_bytes(b"PAR1 not a parquet file")
    gone = lake / "refined/quotes_monthly/month=2019-11/ticker=VALE3"
    shutil.rmtree(gone)
    assert verify.main(["--lake-dir", str(lake), "--quiet"]) == 1
    out = capsys.readouterr().out.splitlines()  # --quiet: the findings, no summary
    assert len(out) == 3 and out[0].startswith(f"unreadable: {corrupt}: ")
    assert out[1] == ("refined/quotes_daily: 1 row(s) raw gives are missing (first: PETR4 2020-02-03); "
                      "--repair rebuilds them")
    assert out[2] == ("refined/quotes_monthly: 1 row(s) raw gives are missing (first: VALE3 2019-11); "
                      "--repair rebuilds them")

    assert verify.main(["--lake-dir", str(lake), "--repair"]) == 0
    out = capsys.readouterr().out.splitlines()  # the findings again with their summary, the rebuild, the check
    assert out[0].startswith("unreadable: ") and out[3].startswith(f"{lake}: 3 problem(s)")
    assert any(line.startswith("rebuilt from raw:") for line in out[4:-1])
    assert out[-1] == f"{lake}: consistent (244 daily and 12 monthly rows recomputed from raw and compared)"
    assert_same_tables(lake, full_lake)


def set_value(path, column: str, value: object, ticker: str, period: str) -> object:
    """Rewrite one value of a valid Parquet file (a row of a partition file, or a compact file's row
    of `ticker` and `period`); the old value."""
    table = pq.read_table(path, partitioning=None)
    index = 0
    if "ticker" in table.column_names:
        keys = list(zip(table["ticker"].to_pylist(), table[("dt" if "dt" in table.column_names else "month")].to_pylist()))
        index = keys.index((ticker, period))
    values = table[column].to_pylist()
    old, values[index] = values[index], value
    field = table.schema.field(column)
    pq.write_table(table.set_column(table.schema.get_field_index(column), field, pa.array(values, field.type)), path)
    return old


# Valid Parquet, wrong values: what verify used to call consistent.
WRONG = [
    ("refined/quotes_daily/dt=2020-02-21/ticker=VALE3/part-0.snappy.parquet", "close_price", 99.0,
     "VALE3", "2020-02-21", "refined/quotes_daily"),
    ("refined/quotes_daily_compact/year=2020/part-0.snappy.parquet", "ma_20", 1234.5,
     "PETR4", "2020-03-02", "refined/quotes_daily_compact"),
    ("refined/quotes_monthly/month=2020-01/ticker=PETR4/part-0.snappy.parquet", "monthly_return", 0.5,
     "PETR4", "2020-01", "refined/quotes_monthly"),
    ("refined/quotes_monthly_compact/year=2019/part-0.snappy.parquet", "total_volume", 1,
     "VALE3", "2019-12", "refined/quotes_monthly_compact"),
    ("refined/quotes_daily/dt=2019-10-01/ticker=PETR4/part-0.snappy.parquet", "daily_return", 0.01,
     "PETR4", "2019-10-01", "refined/quotes_daily"),  # a first session's return must stay null
]


def test_wrong_values_are_named_with_their_keys_and_repair_restores_every_row(full_lake, tmp_path, capsys):
    lake = copy_lake(full_lake, tmp_path)
    good = refined_row_digests(lake)
    right = {case: set_value(lake / case[0], *case[1:5]) for case in WRONG}
    changed = {k for k, v in refined_row_digests(lake).items() if good.get(k) != v}
    # Exactly the rows changed, one in each table (two in quotes_daily).
    assert changed == {(where.split("/")[1], ticker, period) for _, _, _, ticker, period, where in WRONG}

    assert verify.main(["--lake-dir", str(lake)]) == 1
    out = capsys.readouterr().out.splitlines()
    expected = []
    for table in ("refined/quotes_daily", "refined/quotes_daily_compact", "refined/quotes_monthly",
                  "refined/quotes_monthly_compact"):
        cases = sorted((case for case in WRONG if case[5] == table), key=lambda case: (case[4], case[3]))
        expected.append(f"{table}: {len(cases)} value(s) differ from a recompute from raw (tolerance 1e-09 "
                        "relative, 1e-12 absolute); first:")
        expected += [f"  {ticker} {period} {column}: {wrong} in the lake, "
                     f"{'null' if right[case] is None else right[case]} from raw"
                     for case in cases for _, column, wrong, ticker, period, _ in [case]]
    assert out[:-1] == expected
    assert out[-1].startswith(f"{lake}: 4 problem(s)")

    assert verify.main(["--lake-dir", str(lake), "--repair"]) == 0
    assert refined_row_digests(lake) == good


def test_a_difference_within_the_tolerance_is_no_finding(full_lake, tmp_path, capsys):
    lake = copy_lake(full_lake, tmp_path)
    file = lake / "refined/quotes_daily/dt=2020-02-21/ticker=VALE3/part-0.snappy.parquet"
    ma_5 = pq.read_table(file)["ma_5"][0].as_py()
    set_value(file, "ma_5", ma_5 * (1 + 1e-12), "VALE3", "2020-02-21")  # a sum taken in another order
    assert verify.main(["--lake-dir", str(lake)]) == 0
    set_value(file, "ma_5", ma_5 * (1 + 1e-6), "VALE3", "2020-02-21")  # R$ 0.00005 on R$ 52: a real error
    assert verify.main(["--lake-dir", str(lake)]) == 1


def test_since_reads_the_partitioned_files_from_that_day_and_checks_the_older_ones_by_their_listing(
        full_lake, tmp_path, capsys):
    lake = copy_lake(full_lake, tmp_path)
    daily = lake / "refined/quotes_daily"
    # A wrong value from the day on is read and found; one before it is not read (the full check finds it).
    set_value(daily / "dt=2020-03-02/ticker=VALE3/part-0.snappy.parquet", "close_price", 99.0, "VALE3", "2020-03-02")
    set_value(daily / "dt=2019-11-04/ticker=PETR4/part-0.snappy.parquet", "close_price", 98.0, "PETR4", "2019-11-04")
    # What the listing of older files shows: a session's file gone, a second file in a folder.
    shutil.rmtree(daily / "dt=2019-12-02/ticker=VALE3")
    folder = daily / "dt=2019-10-15/ticker=PETR4"
    shutil.copy(folder / "part-0.snappy.parquet", folder / "part-1.snappy.parquet")

    assert verify.main(["--lake-dir", str(lake), "--since", "2020-03-01"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "refined/quotes_daily: 1 row(s) stored twice (first: PETR4 2019-10-15)",
        "refined/quotes_daily: 1 row(s) raw gives are missing (first: VALE3 2019-12-02); --repair rebuilds them",
        "refined/quotes_daily: 1 value(s) differ from a recompute from raw (tolerance 1e-09 relative, 1e-12 absolute); "
        "first:",
        "  VALE3 2020-03-02 close_price: 99.0 in the lake, 46.360001 from raw",  # data/sample/yahoo/VALE3.SA.csv
        f"{lake}: 3 problem(s) (244 daily and 12 monthly rows recomputed from raw and compared; partitioned files "
        "read from 2020-03-01 on, older ones listed)",
    ]
    assert verify.main(["--lake-dir", str(lake)]) == 1
    assert "  PETR4 2019-11-04 close_price: 98.0 in the lake, 30.360001 from raw" in capsys.readouterr().out


def test_a_missing_raw_day_is_named_with_its_command_and_nothing_rewrites_its_neighbours(full_lake, tmp_path, capsys):
    lake = copy_lake(full_lake, tmp_path)
    shutil.rmtree(lake / "raw/quotes/dt=2020-02-20")  # both tickers' raw of that day
    before = refined_row_digests(lake)

    assert verify.main(["--lake-dir", str(lake)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("missing raw: 2 session(s) the refined tables hold are in no raw file (first: PETR4 2020-02-20, "
                      "VALE3 2020-02-20); nothing that depends on them is rewritten until they are back. "
                      "Fetch them again with:")
    command = (f"python scraper/scraper_upload.py --lake-dir {lake} --source csv --csv-dir <the CSV folder> "
               "--tickers PETR4,VALE3 --start 2020-02-20 --end 2020-02-20")
    assert out[1] == f"  {command}"
    assert out[2] == "  or, to drop them from the refined tables on purpose: python -m b3_quotes.catalog.verify --repair --forget-missing"

    # --repair rebuilds nothing: the neighbours' ma_5, ma_20 and returns keep the day.
    assert verify.main(["--lake-dir", str(lake), "--repair"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: raw lacks 2 session(s) the refined tables hold (above): nothing was rebuilt, "
                   "so the values that depend on them stay as they were"]
    assert refined_row_digests(lake) == before
    # A run whose windows need the day stops (exit 6), even when a damaged compact file sends it to a
    # full rebuild; nothing refined is rewritten.
    (lake / "refined/quotes_daily_compact/year=2020/part-0.snappy.parquet").write_bytes(b"PAR1 truncated")
    capsys.readouterr()
    assert csv_run(lake, "2020-03-02", "2020-03-02") == 6
    assert "raw day 2020-02-20 of PETR4 is missing" in capsys.readouterr().err
    after = refined_row_digests_but_compact_2020(lake)
    assert after == {k: v for k, v in before.items() if k in after}

    # The command verify printed brings the day back; the next run heals everything.
    argv = shlex.split(command.replace("<the CSV folder>", str(SAMPLE_DIR)))[2:]
    assert run_scraper(lake, *argv[2:]) == 0
    assert verify.main(["--lake-dir", str(lake)]) == 0
    assert_same_tables(lake, full_lake)


def refined_row_digests_but_compact_2020(lake) -> dict:
    """The row digests of every refined file that still reads (the test truncated the 2020 compact file)."""
    saved = lake / "refined/quotes_daily_compact/year=2020"
    aside = lake.parent / "aside"
    shutil.move(saved, aside)
    try:
        return refined_row_digests(lake)
    finally:
        shutil.move(aside, saved)


def test_forgetting_a_missing_raw_day_on_purpose_recomputes_its_neighbours_without_it(full_lake, tmp_path, capsys):
    lake = copy_lake(full_lake, tmp_path)
    shutil.rmtree(lake / "raw/quotes/dt=2020-02-20")
    assert verify.main(["--lake-dir", str(lake), "--repair", "--forget-missing"]) == 0
    out = capsys.readouterr().out
    assert "forgot 2 session(s) raw lacks: 4 refined file(s) deleted" in out
    assert not list((lake / "refined/quotes_daily").glob("dt=2020-02-20/*/*.parquet"))
    # VALE3's closes from data/sample/yahoo/VALE3.SA.csv: 02-14 51.0, 02-17 53.41, 02-18 52.799999,
    # 02-19 52.810001, (02-20 52.200001 forgotten), 02-21 50.130001.
    row = read_table(lake, "quotes_daily").set_index(["ticker", "dt"]).loc[("VALE3", "2020-02-21")]
    assert row["ma_5"] == pytest.approx((51.0 + 53.41 + 52.799999 + 52.810001 + 50.130001) / 5, rel=1e-12)
    # 02-20 was a B3 session: its absence is a gap, so no return spans it (a flag, not a bent value).
    assert row["gap_before"] and pd.isna(row["daily_return"]) and pd.isna(row["total_return"])
    assert row["days_since_prev_session"] == 2
    month = read_table(lake, "quotes_monthly").set_index(["ticker", "month"]).loc[("VALE3", "2020-02")]
    assert month["sessions"] == 16  # February 2020: 18 rows in the sample, 02-26 without a close, 02-20 forgotten


def test_verify_heals_a_broken_local_catalog_file(full_lake, tmp_path, capsys):
    lake = copy_lake(full_lake, tmp_path)
    (lake / "catalog.duckdb").write_bytes(b"")
    assert verify.main(["--lake-dir", str(lake)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"catalog {lake / 'catalog.duckdb'} could not be used (")
    assert first.endswith("rebuilt from the contract")
    assert run_local(lake, "SELECT count(*) FROM quotes_daily")[1] == [(244,)]


def test_an_unreadable_raw_file_is_named_and_never_rebuilt_over(full_lake, tmp_path, capsys):
    lake = copy_lake(full_lake, tmp_path)
    raw = sorted((lake / "raw/quotes/dt=2020-01-02").glob("*.parquet"))[0]
    raw.write_bytes(raw.read_bytes()[:100])
    before = refined_row_digests(lake)
    assert verify.main(["--lake-dir", str(lake), "--repair"]) == 1
    captured = capsys.readouterr()
    assert f"unreadable: {raw}: " in captured.out
    assert "values not compared: raw files cannot be read (above)" in captured.out
    assert "nothing was rebuilt" in captured.err
    assert refined_row_digests(lake) == before


def test_no_lake_is_a_usage_error(tmp_path, capsys):
    assert verify.main(["--lake-dir", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.strip() == (f"error: no lake at {tmp_path / 'none'}: run the scraper first, "
                                               "or set LAKE_DIR / --lake-dir")
