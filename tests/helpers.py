"""What several test modules share that is not a fixture: the scraper run, the refined tables, a pandas reference."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import shutil
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from b3_quotes.contract.tables import REFINED_TABLES
from tests.conftest import SAMPLE_DIR

# The range the session's full lake covers (tests/conftest.py `full_lake`) and the day that splits
# it in two runs; two tickers of the bundled sample.
START, SPLIT, END = "2019-10-01", "2020-01-15", "2020-03-31"
TICKERS = ("PETR4", "VALE3")
# Each refined table's key (ticker, period), from the contract: what two lakes are compared on.
KEYS = {table.name: table.compact_key for table in REFINED_TABLES}


def run_scraper(lake: Path, *args: str) -> int:
    """The scraper's command line in this process, on a local lake; its exit code."""
    from scraper import scraper_upload

    return scraper_upload.main(["--lake-dir", str(lake), *args])


def csv_run(lake: Path, start: str = START, end: str = END, tickers: Sequence[str] = TICKERS,
            csv_dir: Path = SAMPLE_DIR) -> int:
    """A scrape of Yahoo-format CSV files (the bundled sample by default), refined locally."""
    return run_scraper(lake, "--source", "csv", "--csv-dir", str(csv_dir), "--tickers", ",".join(tickers),
                       "--start", start, "--end", end)


def copy_lake(lake: Path, tmp_path: Path) -> Path:
    """A copy of a session's lake for one test to change (file times kept)."""
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    return copy


def read_table(lake: Path, folder: str) -> pd.DataFrame:
    """A refined table's rows, partition columns as strings, read with DuckDB (not the job's reader)."""
    with duckdb.connect() as con:
        return con.execute(
            f"SELECT * FROM read_parquet('{lake}/refined/{folder}/*/*/*.parquet', hive_partitioning=true, "
            "hive_types_autocast=false)"
        ).df()


def sorted_table(lake: Path, name: str) -> pd.DataFrame:
    """A refined table without the scrape time, in key order: what two lakes must agree on."""
    frame = read_table(lake, name).drop(columns=["ingested_at"], errors="ignore")
    return frame.sort_values(KEYS[name]).reset_index(drop=True)


def compact_table(lake: Path, name: str) -> pd.DataFrame:
    """The yearly compact companion of a refined table, without its year and the scrape time."""
    with duckdb.connect() as con:
        frame = con.execute(f"SELECT * EXCLUDE (year) FROM read_parquet('{lake}/refined/{name}_compact/*/*.parquet', "
                            "hive_partitioning = true)").df()
    return frame.drop(columns=["ingested_at"], errors="ignore").sort_values(KEYS[name]).reset_index(drop=True)


def assert_same_tables(lake: Path, reference: Path) -> None:
    """Both refined tables and their compact companions hold exactly the reference's rows."""
    for name in KEYS:
        expected = sorted_table(reference, name)
        pd.testing.assert_frame_equal(sorted_table(lake, name), expected, check_exact=False, rtol=1e-12)
        pd.testing.assert_frame_equal(compact_table(lake, name)[expected.columns], expected, check_exact=False,
                                      rtol=1e-12, check_dtype=False)


REFINED_PERIODS = {"quotes_daily": "dt", "quotes_monthly": "month"}


def refined_row_digests(lake: Path) -> dict[tuple[str, str, str], str]:
    """(table, ticker, session or month) -> a digest of all the row's values, for every row of the
    four refined tables (partitioned and compact), read with DuckDB: what "no value changed" compares."""
    digests = {}
    for name, period in REFINED_PERIODS.items():
        for table, frame in ((name, read_table(lake, name)), (f"{name}_compact", _compact_rows(lake, name))):
            for record in frame.to_dict("records"):
                values = sorted((k, repr(v)) for k, v in record.items() if k != "year")
                digests[(table, record["ticker"], str(record[period]))] = hashlib.sha256(repr(values).encode()).hexdigest()
    return digests


def _compact_rows(lake: Path, name: str) -> pd.DataFrame:
    with duckdb.connect() as con:
        return con.execute(f"SELECT * FROM read_parquet('{lake}/refined/{name}_compact/*/*.parquet', "
                           "hive_partitioning = true, hive_types_autocast = false)").df()


