"""The charts' queries (one SQL text for DuckDB, Athena and Spark SQL) and their rows as typed frames.

Athena returns every value as a string, DuckDB and Spark as Python objects: the `*_frame`
functions give one set of column types whichever engine answered.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import pandas as pd

# `close`, `ma_5`, `ma_20` and `volume` back-adjusted to the ticker's latest share basis
# (quotes_daily_adjusted); `close_price` as traded, what a month cut by --end compares with.
DAILY_COLUMNS = ["ticker", "dt", "close", "ma_5", "ma_20", "volume", "gap_before", "close_price"]
DAILY_NUMBERS = ["close", "ma_5", "ma_20", "volume", "close_price"]
MOVING_AVERAGE_SESSIONS = (5, 20)
MONTHLY_COLUMNS = ["ticker", "month", "monthly_return"]
# What a month cut by --end needs: its return is recomputed to the close of the range's last session.
MONTHLY_CUT_COLUMNS = ["close_price", "last_session"]
IBOV_COLUMNS = ["dt", "portfolio_dt", "constituents_quoted", "weight_pct_covered", "weighted_daily_return"]


def _iso_day(value: dt.date | str | None) -> str | None:
    """`2024-01-02` (validated), or None for an open end."""
    if value is None or value == "":
        return None
    return dt.date.fromisoformat(str(value)).isoformat()


def _ticker_list(tickers: Sequence[str]) -> str:
    if not tickers:
        raise ValueError("no ticker to chart")
    for ticker in tickers:
        # Only B3 codes reach the SQL text (this also keeps quotes out of it).
        if not re.fullmatch(r"[A-Z0-9]+", ticker):
            raise ValueError(f"invalid ticker {ticker!r}: expected a B3 code such as PETR4")
    return ", ".join(f"'{t}'" for t in tickers)


def _range_filter(column: str, start: str | None, end: str | None) -> str:
    """A filter on a partition column (strings sort as dates): Athena reads only those partitions."""
    parts = []
    if start is not None:
        parts.append(f"{column} >= '{start}'")
    if end is not None:
        parts.append(f"{column} <= '{end}'")
    return "".join(f"\n  AND {p}" for p in parts)


def _years(first: str | None, last: str | None, column: str = "year") -> str:
    """The compact tables' year partitions a range spans: Athena reads only those files."""
    return _range_filter(column, first and first[:4], last and last[:4])


def daily_sql(tickers: Sequence[str], start: dt.date | str | None = None, end: dt.date | str | None = None) -> str:
    """Per session of `tickers`, `start`..`end` inclusive: the close and volume back-adjusted for
    splits, reverse splits and bonus shares to the ticker's latest basis (quotes_daily_adjusted),
    the moving averages put in that basis by the same factor (adjusted close / traded close), and
    `gap_before`.

    A moving average whose window reaches across a gap (a `gap_before` on one of its sessions but
    the first) is null: it would average closes from both sides of sessions the lake lacks. Its
    window's sessions before `start` count, so the gaps are counted over the ticker's history.
    """
    first, last = _iso_day(start), _iso_day(end)
    names = _ticker_list(tickers)
    gaps = ",\n".join(
        f"           sum(CASE WHEN gap_before THEN 1 ELSE 0 END) OVER (PARTITION BY ticker ORDER BY trade_date "
        f"ROWS BETWEEN {n - 2} PRECEDING AND CURRENT ROW) AS gaps_{n}" for n in MOVING_AVERAGE_SESSIONS)
    averages = "".join(f"\n       CASE WHEN d.gaps_{n} = 0 THEN d.ma_{n} * (a.close / d.close_price) END AS ma_{n},"
                       for n in MOVING_AVERAGE_SESSIONS)
    # The window's earlier sessions are at most a year before `start`.
    before = first and f"{int(first[:4]) - 1:04d}"
    return (
        f"SELECT a.ticker, a.dt, a.close,{averages}\n       a.volume, d.gap_before, d.close_price\n"
        f"FROM quotes_daily_adjusted a\nJOIN (\n    SELECT ticker, dt, close_price, ma_5, ma_20, gap_before,\n{gaps}\n"
        f"    FROM quotes_daily_compact\n    WHERE ticker IN ({names}){_years(before, last)}\n"
        f") d ON d.ticker = a.ticker AND d.dt = a.dt\nWHERE a.ticker IN ({names}){_range_filter('a.dt', first, last)}\n"
        f"ORDER BY a.ticker, a.dt"
    )


def monthly_sql(tickers: Sequence[str], start: dt.date | str | None = None, end: dt.date | str | None = None) -> str:
    """Monthly return of `tickers` for every month the range touches."""
    first, last = _iso_day(start), _iso_day(end)
    return (
        f"SELECT {', '.join([*MONTHLY_COLUMNS, *MONTHLY_CUT_COLUMNS])}\nFROM quotes_monthly_compact\nWHERE ticker IN ({_ticker_list(tickers)})"
        f"{_years(first, last)}{_range_filter('month', first and first[:7], last and last[:7])}\nORDER BY ticker, month"
    )


