"""Data health: what in the lake looks wrong, per ticker and session, in words.

    python -m b3_quotes.catalog.health [--lake-dir DIR | --bucket NAME] [--check]

Runs `sql/data_health.sql` (the same facts, queryable on DuckDB or Athena) and prints a short
table per ticker, each line naming the session (YYYY-MM-DD): sessions missing against B3's
calendar, zero-volume sessions, moves over 50 % with no corporate event, events with no price
move, COTAHIST distribution numbers that moved with no event, and price-source changes. The
report only reads. Exit 0; with --check, 1 when anything is found; 2 on bad usage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from b3_quotes.config.settings import REPO_ROOT, ConfigError, load_settings
from b3_quotes.contract.logs import configure_console
from b3_quotes.runtime import build_runtime

HEALTH_SQL = REPO_ROOT / "sql" / "data_health.sql"
SessionsBetween = Callable[[dt.date, dt.date], int]


def b3_sessions_between(after: dt.date, before: dt.date) -> int:
    """B3 sessions strictly between two days, from exchange_calendars' BVMF."""
    import exchange_calendars

    calendar = exchange_calendars.get_calendar("BVMF", start="2000-01-03")
    return max(0, len(calendar.sessions_in_range(after.isoformat(), before.isoformat())) - 2)


def _day(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)[:10]


def describe(finding: str, day: str, previous: object, value: Any, note: object, missing: SessionsBetween) -> str:
    """One finding in words a user understands."""
    if finding == "sessions_missing":
        since = _day(previous)
        count = missing(dt.date.fromisoformat(since), dt.date.fromisoformat(day))
        return f"{count} B3 session(s) missing since {since} in the lake: no daily_return across the gap"
    if finding == "zero_volume":
        return "no share traded"
    if finding == "jump_without_event":
        return (f"daily_return {float(value):+.1%} and no corporate event loaded: a split or bonus the source "
                "did not adjust, or a wrong price? (--events-file, --b3-events-file)")
    if finding == "event_without_move":
        return (f"an event of {note} new shares per old, but the traded price moved {float(value):+.1%}: were the "
                "prices already adjusted, or is the event wrong?")
    if finding == "distribution_without_event":
        return (f"COTAHIST's distribution number went {note} -> {int(float(value))}: a corporate event is ex here "
                "and none is loaded")
    if finding == "source_changed":
        return f"price source changed ({note}) since {_day(previous)}: check both agree on the price basis"
    return str(note or "")


def findings(rows: list[tuple], missing: SessionsBetween = b3_sessions_between) -> list[tuple[str, str, str, str]]:
    """(ticker, day, finding, words) of the health query's rows."""
    return [(str(ticker), _day(day), str(finding), describe(str(finding), _day(day), previous, value, note, missing))
            for ticker, day, finding, previous, value, note in rows]


def report(found: list[tuple[str, str, str, str]], where: str) -> list[str]:
    """A short table per ticker."""
    if not found:
        return [f"data health of {where}: nothing found"]
    tickers = sorted({f[0] for f in found})
    lines = [f"data health of {where}: {len(found)} finding(s) in {len(tickers)} ticker(s)"]
    for ticker in tickers:
        lines.append(ticker)
        lines += [f"  {day}  {finding:<27} {words}" for t, day, finding, words in found if t == ticker]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m b3_quotes.catalog.health", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--lake-dir", type=Path, help="local lake (default: LAKE_DIR)")
    parser.add_argument("--bucket", help="S3 lake (default: BUCKET)")
    parser.add_argument("--check", action="store_true", help="exit 1 when anything is found")
    args = parser.parse_args(argv)
    configure_console("stderr")  # stdout holds the result; the library's lines (a catalog rebuilt) go beside it
    try:
        runtime = build_runtime(load_settings().with_overrides(lake_dir=args.lake_dir, bucket=args.bucket))
        runtime.require_lake()
        _, rows = runtime.query(HEALTH_SQL.read_text(encoding="utf-8"))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    found = findings(rows)
    for line in report(found, runtime.where):
        print(line)
    return 1 if args.check and found else 0


if __name__ == "__main__":
    sys.exit(main())
