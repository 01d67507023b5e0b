"""B3 trading sessions from the maintained exchange calendar (exchange_calendars' BVMF)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
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
    """Whether the calendar lists `day` as a session (False outside its range: it cannot tell)."""
    cal = _calendar()
    ts = _ts(day)
    return cal.first_session <= ts <= cal.last_session and bool(cal.is_session(ts))


@dataclass(frozen=True)
class SessionRules:
    """What validation needs of the calendar, as arrays: checks a million rows at once."""

    first: dt.date  # the calendar's first and last session: outside them it cannot tell
    last: dt.date
    latest_closed: dt.date  # no row may be dated after it (a future date)
    sessions: np.ndarray  # datetime64[D], sorted

    def is_session(self, days: np.ndarray) -> np.ndarray:
        """Element-wise: whether each datetime64[D] day is a session."""
        return np.isin(days, self.sessions)


def session_rules(now: dt.datetime | None = None) -> SessionRules:
    cal = _calendar()
    sessions = cal.sessions.to_numpy().astype("datetime64[D]")
    return SessionRules(cal.first_session.date(), cal.last_session.date(), latest_closed_session(now), sessions)


def latest_closed_session(now: dt.datetime | None = None) -> dt.date:
    """The last session whose closing bell has rung at `now`: today's after the close, else the one before."""
    now = (now or dt.datetime.now(B3_TIMEZONE)).astimezone(B3_TIMEZONE)
    cal = _calendar()
    today = _ts(now.date())
    session = cal.date_to_session(min(today, cal.last_session), direction="previous")
    if session == today and pd.Timestamp(now) < cal.session_close(session):
        session = cal.previous_session(session)
    return session.date()


def last_closed_session(now: dt.datetime | None = None) -> dt.date:
    """D-1: the last session strictly before today in São Paulo (weekends, holidays skipped)."""
    today = (now or dt.datetime.now(B3_TIMEZONE)).astimezone(B3_TIMEZONE).date()
    yesterday = _ts(today - dt.timedelta(days=1))
    return _calendar().date_to_session(yesterday, direction="previous").date()


def next_session(day: dt.date) -> dt.date:
    """The first session after `day` (an event's ex date after its last day with the right)."""
    return _calendar().date_to_session(_ts(day + dt.timedelta(days=1)), direction="next").date()