def ibov_sql(start: dt.date | str | None = None, end: dt.date | str | None = None) -> str:
    """Per session: the mean daily return of the IBOV constituents quoted that day, weighted by
    the latest portfolio snapshot's weights (a stock has a return from its second session on)."""
    return f"""WITH latest_portfolio AS (
    SELECT ticker, weight_pct, dt AS portfolio_dt
    FROM ibov_portfolio
    WHERE dt = (SELECT max(dt) FROM ibov_portfolio)
)
SELECT q.dt,
       max(p.portfolio_dt) AS portfolio_dt,
       count(*) AS constituents_quoted,
       sum(p.weight_pct) AS weight_pct_covered,
       sum(p.weight_pct * q.daily_return) / sum(p.weight_pct) AS weighted_daily_return
FROM quotes_daily_compact q
JOIN latest_portfolio p ON q.ticker = p.ticker
WHERE q.daily_return IS NOT NULL{_years(_iso_day(start), _iso_day(end), 'q.year')}{_range_filter('q.dt', _iso_day(start), _iso_day(end))}
GROUP BY q.dt
ORDER BY q.dt"""


def ibov_table_sql(database: str | None = None) -> str:
    """Lists `ibov_portfolio` if the catalog has it (DuckDB's views exist once a file does)."""
    if database and not re.fullmatch(r"[A-Za-z0-9_]+", database):
        raise ValueError(f"invalid catalog database name {database!r}")
    in_database = f" AND table_schema = '{database}'" if database else ""
    return f"SELECT table_name FROM information_schema.tables WHERE table_name = 'ibov_portfolio'{in_database}"


def _numbers(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_numeric(frame[column], errors="raise")
    return frame.astype({column: "float64" for column in columns})


def _checked(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"query result lacks column(s) {', '.join(missing)}")
    return frame.loc[:, list(columns)].copy()


def daily_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The daily query's rows with a `date` column (datetime64) and float prices and volume."""
    frame = _numbers(_checked(rows, DAILY_COLUMNS), DAILY_NUMBERS)
    frame["ticker"] = frame["ticker"].astype(str)
    # Athena answers 'true'/'false', DuckDB and Spark booleans; unknown (null) is no gap, as in refine.
    frame["gap_before"] = frame["gap_before"].map(lambda v: str(v).lower() == "true").astype(bool)
    frame["date"] = pd.to_datetime(frame["dt"].astype(str), format="%Y-%m-%d")
    return frame.sort_values(["ticker", "date"], kind="stable").reset_index(drop=True)


def monthly_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The monthly query's rows with `month_start` and `month_end` (datetime64) for the bars."""
    cut = [c for c in MONTHLY_CUT_COLUMNS if c in rows.columns]
    frame = _numbers(_checked(rows, [*MONTHLY_COLUMNS, *cut]), ["monthly_return", *(["close_price"] if cut else [])])
    if "last_session" in frame:
        frame["last_session"] = pd.to_datetime(frame["last_session"].astype(str), format="%Y-%m-%d", errors="coerce")
    frame["ticker"] = frame["ticker"].astype(str)
    frame["month_start"] = pd.to_datetime(frame["month"].astype(str) + "-01", format="%Y-%m-%d")
    frame["month_end"] = frame["month_start"] + pd.offsets.MonthEnd(1)
    frame["cut_at"] = pd.NaT  # set by cut_months_at_end
    return frame.sort_values(["ticker", "month_start"], kind="stable").reset_index(drop=True)


def ibov_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The IBOV query's rows with a `date` column and float figures."""
    frame = _numbers(_checked(rows, IBOV_COLUMNS),
                     ["constituents_quoted", "weight_pct_covered", "weighted_daily_return"])
    frame["date"] = pd.to_datetime(frame["dt"].astype(str), format="%Y-%m-%d")
    frame["portfolio_dt"] = frame["portfolio_dt"].astype(str)
    return frame.sort_values("date", kind="stable").reset_index(drop=True)


def cut_months_at_end(monthly: pd.DataFrame, daily: pd.DataFrame, end: dt.date | str | None) -> pd.DataFrame:
    """Months that go on past `end`: their return from the previous month's close to the close of
    the last session up to `end`, their bar drawn to that session (`cut_at`).

    The previous month's close is the month's own close / (1 + its return), so no other month
    is read; a month with no session up to `end` is left out.
    """
    last = _iso_day(end)
    if last is None or monthly.empty or "last_session" not in monthly:
        return monthly
    end_ts = pd.Timestamp(last)
    frame = monthly.copy()
    keep = pd.Series(True, index=frame.index)
    for i, row in frame.loc[frame["last_session"] > end_ts].iterrows():
        days = daily.loc[(daily["ticker"] == row["ticker"]) & (daily["date"] >= row["month_start"])
                         & (daily["date"] <= end_ts)]
        if days.empty:
            keep[i] = False
            continue
        close = float(days["close_price"].iloc[-1])
        frame.loc[i, "monthly_return"] = (1 + row["monthly_return"]) * close / row["close_price"] - 1
        frame.loc[i, ["month_end", "cut_at"]] = days["date"].iloc[-1]
    return frame.loc[keep].reset_index(drop=True)
