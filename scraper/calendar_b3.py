"""B3 trading sessions from the maintained exchange calendar (exchange_calendars' BVMF)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import cast
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

B3_TIMEZONE = ZoneInfo("America/Sao_Paulo")
# exchange_calendars starts 20 years back by default; history files go further.
CALENDAR_START = "2000-01-03"


def _ts(day: dt.date) -> pd.Timestamp:
    return cast(pd.Timestamp, pd.Timestamp(day.isoformat()))  # never NaT for a real date


@lru_cache(maxsize=1)
def _calendar() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("BVMF", start=CALENDAR_START)


def first_session() -> dt.date:
    """The earliest session the calendar knows."""
    return _calendar().first_session.date()


def sessions_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """B3 sessions in [start, end], both inclusive."""
    if end < start:
        return []
    cal = _calendar()
    lo = max(_ts(start), cal.first_session)
    hi = min(_ts(end), cal.last_session)
    if hi < lo:
        return []
    return [ts.date() for ts in cal.sessions_in_range(lo, hi)]


def is_session(day: dt.date) -> bool:
    cal = _calendar()
    ts = _ts(day)
    if ts < cal.first_session or ts > cal.last_session:
        # Outside the calendar's range we cannot tell: trust the source.
        return True
    return bool(cal.is_session(ts))


def last_closed_session(now: dt.datetime | None = None) -> dt.date:
    """D-1: the last session strictly before today in São Paulo (weekends, holidays skipped)."""
    today = (now or dt.datetime.now(B3_TIMEZONE)).astimezone(B3_TIMEZONE).date()
    yesterday = _ts(today - dt.timedelta(days=1))
    return _calendar().date_to_session(yesterday, direction="previous").date()
