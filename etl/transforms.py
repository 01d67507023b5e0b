"""Pure refinement rules: DataFrames in, DataFrames out, no storage.

The refined tables (their columns: b3_quotes.contract.tables) and the rules that make them:
- quotes_daily, one row per ticker and session: of raw's rows for a ticker and day the latest
  ingestion wins; the prices are renamed (`open` -> `open_price`, ... PRICE_RENAMES) and stay as
  traded; then the date-based metrics over the ticker's sessions in date order, each in one price
  basis so that a split, reverse split or bonus never reads as a move:
  - `share_ratio` and `cash_per_share`: the corporate events ex on this session or since the
    ticker's previous one (new shares per old, multiplied; R$ per share, added);
  - `daily_return`: close / (previous close / share_ratio) - 1; `total_return` adds today's cash
    to the close; both null when the B3 calendar has a session between the two (`gap_before`);
  - `ma_5`, `ma_20`: mean of the window's closes, each divided by the share_ratio of every later
    session of the window (the window's last session's basis), null until there are that many;
  - `days_since_prev_session` (calendar days since the previous session).
  Each depends only on the rows of its window, so an incremental run equals a full one and an
  event loaded later changes only the windows that hold its ex date.
- quotes_monthly, one row per ticker and calendar month, the numeric summary: sessions, first
  and last session, open (the first session's), high (max), low (min), close (the last
  session's), total volume, mean close, `monthly_return` (close / (previous month's close /
  the month's share_ratios) - 1) and `monthly_total_return` (the same with the month's cash
  reinvested on its ex dates).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from b3_quotes.contract.tables import QUOTES_DAILY, QUOTES_MONTHLY, Table

# Raw's price names -> quotes_daily's.
PRICE_RENAMES = {
    "open": "open_price",
    "high": "high_price",
    "low": "low_price",
    "close": "close_price",
    "adj_close": "adj_close_price",
}
MOVING_AVERAGE_SESSIONS = (5, 20)
# Sessions the longest window reaches back, and so the sessions a change reaches forward.
REACH = max(MOVING_AVERAGE_SESSIONS) - 1

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


def _moving_average(sessions: int, basis_changes: bool) -> Column:
    """Mean of the last `sessions` closes in the basis of the window's last session, null until
    the ticker has that many.

    With `basis_changes` the window's closes and share ratios are collected in session order and
    folded from the first on: the running total is put into each session's basis (divided by its
    share ratio) before its close is added. With no change the ratios are all 1 and the fold is,
    bit for bit, the plain mean, which costs a fifth: tickers without a split, reverse split or
    bonus in the rows read take that (`_by_basis_changes`). Only the window's rows enter either way.
    """
    window = Window.partitionBy("ticker").orderBy("trade_date").rowsBetween(-(sessions - 1), 0)
    full = F.count("close_price").over(window) == sessions
    if not basis_changes:
        return F.when(full, F.avg("close_price").over(window))
    closes, ratios = F.collect_list("close_price").over(window), F.collect_list("share_ratio").over(window)
    total = F.aggregate(F.sequence(F.lit(0), F.size(closes) - 1), F.lit(0.0),
                        lambda acc, i: acc / F.get(ratios, i) + F.get(closes, i))
    return F.when(full, total / sessions)


def _by_basis_changes(frame: DataFrame, compute: Callable[[DataFrame, bool], DataFrame]) -> DataFrame:
    """`compute(rows, basis_changes)` on the tickers whose rows hold a share event (True) and on
    the others (False), apart: the per-window arrays only where a basis changes."""
    flagged = frame.withColumn("_basis_changes", F.max((F.col("share_ratio") != 1).cast("int"))
                               .over(Window.partitionBy("ticker")) == 1)
    return (compute(flagged.filter(~F.col("_basis_changes")), False)
            .unionByName(compute(flagged.filter(F.col("_basis_changes")), True)).drop("_basis_changes"))


def events_per_session(daily: DataFrame, events: DataFrame) -> DataFrame:
    """Per ticker and session, the events ex on it or since the ticker's previous session.

    `daily` holds ticker, trade_date and prev_trade_date; `events` the corporate_events rows in
    effect (one per ticker, ex date and kind). An ex date that is no session of the ticker (it
    did not trade that day) counts on its next session: that is when its price first shows it.
    Returns ticker, trade_date, share_ratio (product), cash_per_share (sum), event_days (ISO).
    """
    d, e = daily.alias("d"), F.broadcast(events).alias("e")
    # On a ticker's first session only that day's events: nothing before it has a price to bend.
    since_previous = ((F.col("d.ticker") == F.col("e.ticker")) & (F.col("e.ex_date") <= F.col("d.trade_date"))
                      & F.coalesce(F.col("e.ex_date") > F.col("d.prev_trade_date"),
                                   F.col("e.ex_date") == F.col("d.trade_date")))
    return (d.join(e, since_previous).groupBy(F.col("d.ticker").alias("ticker"), F.col("d.trade_date").alias("trade_date"))
            .agg(_product(F.collect_list(F.col("e.share_ratio"))).alias("share_ratio"),
                 F.sum(F.col("e.cash_per_share")).alias("cash_per_share"),
                 F.collect_set(F.date_format("e.ex_date", "yyyy-MM-dd")).alias("event_days")))


def add_session_metrics(daily: DataFrame, events: DataFrame | None = None) -> DataFrame:
    """The date-based metrics: returns, moving averages, days since the previous session, gaps.

    `events`: corporate_events rows in effect (None: no event); `daily` may carry
    `prev_b3_session` (the calendar's session before each day) to tell a gap from a next session.
    """
    by_session = Window.partitionBy("ticker").orderBy("trade_date")
    daily = daily.withColumn("prev_trade_date", F.lag("trade_date").over(by_session))
    if events is not None:
        per_session = events_per_session(daily.select("ticker", "trade_date", "prev_trade_date"), events)
        daily = daily.join(per_session, ["ticker", "trade_date"], "left")
    else:
        daily = daily.withColumn("event_days", F.lit(None).cast("array<string>"))
    if "prev_b3_session" not in daily.columns:
        daily = daily.withColumn("prev_b3_session", F.lit(None).cast("date"))
    daily = daily.withColumns({
        "share_ratio": F.coalesce(F.col("share_ratio") if events is not None else F.lit(None), F.lit(1.0)),
        "cash_per_share": F.coalesce(F.col("cash_per_share") if events is not None else F.lit(None), F.lit(0.0)),
        # A session of the calendar lies between the previous one in the lake and this one.
        "gap_before": F.when(F.col("prev_trade_date").isNotNull() & F.col("prev_b3_session").isNotNull(),
                             F.col("prev_trade_date") < F.col("prev_b3_session")),
    })
    previous_in_basis = F.lag("close_price").over(by_session) / F.col("share_ratio")
    no_gap = F.coalesce(~F.col("gap_before"), F.lit(True))
    daily = daily.withColumns({
        "daily_return": F.when(no_gap, F.col("close_price") / previous_in_basis - 1),
        "total_return": F.when(no_gap, (F.col("close_price") + F.col("cash_per_share")) / previous_in_basis - 1),
        "days_since_prev_session": F.datediff(F.col("trade_date"), F.col("prev_trade_date")),
        "dt": F.date_format("trade_date", "yyyy-MM-dd"),
    })
    return _by_basis_changes(daily, lambda rows, changes: rows.withColumns(
        {f"ma_{sessions}": _moving_average(sessions, changes) for sessions in MOVING_AVERAGE_SESSIONS}))


def refine_daily_with_events(raw: DataFrame, events: DataFrame | None) -> DataFrame:
    """Raw quotes (any number of ingestions) to one refined row per ticker and session, plus
    `event_days` (the ex dates each row applies: what a late event's run rewrites)."""
    daily = rename_price_columns(latest_ingestion_per_session(raw))
    return add_session_metrics(daily, events).select(*DAILY_COLUMNS, "event_days")


def refine_daily(raw: DataFrame, events: DataFrame | None = None) -> DataFrame:
    """Raw quotes (any number of ingestions) to one refined row per ticker and session."""
    return refine_daily_with_events(raw, events).select(*DAILY_COLUMNS)


def events_in_effect(events: DataFrame) -> DataFrame:
    """One corporate event per ticker, ex date and kind: the latest load wins, as in raw quotes
    (two sources listing the same split must not apply it twice)."""
    newest_first = Window.partitionBy("ticker", "ex_date", "kind").orderBy(
        F.col("ingested_at").desc(), F.col("run_id").desc(), F.col("source").desc())
    return (events.withColumn("_rank", F.row_number().over(newest_first)).filter(F.col("_rank") == 1)
            .select("ticker", "ex_date", "kind", "share_ratio", "cash_per_share"))


def _product(values: Column) -> Column:
    """The product of an array column, its values sorted first: the same whatever order they came in."""
    return F.aggregate(F.array_sort(values), F.lit(1.0), lambda acc, x: acc * x)


def summarize_monthly(daily: DataFrame) -> DataFrame:
    """The numeric summary: one row per ticker and calendar month, its prices in the basis of the
    month's last session (a price before an event of the month divided by that event's ratio)."""
    month = F.date_format("trade_date", "yyyy-MM")
    rest_of_month = (Window.partitionBy("ticker", month).orderBy("trade_date")
                     .rowsBetween(1, Window.unboundedFollowing))
    # Each session's divisor into the month's last basis: the product of the later ratios, 1
    # (no array per row) for tickers without a share event in the rows read.
    daily = _by_basis_changes(daily, lambda rows, changes: rows.withColumn(
        "_later", _product(F.collect_list("share_ratio").over(rest_of_month)) if changes else F.lit(1.0)))
    monthly = daily.groupBy("ticker", month.alias("month")).agg(
        F.count("*").cast("int").alias("sessions"),
        F.min("trade_date").alias("first_session"),
        F.max("trade_date").alias("last_session"),
        F.min_by(F.col("open_price") / F.col("_later"), "trade_date").alias("open_price"),
        F.max(F.col("high_price") / F.col("_later")).alias("high_price"),
        F.min(F.col("low_price") / F.col("_later")).alias("low_price"),
        F.max_by("close_price", "trade_date").alias("close_price"),
        F.sum("volume").alias("total_volume"),
        F.avg(F.col("close_price") / F.col("_later")).alias("avg_close_price"),
        # The month's basis changes and cash reinvested, as products: see monthly_return below.
        _product(F.collect_list("share_ratio")).alias("_ratio"),
        _product(F.collect_list(F.lit(1.0) + F.col("cash_per_share") / F.col("close_price"))).alias("_reinvested"),
    )
    by_month = Window.partitionBy("ticker").orderBy("month")
    monthly_return = F.col("close_price") / (F.lag("close_price").over(by_month) / F.col("_ratio")) - 1
    return monthly.withColumn("monthly_return", monthly_return).withColumn(
        "monthly_total_return", (F.col("monthly_return") + 1) * F.col("_reinvested") - 1
    ).select(*MONTHLY_COLUMNS)


def _dt_in(days: list[str]) -> Column:
    """`dt IN (days)` as one SQL expression: Column.isin makes a JVM call per value (a backfill has
    thousands). Each day is an ISO date, checked, so it quotes safely."""
    quoted = ", ".join(f"'{dt.date.fromisoformat(day).isoformat()}'" for day in days)
    return F.expr(f"dt IN ({quoted})") if days else F.lit(False)


def _changed_flag(daily: DataFrame, changed_days: list[str], event_days: Sequence[str]) -> Column:
    """1 on a daily row a run that changed `changed_days` changes itself, else 0 (see select_changed)."""
    changed = _dt_in(changed_days)
    if event_days and "event_days" in daily.columns:
        days = F.array(*[F.lit(dt.date.fromisoformat(d).isoformat()) for d in sorted(set(event_days))])
        changed = changed | F.coalesce(F.arrays_overlap(F.col("event_days"), days), F.lit(False))
    return changed.cast("int")


def _daily_reached(rows: DataFrame, daily: DataFrame, changed: Column) -> DataFrame:
    """A changed session's own row and, through the lag and the windows, the next REACH rows of the
    same ticker (nothing later: ma_20 is the longest reach)."""
    recent = Window.partitionBy("ticker").orderBy("trade_date").rowsBetween(-REACH, 0)
    return rows.withColumn("_hit", F.max(changed).over(recent)).filter(F.col("_hit") == 1).select(*DAILY_COLUMNS)


def _monthly_reached(rows: DataFrame, daily: DataFrame, changed: Column) -> DataFrame:
    """A changed session's month and the ticker's next month with sessions (its return)."""
    changed_months = (daily.filter(changed == 1).select("ticker", F.substring("dt", 1, 7).alias("month"))
                      .distinct().withColumn("_hit", F.lit(1)))
    by_month = Window.partitionBy("ticker").orderBy("month")
    flagged = rows.join(changed_months, ["ticker", "month"], "left").fillna(0, ["_hit"])
    return (flagged.withColumn("_prev_hit", F.lag("_hit", 1, 0).over(by_month))
            .filter((F.col("_hit") == 1) | (F.col("_prev_hit") == 1)).select(*MONTHLY_COLUMNS))


@dataclass(frozen=True)
class Refinement:
    """A refined table (b3_quotes.contract.tables, with its compact companion) and its rule: `build` makes its
    rows from the corrected daily rows (refine_daily_with_events), `reached` keeps those a change
    can move, given the daily rows and their changed flag. A new refined table is one of these."""

    table: Table
    build: Callable[[DataFrame], DataFrame]
    reached: Callable[[DataFrame, DataFrame, Column], DataFrame]


# In build order; refine, verify and the tests' reference go through this list.
REFINEMENTS: tuple[Refinement, ...] = (
    Refinement(QUOTES_DAILY, lambda daily: daily, _daily_reached),
    Refinement(QUOTES_MONTHLY, summarize_monthly, _monthly_reached),
)


def build_tables(daily: DataFrame) -> dict[str, DataFrame]:
    """Every refined table's rows (by table name) from the corrected daily rows."""
    return {r.table.name: r.build(daily) for r in REFINEMENTS}


def select_changed(built: dict[str, DataFrame], changed_days: list[str],
                   event_days: Sequence[str] = ()) -> dict[str, DataFrame]:
    """Of each refined table's rows (`built`, by name), those a run that changed `changed_days` (of
    every ticker in the daily rows) can change: REFINEMENTS' `reached` of each.

    An event loaded on `event_days` (ex dates) changes the session it applies to (the daily rows'
    `event_days` column, when present): the same reach from there.
    """
    daily = built[QUOTES_DAILY.name]
    changed = _changed_flag(daily, changed_days, event_days)
    return {r.table.name: r.reached(built[r.table.name], daily, changed) for r in REFINEMENTS}
