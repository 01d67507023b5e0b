"""Row checks before anything is written: every row with an issue is recorded, kept or rejected, with its reason."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from typing import cast

import numpy as np
import pandas as pd

from b3_quotes.contract.tables import QUOTE_NUMBERS
from scraper.calendar_b3 import SessionRules
from scraper.errors import SourceDataError

NUMBERS = list(QUOTE_NUMBERS)  # a quote's numbers, with raw's names (what every source returns)
PRICES = [c for c in NUMBERS if c not in ("adj_close", "volume")]  # the bar: open, high, low, close
# Above these no B3 quote has ever been (prices per share, after COTAHIST's quote factor;
# the bundled files top out at R$ 79,500 and 1.8e10 shares): a bigger value is corrupt data.
MAX_PRICE_BRL = 1e9
MAX_VOLUME_SHARES = 1e15
INT64_MAX = float(np.iinfo(np.int64).max)
# Prices compared with each other are floats: a download's 15-16 digit values (PETR4's
# adjusted history) sit one rounding step (~1e-16 relative) off their own high or low. A
# relative gap up to this is the same price.
PRICE_REL_TOL = 1e-9

REASON_DUPLICATE = "duplicate_session"
REASON_MISSING = "missing_price"
REASON_NON_FINITE = "non_finite_value"
REASON_NON_POSITIVE = "non_positive_price"
REASON_ABSURD = "absurd_magnitude"
REASON_HIGH_BELOW_LOW = "high_below_low"
REASON_OUTSIDE_RANGE = "open_close_outside_range"
REASON_NEGATIVE_VOLUME = "negative_volume"
REASON_FUTURE = "future_date"
REASON_OUTSIDE_CALENDAR = "outside_calendar"
REASON_NOT_A_SESSION = "not_a_b3_session"
REASON_TRUNCATED = "truncated_line"  # set by the CSV reader
REASON_UNEXPLAINED_DISTRIBUTION = "distribution_without_event"  # COTAHIST's DISMES moved, no event known

ACTION_KEPT = "kept"  # loaded as it came, and recorded
ACTION_REJECTED = "rejected"  # not loaded

ISSUE_COLUMNS = ["ticker", "trade_date", *NUMBERS, "reason", "action", "detail"]


class UnstorableValue(SourceDataError):
    """A value the lake's column types cannot hold (volume beyond int64)."""


def empty_issues() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in NUMBERS else "object") for c in ISSUE_COLUMNS})


def _fmt(value: float) -> str:
    return "missing" if np.isnan(value) else f"{value:.10g}"


def _values(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: pd.Series(rows[c], dtype="float64").to_numpy() for c in NUMBERS}


def _list(values: dict[str, np.ndarray], columns: list[str], bad: Callable[[float], bool], n: int) -> list[str]:
    return [", ".join(f"{c} {_fmt(values[c][i])}" for c in columns if bad(values[c][i])) for i in range(n)]


def _outside_range(v: dict[str, np.ndarray], i: int) -> str:
    low, high, parts = v["low"][i], v["high"][i], []
    for c in ("open", "close"):
        x = v[c][i]
        if x < low:
            parts.append(f"{c} {_fmt(x)} is {low - x:.4g} below low {_fmt(low)}")
        elif x > high:
            parts.append(f"{c} {_fmt(x)} is {x - high:.4g} above high {_fmt(high)}")
    return "; ".join(parts) + ": kept as the source gave it"


def describe(rows: pd.DataFrame, reason: str, rules: SessionRules | None = None) -> list[str]:
    """One readable line per row on what is wrong with it, with the numbers that differ."""
    n, v = len(rows), _values(rows)
    days = [str(d) for d in rows["trade_date"]]
    if reason == REASON_MISSING:
        return ["no " + ", ".join(c for c in PRICES if np.isnan(v[c][i])) for i in range(n)]
    if reason == REASON_NON_FINITE:
        return _list(v, NUMBERS, np.isinf, n)
    if reason == REASON_NON_POSITIVE:
        return _list(v, PRICES, lambda x: x <= 0, n)
    if reason == REASON_ABSURD:
        limits = f" (limits: price {MAX_PRICE_BRL:g}, volume {MAX_VOLUME_SHARES:g})"
        prices = _list(v, PRICES, lambda x: abs(x) > MAX_PRICE_BRL, n)
        volume = _list(v, ["volume"], lambda x: abs(x) > MAX_VOLUME_SHARES, n)
        return [", ".join(p for p in pair if p) + limits for pair in zip(prices, volume)]
    if reason == REASON_HIGH_BELOW_LOW:
        return [f"high {_fmt(h)} is {lo - h:.4g} below low {_fmt(lo)}" for h, lo in zip(v["high"], v["low"])]
    if reason == REASON_OUTSIDE_RANGE:
        return [_outside_range(v, i) for i in range(n)]
    if reason == REASON_NEGATIVE_VOLUME:
        return [f"volume {_fmt(x)}" for x in v["volume"]]
    if reason == REASON_FUTURE and rules is not None:
        return [f"{d} is after {rules.latest_closed}, the last closed B3 session (São Paulo time)" for d in days]
    if reason == REASON_OUTSIDE_CALENDAR and rules is not None:
        return [f"{d} is outside the B3 calendar ({rules.first} .. {rules.last}, exchange_calendars' BVMF): "
                "it cannot be checked as a session" for d in days]
    if reason == REASON_NOT_A_SESSION:
        return [f"{d} is not a B3 trading session" for d in days]
    if reason == REASON_DUPLICATE:
        return ["same instrument and day again in this download: the last one is kept"] * n
    return [""] * n