def expected_daily(start: str, end: str, tickers: Sequence[str] = TICKERS, csv_dir: Path = SAMPLE_DIR) -> pd.DataFrame:
    """The refined daily definitions computed straight from the CSV files with pandas, by ticker and day."""
    frames = []
    for ticker in tickers:
        csv = pd.read_csv(csv_dir / f"{ticker}.SA.csv", na_values=["null"], parse_dates=["Date"])
        csv = csv[(csv["Date"] >= start) & (csv["Date"] <= end)].dropna(subset=["Open", "High", "Low", "Close"])
        csv = csv.sort_values("Date")
        out = pd.DataFrame({
            "ticker": ticker,
            "dt": csv["Date"].dt.strftime("%Y-%m-%d"),
            "close_price": csv["Close"],
            "volume": csv["Volume"].astype("int64"),
        })
        # A session the calendar has and the file lacks (Yahoo skips Ash Wednesdays) is a gap: no return.
        previous_session = csv["Date"].map(lambda d: bvmf().previous_session(d))
        follows = (csv["Date"].shift(1) == previous_session).to_numpy()
        out["daily_return"] = (csv["Close"] / csv["Close"].shift(1) - 1).where(follows | csv["Date"].shift(1).isna())
        out["ma_5"] = csv["Close"].rolling(5, min_periods=5).mean()
        out["ma_20"] = csv["Close"].rolling(20, min_periods=20).mean()
        out["days_since_prev_session"] = csv["Date"].diff().dt.days
        frames.append(out)
    return pd.concat(frames, ignore_index=True).sort_values(["ticker", "dt"]).reset_index(drop=True)


def bvmf():
    """B3's calendar, straight from exchange_calendars (not the scraper's wrapper)."""
    import exchange_calendars

    return exchange_calendars.get_calendar("BVMF", start="2000-01-03")


def expected_monthly(daily: pd.DataFrame) -> pd.DataFrame:
    """The refined monthly definitions from `expected_daily`'s rows, with pandas."""
    daily = daily.assign(month=daily["dt"].str[:7]).sort_values(["ticker", "dt"])
    grouped = daily.groupby(["ticker", "month"])
    monthly = pd.DataFrame({
        "sessions": grouped.size(),
        "close_price": grouped["close_price"].last(),
        "total_volume": grouped["volume"].sum(),
        "avg_close_price": grouped["close_price"].mean(),
    }).reset_index()
    monthly["monthly_return"] = monthly.groupby("ticker")["close_price"].transform(lambda s: s / s.shift(1) - 1)
    return monthly.sort_values(["ticker", "month"]).reset_index(drop=True)


def assert_close(actual: pd.Series, expected: pd.Series) -> None:
    np.testing.assert_allclose(actual.astype("float64").to_numpy(), expected.astype("float64").to_numpy(),
                               rtol=1e-12, equal_nan=True)


DAILY_NUMBERS = ("close_price", "daily_return", "ma_5", "ma_20", "days_since_prev_session", "volume")
MONTHLY_NUMBERS = ("sessions", "close_price", "total_volume", "avg_close_price", "monthly_return")


def assert_equals_reference(lake: Path, expected: pd.DataFrame) -> None:
    """Both refined tables and their compact companions hold exactly `expected_daily`'s rows and the
    months `expected_monthly` makes of them."""
    expected = expected.sort_values(KEYS["quotes_daily"]).reset_index(drop=True)
    months = expected_monthly(expected)
    for name, reference, numbers in (("quotes_daily", expected, DAILY_NUMBERS), ("quotes_monthly", months, MONTHLY_NUMBERS)):
        keys = KEYS[name]
        for actual in (sorted_table(lake, name), compact_table(lake, name)):
            assert list(zip(*(actual[k] for k in keys))) == list(zip(*(reference[k] for k in keys))), name
            for column in numbers:
                assert_close(actual[column], reference[column])


# When raw_file says its rows were fetched.
T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)


def raw_file(day: str, closes: dict[str, float]) -> bytes:
    """One raw day file as the writer lays it out."""
    n = len(closes)
    columns = {
        "trade_date": pa.array([dt.date.fromisoformat(day)] * n, pa.date32()),
        "ticker": pa.array(list(closes)),
        "open": pa.array([c - 0.5 for c in closes.values()]),
        "high": pa.array([c + 1 for c in closes.values()]),
        "low": pa.array([c - 1 for c in closes.values()]),
        "close": pa.array(list(closes.values())),
        "adj_close": pa.array([c * 0.9 for c in closes.values()]),
        "volume": pa.array([100] * n, pa.int64()),
        "source": pa.array(["csv"] * n),
        "ingested_at": pa.array([T0] * n, pa.timestamp("us", tz="UTC")),
        "run_id": pa.array(["r0"] * n),
    }
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def put_local(root: Path, key: str, data: bytes) -> None:
    """`data` at `key` of a local lake folder."""
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def run_local(lake_dir: Path, sql: str) -> tuple[list[str], list[tuple]]:
    """SQL on the DuckDB views of the lake in `lake_dir`, through the runtime the query command builds."""
    from b3_quotes.config.settings import Settings
    from b3_quotes.runtime import build_runtime

    return build_runtime(Settings(lake_dir=lake_dir)).query(sql)
