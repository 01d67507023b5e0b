"""Row checks before anything is written: every dropped row is counted by reason."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable

import pandas as pd

PRICES = ["Open", "High", "Low", "Close"]

REASON_DUPLICATE = "duplicate_session"
REASON_MISSING = "missing_price"
REASON_NON_POSITIVE = "non_positive_price"
REASON_HIGH_BELOW_LOW = "high_below_low"
REASON_NOT_A_SESSION = "not_a_b3_session"


def validate_quotes(
    quotes: pd.DataFrame, is_session: Callable[[dt.date], bool] | None = None
) -> tuple[pd.DataFrame, Counter[str]]:
    """Return the valid rows and a count of rejected rows per reason.

    A row is rejected when an OHLC price is missing, zero or negative, when High < Low,
    when the same (ticker, day) appears twice (the last one is kept), or when the day is
    not a B3 session (Yahoo repeats the previous close with zero volume on some holidays).
    """
    rejected: Counter[str] = Counter()
    frame = quotes.reset_index(drop=True)

    dup = frame.duplicated(subset=["ticker", "trade_date"], keep="last")
    rejected[REASON_DUPLICATE] += int(dup.sum())
    frame = frame.loc[~dup]

    checks = [
        (REASON_MISSING, frame[PRICES].isna().any(axis=1)),
        (REASON_NON_POSITIVE, (frame[PRICES] <= 0).any(axis=1)),
        (REASON_HIGH_BELOW_LOW, frame["High"] < frame["Low"]),
    ]
    if is_session is not None:
        checks.append((REASON_NOT_A_SESSION, ~frame["trade_date"].map(is_session).astype(bool)))
    keep = pd.Series(True, index=frame.index)
    for reason, bad in checks:
        bad = bad & keep  # each row counted once, under its first failing check
        rejected[reason] += int(bad.sum())
        keep &= ~bad
    return frame.loc[keep].reset_index(drop=True), +rejected