def _issues(frame: pd.DataFrame, bad: pd.Series, reason: str, action: str,
            rules: SessionRules | None) -> pd.DataFrame:
    rows = frame.loc[bad].copy()
    rows["reason"] = reason
    rows["action"] = action
    rows["detail"] = describe(rows, reason, rules)
    return rows


def duplicate_key(frame: pd.DataFrame) -> list[str]:
    """(ticker, day), plus the instrument when a source keeps several per code (B3, all instruments)."""
    return ["ticker", "trade_date", *(["instrument"] if "instrument" in frame else [])]


def as_days(values: pd.Series) -> np.ndarray:
    """datetime.date cells as datetime64[D] (any year: pandas' nanoseconds stop at 2262)."""
    return np.array([np.datetime64("NaT") if d is None or pd.isna(d) else d for d in values],
                    dtype="datetime64[D]")


def _day_checks(frame: pd.DataFrame, rules: SessionRules) -> list[tuple[str, np.ndarray]]:
    days = as_days(pd.Series(frame["trade_date"]))
    future = days > np.datetime64(rules.latest_closed, "D")
    outside = (days < np.datetime64(rules.first, "D")) | (days > np.datetime64(rules.last, "D"))
    return [(REASON_FUTURE, future), (REASON_OUTSIDE_CALENDAR, outside),
            (REASON_NOT_A_SESSION, ~rules.is_session(days))]


