"""Row checks before anything is written: every dropped row is kept with its reason."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable

import numpy as np
import pandas as pd

from scraper.sources.base import SourceDataError

PRICES = ["Open", "High", "Low", "Close"]
NUMBERS = [*PRICES, "Adj Close", "Volume"]
# Above these no B3 quote has ever been (prices per share, after COTAHIST's quote factor;
# the bundled files top out at R$ 79,500 and 1.8e10 shares): a bigger value is corrupt data.
MAX_PRICE_BRL = 1e9
MAX_VOLUME_SHARES = 1e15
INT64_MAX = float(np.iinfo(np.int64).max)

REASON_DUPLICATE = "duplicate_session"
REASON_MISSING = "missing_price"
REASON_NON_FINITE = "non_finite_value"
REASON_NON_POSITIVE = "non_positive_price"
REASON_ABSURD = "absurd_magnitude"
REASON_HIGH_BELOW_LOW = "high_below_low"
REASON_OUTSIDE_RANGE = "open_close_outside_range"
REASON_NEGATIVE_VOLUME = "negative_volume"
REASON_NOT_A_SESSION = "not_a_b3_session"
REASON_TRUNCATED = "truncated_line"  # set by the CSV reader

REJECTED_COLUMNS = ["ticker", "trade_date", *NUMBERS, "reason", "detail"]


class UnstorableValue(SourceDataError):
    """A value the lake's column types cannot hold (volume beyond int64)."""


def empty_rejected() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in NUMBERS else "object") for c in REJECTED_COLUMNS})


def _fmt(value: float) -> str:
    return "missing" if np.isnan(value) else f"{value:g}"


def _describe(row: pd.Series, reason: str) -> str:
    """One readable line on what is wrong with a rejected row."""
    v = {c: float(row.at[c]) for c in NUMBERS}  # pyright: ignore[reportArgumentType] - one cell
    if reason == REASON_MISSING:
        return "no " + ", ".join(c for c in PRICES if np.isnan(v[c]))
    if reason == REASON_NON_FINITE:
        return ", ".join(f"{c} {_fmt(v[c])}" for c in NUMBERS if np.isinf(v[c]))
    if reason == REASON_NON_POSITIVE:
        return ", ".join(f"{c} {_fmt(v[c])}" for c in PRICES if v[c] <= 0)
    if reason == REASON_ABSURD:
        too_big = [f"{c} {_fmt(v[c])}" for c in PRICES if abs(v[c]) > MAX_PRICE_BRL]
        if abs(v["Volume"]) > MAX_VOLUME_SHARES:
            too_big.append(f"Volume {_fmt(v['Volume'])}")
        return ", ".join(too_big) + f" (limits: price {MAX_PRICE_BRL:g}, volume {MAX_VOLUME_SHARES:g})"
    if reason == REASON_HIGH_BELOW_LOW:
        return f"High {_fmt(v['High'])} < Low {_fmt(v['Low'])}"
    if reason == REASON_OUTSIDE_RANGE:
        out = [f"{c} {_fmt(v[c])}" for c in ("Open", "Close") if not v["Low"] <= v[c] <= v["High"]]
        return ", ".join(out) + f" outside [Low {_fmt(v['Low'])}, High {_fmt(v['High'])}]"
    if reason == REASON_NEGATIVE_VOLUME:
        return f"Volume {_fmt(v['Volume'])}"
    if reason == REASON_NOT_A_SESSION:
        return f"{row['trade_date']} is not a B3 trading session"
    if reason == REASON_DUPLICATE:
        return "same instrument and day again in this download: the last one is kept"
    return ""


def _rejected(frame: pd.DataFrame, bad: pd.Series, reason: str) -> pd.DataFrame:
    rows = frame.loc[bad].copy()
    rows["reason"] = reason
    rows["detail"] = [_describe(row, reason) for _, row in rows.iterrows()]
    return rows


def duplicate_key(frame: pd.DataFrame) -> list[str]:
    """(ticker, day), plus the instrument when a source keeps several per code (B3, all instruments)."""
    return ["ticker", "trade_date", *(["instrument"] if "instrument" in frame else [])]


def validate_quotes(
    quotes: pd.DataFrame, is_session: Callable[[dt.date], bool] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split quotes into the valid rows and the rejected ones, each with a reason and a detail.

    A row is rejected, under its first failing check, for a non-finite number, a missing,
    zero or negative price, an absurd magnitude, High < Low, Open or Close outside
    [Low, High], a negative volume, or a day that is not a B3 session (Yahoo repeats the
    previous close with zero volume on some holidays). Of the valid rows repeated for one
    instrument and day, the last one is kept.
    """
    frame = quotes.reset_index(drop=True)
    numbers = pd.DataFrame(frame[NUMBERS], dtype="float64")
    prices = pd.DataFrame(numbers[PRICES])
    volume = pd.Series(numbers["Volume"])
    open_close = pd.DataFrame(prices[["Open", "Close"]])
    checks = [
        (REASON_NON_FINITE, np.isinf(numbers).any(axis=1)),
        (REASON_MISSING, prices.isna().any(axis=1)),
        (REASON_NON_POSITIVE, (prices <= 0).any(axis=1)),
        (REASON_ABSURD, (prices > MAX_PRICE_BRL).any(axis=1) | (volume.abs() > MAX_VOLUME_SHARES)),
        (REASON_HIGH_BELOW_LOW, prices["High"] < prices["Low"]),
        (REASON_OUTSIDE_RANGE, (open_close.lt(prices["Low"], axis=0) | open_close.gt(prices["High"], axis=0)).any(axis=1)),
        (REASON_NEGATIVE_VOLUME, volume < 0),
    ]
    if is_session is not None:
        checks.append((REASON_NOT_A_SESSION, ~frame["trade_date"].map(is_session).astype(bool)))
    keep = pd.Series(True, index=frame.index)
    rejected = []
    for reason, bad in checks:
        bad = pd.Series(bad, index=frame.index) & keep  # each row counted once, under its first failing check
        if bad.any():
            rejected.append(_rejected(frame, bad, reason))
        keep &= ~bad
    survivors = frame.loc[keep]
    dup = survivors.duplicated(subset=duplicate_key(frame), keep="last").reindex(frame.index, fill_value=False)
    if dup.any():
        rejected.append(_rejected(frame, dup, REASON_DUPLICATE))
    keep &= ~dup
    rows = pd.concat(rejected, ignore_index=True) if rejected else empty_rejected()
    return frame.loc[keep].reset_index(drop=True), rows.reindex(columns=[*REJECTED_COLUMNS, *(
        [c for c in rows.columns if c not in REJECTED_COLUMNS])])


def count_reasons(rejected: pd.DataFrame) -> Counter[str]:
    return Counter({str(k): int(v) for k, v in rejected["reason"].value_counts().items()})


def check_storable(quotes: pd.DataFrame, where: Callable[[pd.Series], str]) -> None:
    """Raise UnstorableValue for a finite volume beyond int64, the raw column's type."""
    volume = pd.Series(quotes["Volume"], dtype="float64")
    bad = np.isfinite(volume) & (volume.abs() >= INT64_MAX)
    if bad.any():
        row = quotes.loc[bad].iloc[0]
        raise UnstorableValue(f"{where(row)}: Volume {row['Volume']:g} cannot be stored "
                              f"(the volume column is a 64-bit integer, at most {INT64_MAX:.4g})")
