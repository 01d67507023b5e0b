"""Progress of long loops: plain lines off a terminal, a tqdm bar on one; the loops that report it."""

from __future__ import annotations

import datetime as dt
import io
import logging
import sys

import pandas as pd
import pytest

from b3_quotes.contract.logs import configure_console
from scraper.progress import progress, start_progress


class Clock:
    """Seconds that advance only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_at_start_every_interval_and_at_the_end():
    clock, lines = Clock(), []
    with progress(6, "COTAHIST downloads", unit="day", say=lines.append, interactive=False, clock=clock) as shown:
        for day in ("2021-06-21", "2021-06-22", "2021-06-23", "2021-06-24", "2021-06-25", "2021-06-28"):
            clock.now += 4.0  # each day takes 4 s: a line once 10 s have passed since the last one
            shown.update(detail=day)
    assert lines == [
        "COTAHIST downloads: 6 days to go",
        "COTAHIST downloads: 3/6 days (50 %), 2021-06-23",  # 12 s after the start
        "COTAHIST downloads: 6/6 days in 24.0 s",  # the last item: the closing line only
    ]


def test_fewer_items_than_the_minimum_print_nothing():
    lines: list[str] = []
    with progress(3, "writing raw days", unit="day", min_total=20, say=lines.append, interactive=False) as shown:
        for _ in range(3):
            shown.update()
    assert lines == [] and shown.done == 3


def test_a_failing_loop_ends_without_a_closing_line():
    lines: list[str] = []
    with pytest.raises(OSError, match="disk full"):
        with progress(4, "writing raw days", unit="day", say=lines.append, interactive=False) as shown:
            shown.update()
            raise OSError("disk full")
    assert lines == ["writing raw days: 4 days to go"]


def test_track_counts_each_item_taken():
    lines: list[str] = []
    with progress(3, "reading raw files", unit="file", say=lines.append, interactive=False) as shown:
        assert list(shown.track(iter("abc"))) == ["a", "b", "c"]
    assert shown.done == 3 and lines[-1].startswith("reading raw files: 3/3 files in ")


def test_on_a_terminal_a_tqdm_bar_on_stderr_and_notices_above_it(monkeypatch):
    bar_stream, notices = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", bar_stream)
    monkeypatch.setattr(sys, "stdout", notices)
    said: list[str] = []
    with progress(3, "COTAHIST downloads", unit="day", say=said.append, interactive=True) as shown:
        shown.update(detail="2021-06-24")
        shown.write("notice: B3 has no COTAHIST file for 2021-06-25")
        shown.update(2)
    assert said == []  # no plain line on a terminal
    drawn = bar_stream.getvalue()
    assert "COTAHIST downloads" in drawn and "3/3" in drawn and "day/s" in drawn
    assert "notice: B3 has no COTAHIST file for 2021-06-25" in notices.getvalue()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_interactive_when_stderr_is_a_terminal_and_info_lines_are_shown(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="scraper")
    monkeypatch.setattr(sys, "stderr", Terminal())
    said: list[str] = []
    with progress(2, "x", say=said.append) as shown:
        shown.update(2)
    assert said == [] and "2/2" in sys.stderr.getvalue()


def test_quiet_draws_no_bar_on_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stderr", Terminal())
    configure_console("stdout", quiet=True)
    try:
        with progress(2, "x") as shown:
            shown.update(2)
    finally:
        configure_console("stdout")
    assert sys.stderr.getvalue() == "" and capsys.readouterr().out == ""


def test_raw_writer_reports_a_backfill(tmp_path, said):
    from b3_quotes.contract.tables import RAW_QUOTES
    from b3_quotes.storage import Lake
    from scraper.raw_writer import RunStamp, write_raw_run

    days = [d.date() for d in pd.bdate_range("2024-01-01", periods=25)]  # 20 days or more: a backfill
    quotes = pd.DataFrame({"trade_date": days, "ticker": "PETR4", "open": 1.0, "high": 1.0, "low": 1.0,
                           "close": 1.0, "adj_close": 1.0, "volume": 10})
    write_raw_run(Lake.local(tmp_path), {RAW_QUOTES: quotes}, RunStamp("sample", {}, dt.datetime(2024, 3, 1, tzinfo=dt.UTC), "r1"))
    out = said()
    assert out[0] == "writing raw days: 25 days to go"
    assert out[-1].startswith("writing raw days: 25/25 days in ") and len(out) == 2


def test_start_progress_without_a_block_closes_its_bar(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    shown = start_progress(2, "writing refined/quotes_daily", unit="partition", interactive=True)
    shown.update(2)
    shown.finish()
    assert shown.bar.disable and "2/2" in sys.stderr.getvalue()  # closed, after drawing 2/2