def validate_quotes(quotes: pd.DataFrame, rules: SessionRules | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split quotes into the rows to load and the data-quality issues (reason, action, detail).

    Rejected (not loaded), under a row's first failing check: a number that is not finite, a
    missing, zero or negative close (any price <= 0), an absurd magnitude, high below low
    beyond rounding, a negative volume, a date after the last closed session or outside the
    calendar, a day that is not a B3 session (Yahoo repeats the previous close with zero
    volume on some holidays), and all but the last of a repeated instrument and day.
    Kept as they came, and recorded: an open or close outside [low, high] beyond rounding
    (Yahoo's own bars do that), a missing open, high or low next to a usable close.
    Every check is on whole columns: a million rows take seconds.
    """
    frame = quotes.reset_index(drop=True)
    numbers = pd.DataFrame(frame[NUMBERS], dtype="float64")
    prices = pd.DataFrame(numbers[PRICES])
    volume = pd.Series(numbers["volume"])
    low, high = prices["low"], prices["high"]
    tol = PRICE_REL_TOL * prices.abs().max(axis=1)
    checks: list[tuple[str, object]] = [
        (REASON_NON_FINITE, np.isinf(numbers).any(axis=1)),
        (REASON_MISSING, prices["close"].isna()),
        (REASON_NON_POSITIVE, (prices <= 0).any(axis=1)),
        (REASON_ABSURD, (prices > MAX_PRICE_BRL).any(axis=1) | (volume.abs() > MAX_VOLUME_SHARES)),
        (REASON_HIGH_BELOW_LOW, high < low - tol),
        (REASON_NEGATIVE_VOLUME, volume < 0),
        *(_day_checks(frame, rules) if rules is not None else []),
    ]
    keep = pd.Series(True, index=frame.index)
    issues = []
    for reason, bad in checks:
        bad = pd.Series(np.asarray(bad), index=frame.index) & keep  # each row once, under its first failing check
        if bad.any():
            issues.append(_issues(frame, bad, reason, ACTION_REJECTED, rules))
        keep &= ~bad
    dup = frame.loc[keep].duplicated(subset=duplicate_key(frame), keep="last").reindex(frame.index, fill_value=False)
    if dup.any():
        issues.append(_issues(frame, dup, REASON_DUPLICATE, ACTION_REJECTED, rules))
    keep &= ~dup
    open_close = pd.DataFrame(prices[["open", "close"]])
    kept_checks = [
        (REASON_MISSING, prices[["open", "high", "low"]].isna().any(axis=1)),
        (REASON_OUTSIDE_RANGE, (open_close.lt(low - tol, axis=0) | open_close.gt(high + tol, axis=0)).any(axis=1)),
    ]
    flagged = ~keep
    for reason, bad in kept_checks:
        bad = pd.Series(bad, index=frame.index) & ~flagged
        if bad.any():
            issues.append(_issues(frame, bad, reason, ACTION_KEPT, rules))
        flagged |= bad
    rows = pd.concat(issues, ignore_index=True) if issues else empty_issues()
    extra = [c for c in rows.columns if c not in ISSUE_COLUMNS]
    return frame.loc[keep].reset_index(drop=True), rows.reindex(columns=[*ISSUE_COLUMNS, *extra])


def count_reasons(issues: pd.DataFrame, action: str = ACTION_REJECTED) -> Counter[str]:
    """Issues by reason, of one action (rows without an action were set aside by their source: rejected)."""
    chosen = issues.loc[issues["action"].fillna(ACTION_REJECTED) == action]
    return Counter({str(k): int(v) for k, v in chosen["reason"].value_counts().items()})


def check_storable(quotes: pd.DataFrame, where: Callable[[pd.Series], str]) -> None:
    """Raise UnstorableValue for a finite volume beyond int64, the raw column's type."""
    volume = pd.Series(quotes["volume"], dtype="float64")
    bad = np.isfinite(volume) & (volume.abs() >= INT64_MAX)
    if bad.any():
        row = quotes.loc[bad].iloc[0]
        raise UnstorableValue(f"{where(row)}: volume {row['volume']:g} cannot be stored "
                              f"(the volume column is a 64-bit integer, at most {INT64_MAX:.4g})")


def previous_sessions(days: pd.Series, rules: SessionRules) -> list[dt.date | None]:
    """Per day, the B3 session before it in the calendar (None for a day that is no session of
    it, or its first): what refine compares with the lake's previous session to see a gap."""
    values = as_days(days)
    at = np.searchsorted(rules.sessions, values)
    inside = (at < len(rules.sessions)) & (at > 0)
    found = inside & (rules.sessions[np.minimum(at, len(rules.sessions) - 1)] == values)
    return [cast(dt.date, rules.sessions[i - 1].astype(object)) if ok else None for i, ok in zip(at, found)]


def unexplained_distributions(quotes: pd.DataFrame, events: pd.DataFrame | None,
                              earlier: pd.DataFrame | None = None) -> pd.DataFrame:
    """COTAHIST rows whose DISMES went up since the ticker's previous row in this run with no
    corporate event of that ticker ex in between: kept, and reported in quote_issues.

    B3 adds one to the distribution number on each event's ex date, so such a row is an event
    we do not know of: its return and averages are bent until the event is loaded. `earlier`:
    each instrument's last row of the files read before these (last_rows), compared with but
    never reported.
    """
    if "dismes" not in quotes or quotes.empty:
        return empty_issues()
    if earlier is not None and not earlier.empty:
        both = pd.concat([earlier.assign(_earlier=True), quotes.assign(_earlier=False)], ignore_index=True)
        found = unexplained_distributions(both, events)
        return found.loc[~found["_earlier"].astype(bool)].drop(columns="_earlier")
    key = [c for c in duplicate_key(quotes) if c != "trade_date"]  # ticker, and the instrument when there is one
    ordered = quotes.sort_values([*key, "trade_date"], kind="stable")
    previous = ordered.groupby(key, sort=False)[["dismes", "trade_date"]].shift(1)
    moved = previous["dismes"].notna() & (ordered["dismes"] != previous["dismes"])
    known = set() if events is None or events.empty else set(zip(events["ticker"], events["ex_date"]))
    explained = [any((t, day) in known for day in _days_between(p, d)) if m else True
                 for t, p, d, m in zip(ordered["ticker"], previous["trade_date"], ordered["trade_date"], moved)]
    rows = ordered.loc[moved & ~pd.Series(explained, index=ordered.index)].copy()
    rows["reason"] = REASON_UNEXPLAINED_DISTRIBUTION
    rows["action"] = ACTION_KEPT
    rows["detail"] = [f"B3's distribution number went from {int(p)} to {int(n)} since {d}: a corporate event "
                      "(split, bonus, dividend) is ex here but none is loaded; returns and averages read it as "
                      "a price move until it is (--events-file or --b3-events-file)"
                      for p, n, d in zip(previous.loc[rows.index, "dismes"], rows["dismes"],
                                         previous.loc[rows.index, "trade_date"])]
    return rows.reindex(columns=[*ISSUE_COLUMNS, *[c for c in rows.columns if c not in ISSUE_COLUMNS]])


def last_rows(quotes: pd.DataFrame, earlier: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each instrument's last row among `earlier` and `quotes`: what the next file's distribution check
    compares with (one row an instrument, whatever the years read)."""
    frames = [f for f in (earlier, quotes) if f is not None and not f.empty]
    if not frames or "dismes" not in frames[-1]:
        return pd.DataFrame()
    both = pd.concat(frames, ignore_index=True)
    key = [c for c in duplicate_key(both) if c != "trade_date"]
    return both.sort_values([*key, "trade_date"], kind="stable").groupby(key, sort=False).tail(1).reset_index(drop=True)


def _days_between(after: object, upto: dt.date) -> list[dt.date]:
    """The days in (after, upto]."""
    start = after if isinstance(after, dt.date) else upto - dt.timedelta(days=1)
    return [start + dt.timedelta(days=n) for n in range(1, (upto - start).days + 1)]
