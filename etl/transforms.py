"""Pure refinement rules: DataFrames in, DataFrames out, no storage.

The refined tables (their columns: contract.tables) and the rules that make them:
- quotes_daily, one row per ticker and session: of raw's rows for a ticker and day the latest
  ingestion wins; the prices are renamed (`open` -> `open_price`, ... PRICE_RENAMES); then the
  date-based metrics over the ticker's sessions in date order: `daily_return` (close / previous
  session's close - 1), `ma_5` and `ma_20` (mean close of the last 5 / 20 sessions, null until
  there are that many) and `days_since_prev_session` (calendar days since the previous session).
- quotes_monthly, one row per ticker and calendar month, the numeric summary: sessions, first
  and last session, open (the first session's), high (max), low (min), close (the last
  session's), total volume, mean close and `monthly_return` (close / previous month's close - 1).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from contract.tables import QUOTES_DAILY, QUOTES_MONTHLY

# Raw's price names -> quotes_daily's.
PRICE_RENAMES = {
    "open": "open_price",
    "high": "high_price",
    "low": "low_price",
    "close": "close_price",
    "adj_close": "adj_close_price",
}
MOVING_AVERAGE_SESSIONS = (5, 20)

# The tables' columns, then their partition keys: the order the job writes them in.
DAILY_COLUMNS = [c.name for c in (*QUOTES_DAILY.columns, *QUOTES_DAILY.partition_keys)]
MONTHLY_COLUMNS = [c.name for c in (*QUOTES_MONTHLY.columns, *QUOTES_MONTHLY.partition_keys)]


def latest_ingestion_per_session(raw: DataFrame) -> DataFrame:
    """One row per (ticker, trade_date): the most recent ingestion wins."""
    newest_first = Window.partitionBy("ticker", "trade_date").orderBy(
        F.col("ingested_at").desc(), F.col("run_id").desc(), F.col("source").desc()
    )
    return (
        raw.withColumn("_rank", F.row_number().over(newest_first))
        .filter(F.col("_rank") == 1)
        .drop("_rank")
    )


def rename_price_columns(quotes: DataFrame) -> DataFrame:
    return quotes.withColumnsRenamed(PRICE_RENAMES)


def _moving_average(sessions: int) -> Column:
    """Mean close over the last `sessions` sessions, null until the ticker has that many."""
    window = Window.partitionBy("ticker").orderBy("trade_date").rowsBetween(-(sessions - 1), 0)
    return F.when(
        F.count("close_price").over(window) == sessions, F.avg("close_price").over(window)
    )


def add_session_metrics(daily: DataFrame) -> DataFrame:
    """The date-based metrics: return, moving averages and calendar days since the previous session."""
    by_session = Window.partitionBy("ticker").orderBy("trade_date")
    return daily.withColumns({
        "daily_return": F.col("close_price") / F.lag("close_price").over(by_session) - 1,
        **{f"ma_{sessions}": _moving_average(sessions) for sessions in MOVING_AVERAGE_SESSIONS},
        "days_since_prev_session": F.datediff(F.col("trade_date"), F.lag("trade_date").over(by_session)),
        "dt": F.date_format("trade_date", "yyyy-MM-dd"),
    })


def refine_daily(raw: DataFrame) -> DataFrame:
    """Raw quotes (any number of ingestions) to one refined row per ticker and session."""
    daily = rename_price_columns(latest_ingestion_per_session(raw))
    return add_session_metrics(daily).select(*DAILY_COLUMNS)


def summarize_monthly(daily: DataFrame) -> DataFrame:
    """The numeric summary: one row per ticker and calendar month."""
    month = F.date_format("trade_date", "yyyy-MM")
    monthly = daily.groupBy("ticker", month.alias("month")).agg(
        F.count("*").cast("int").alias("sessions"),
        F.min("trade_date").alias("first_session"),
        F.max("trade_date").alias("last_session"),
        F.min_by("open_price", "trade_date").alias("open_price"),
        F.max("high_price").alias("high_price"),
        F.min("low_price").alias("low_price"),
        F.max_by("close_price", "trade_date").alias("close_price"),
        F.sum("volume").alias("total_volume"),
        F.avg("close_price").alias("avg_close_price"),
    )
    by_month = Window.partitionBy("ticker").orderBy("month")
    return monthly.withColumn(
        "monthly_return", F.col("close_price") / F.lag("close_price").over(by_month) - 1
    ).select(*MONTHLY_COLUMNS)


def _dt_in(days: list[str]) -> Column:
    """`dt IN (days)` as one SQL expression: Column.isin makes a JVM call per value (0.2 s for 122 days,
    seconds for a backfill's thousands). Each day is an ISO date, checked, so it quotes safely."""
    quoted = ", ".join(f"'{dt.date.fromisoformat(day).isoformat()}'" for day in days)
    return F.expr(f"dt IN ({quoted})") if days else F.lit(False)


def select_changed(daily: DataFrame, monthly: DataFrame, changed_days: list[str]) -> tuple[DataFrame, DataFrame]:
    """The output rows a run that changed `changed_days` (of every ticker in `daily`) can change.

    A new or replaced session changes its own row and, through the lag and the windows, the
    next max(MOVING_AVERAGE_SESSIONS) - 1 rows of the same ticker (nothing later: ma_20 is the longest reach);
    it changes its month's summary and the return of the ticker's next month with sessions.
    """
    changed = _dt_in(changed_days).cast("int")
    reach = max(MOVING_AVERAGE_SESSIONS) - 1
    recent = Window.partitionBy("ticker").orderBy("trade_date").rowsBetween(-reach, 0)
    daily_out = daily.withColumn("_hit", F.max(changed).over(recent)).filter(F.col("_hit") == 1).drop("_hit")
    changed_months = (daily.filter(changed == 1).select("ticker", F.substring("dt", 1, 7).alias("month"))
                      .distinct().withColumn("_hit", F.lit(1)))
    by_month = Window.partitionBy("ticker").orderBy("month")
    flagged = monthly.join(changed_months, ["ticker", "month"], "left").fillna(0, ["_hit"])
    monthly_out = (flagged.withColumn("_prev_hit", F.lag("_hit", 1, 0).over(by_month))
                   .filter((F.col("_hit") == 1) | (F.col("_prev_hit") == 1)).select(*MONTHLY_COLUMNS))
    return daily_out, monthly_out
