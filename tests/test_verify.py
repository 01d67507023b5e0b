"""python -m catalog.verify: every file read, raw vs refined vs compact compared, --repair rebuilds refined/."""

from __future__ import annotations

import shutil

import pytest

from catalog import verify
from tests.helpers import assert_same_tables, copy_lake

pytestmark = pytest.mark.integration


def test_verify_finds_a_corrupt_partition_and_a_missing_compact_row_and_repair_heals_both(full_lake, tmp_path,
                                                                                          capsys):
    lake = copy_lake(full_lake, tmp_path)
    assert verify.main(["--lake-dir", str(lake)]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{lake}: consistent")

    corrupt = lake / "refined/quotes_daily/dt=2020-02-03/ticker=PETR4/part-0.snappy.parquet"
    corrupt.write_bytes(b"PAR1 not a parquet file")
    gone = lake / "refined/quotes_monthly/month=2019-11/ticker=VALE3"
    shutil.rmtree(gone)
    assert verify.main(["--lake-dir", str(lake)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"unreadable: {corrupt}: ")
    assert out[1] == ("months: 1 in refined/quotes_monthly_compact but not in refined/quotes_monthly "
                      "(first: VALE3 2019-11)")
    assert out[-1] == f"{lake}: 2 problem(s)"

    assert verify.main(["--lake-dir", str(lake), "--repair"]) == 0
    out = capsys.readouterr().out
    assert "rebuilt from raw:" in out and out.strip().endswith(f"{lake}: consistent")
    assert_same_tables(lake, full_lake)


def test_an_unreadable_raw_file_is_named_and_never_rebuilt_over(full_lake, tmp_path, capsys):
    lake = copy_lake(full_lake, tmp_path)
    raw = sorted((lake / "raw/quotes/dt=2020-01-02").glob("*.parquet"))[0]
    raw.write_bytes(raw.read_bytes()[:100])
    assert verify.main(["--lake-dir", str(lake), "--repair"]) == 1
    captured = capsys.readouterr()
    assert f"unreadable: {raw}: " in captured.out
    assert "nothing was rebuilt" in captured.err


def test_no_lake_is_a_usage_error(tmp_path, capsys):
    assert verify.main(["--lake-dir", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.strip() == (f"error: no lake at {tmp_path / 'none'}: run the scraper first, "
                                               "or set LAKE_DIR / --lake-dir")
