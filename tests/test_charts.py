"""Charts: the queries, the pure plotting functions, the command on a local lake, the notebook on local Spark.

The lake here is written by hand with pyarrow, laid out as the refine job lays it out (hive
partitions, columns from b3_quotes/contract/tables.py), so every value a chart must draw is known.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import cast

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.dataset as pads  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402
from matplotlib import dates as mdates  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from moto import mock_aws  # noqa: E402
from PIL import Image  # noqa: E402

from b3_quotes.charts import command, frames, plots  # noqa: E402
from b3_quotes.charts.package import write_charts_zip  # noqa: E402
from b3_quotes.contract.arrow import ARROW_TYPES  # noqa: E402
from b3_quotes.contract.tables import (  # noqa: E402
    IBOV_PORTFOLIO,
    QUOTES_DAILY,
    QUOTES_DAILY_COMPACT,
    QUOTES_MONTHLY,
    QUOTES_MONTHLY_COMPACT,
    Table,
)
from tests.conftest import REPO  # noqa: E402

NOTEBOOK = REPO / "notebooks" / "b3_quotes_charts.ipynb"

# PETR4: six sessions over two months; ma_5 exists from the fifth session on.
PETR4 = [  # dt, close, daily_return, ma_5, volume
    ("2020-01-30", 30.0, None, None, 1000),
    ("2020-01-31", 31.0, 0.0333, None, 1100),
    ("2020-02-03", 29.0, -0.0645, None, 1200),
    ("2020-02-04", 29.5, 0.0172, None, 900),
    ("2020-02-05", 30.5, 0.0339, 30.0, 1500),  # (30 + 31 + 29 + 29.5 + 30.5) / 5
    ("2020-02-06", 32.0, 0.0492, 30.4, 800),  # (31 + 29 + 29.5 + 30.5 + 32) / 5
]
VALE3 = [
    ("2020-02-03", 50.0, None, None, 500),
    ("2020-02-04", 51.0, 0.02, None, 600),
    ("2020-02-05", 49.98, -0.02, None, 700),
]
MONTHLY = [  # month, ticker, monthly_return (January's as if December were in the lake)
    ("2020-01", "PETR4", 0.05),
    ("2020-02", "PETR4", 0.0323),  # 32 / 31 - 1
    ("2020-02", "VALE3", None),  # its first month
]
# Two snapshots: the chart must weigh by the latest one (PETR4 6 %, VALE3 10 %).
PORTFOLIOS = {"2024-01-02": {"PETR4": 50.0, "VALE3": 50.0}, "2025-04-07": {"PETR4": 6.0, "VALE3": 10.0}}


def write_table(lake: Path, table: Table, rows: list[dict]) -> None:
    """Rows into `table`'s folder, hive-partitioned like the job's writer; absent columns are null."""
    fields = [*table.columns, *table.partition_keys]
    data = {c.name: pa.array([r.get(c.name) for r in rows], ARROW_TYPES[c.type]) for c in fields}
    rows_table = pa.table(data)
    keys = pa.schema([rows_table.schema.field(n) for n in table.partition_names])
    pads.write_dataset(rows_table, str(lake / table.folder), format="parquet",
                       partitioning=pads.partitioning(keys, flavor="hive"))


def daily_rows() -> list[dict]:
    return [{"dt": d, "ticker": ticker, "trade_date": dt.date.fromisoformat(d), "close_price": close,
             "daily_return": ret, "ma_5": ma5, "ma_20": None, "volume": volume, "source": "sample",
             "gap_before": None if ret is None else False, "share_ratio": 1.0, "cash_per_share": 0.0}
            for ticker, quotes in (("PETR4", PETR4), ("VALE3", VALE3)) for d, close, ret, ma5, volume in quotes]


def build_lake(lake: Path, with_ibov: bool) -> Path:
    monthly = [{"month": m, "ticker": t, "monthly_return": r} for m, t, r in MONTHLY]
    write_table(lake, QUOTES_DAILY, daily_rows())
    write_table(lake, QUOTES_MONTHLY, monthly)
    # The compact companions the job keeps (what the charts read): the same rows, by year.
    write_table(lake, QUOTES_DAILY_COMPACT, [{**row, "year": row["dt"][:4]} for row in daily_rows()])
    write_table(lake, QUOTES_MONTHLY_COMPACT, [{**row, "year": row["month"][:4]} for row in monthly])
    if with_ibov:
        write_table(lake, IBOV_PORTFOLIO, [
            {"dt": day, "portfolio_date": dt.date.fromisoformat(day), "ticker": t, "weight_pct": w}
            for day, weights in PORTFOLIOS.items() for t, w in weights.items()])
    return lake


@pytest.fixture(scope="module")
def ibov_lake(tmp_path_factory) -> Path:
    return build_lake(tmp_path_factory.mktemp("lake_ibov"), with_ibov=True)


@pytest.fixture(scope="module")
def plain_lake(tmp_path_factory) -> Path:
    return build_lake(tmp_path_factory.mktemp("lake_plain"), with_ibov=False)


def expected_ibov() -> list[tuple[str, float, float]]:
    """(dt, weighted daily return, weight covered) from the latest snapshot, by hand."""
    w = PORTFOLIOS["2025-04-07"]
    r_p = {d: r for d, _, r, _, _ in PETR4}
    r_v = {d: r for d, _, r, _, _ in VALE3}
    return [
        ("2020-01-31", r_p["2020-01-31"], w["PETR4"]),  # VALE3 not quoted yet
        ("2020-02-03", r_p["2020-02-03"], w["PETR4"]),  # VALE3's first session has no return
        ("2020-02-04", (6.0 * r_p["2020-02-04"] + 10.0 * r_v["2020-02-04"]) / 16.0, 16.0),
        ("2020-02-05", (6.0 * r_p["2020-02-05"] + 10.0 * r_v["2020-02-05"]) / 16.0, 16.0),
        ("2020-02-06", r_p["2020-02-06"], w["PETR4"]),  # VALE3 has no session that day
    ]


# --- figure readers --------------------------------------------------------------------------


def axes_named(fig: Figure, label: str) -> Axes:
    found = [ax for ax in fig.axes if ax.get_label() == label]
    assert len(found) == 1, [ax.get_label() for ax in fig.axes]
    return found[0]


def line(ax: Axes, label: str):
    found = [ln for ln in ax.get_lines() if ln.get_label() == label]
    assert len(found) == 1, [ln.get_label() for ln in ax.get_lines()]
    return found[0]


def ydata(ln) -> np.ndarray:
    return np.asarray(ln.get_ydata(), dtype=float)


def line_days(ln) -> list[str]:
    return [pd.Timestamp(x).strftime("%Y-%m-%d") for x in ln.get_xdata()]


def bar_heights(ax: Axes) -> list[float]:
    (container,) = ax.containers
    return [patch.get_height() for patch in container.patches]


def bar_days(ax: Axes) -> list[str]:
    """Each bar's centre as a day."""
    (container,) = ax.containers
    return [mdates.num2date(p.get_x() + p.get_width() / 2).strftime("%Y-%m-%d") for p in container.patches]


def assert_quotes_figure(fig: Figure) -> None:
    """The figure of PETR4 and VALE3 drawn from the hand-written lake above."""
    for ticker, quotes in (("PETR4", PETR4), ("VALE3", VALE3)):
        price = axes_named(fig, f"{ticker} price")
        close = line(price, plots.CLOSE_LABEL)
        assert line_days(close) == [q[0] for q in quotes]
        np.testing.assert_array_equal(close.get_ydata(), [q[1] for q in quotes])
        np.testing.assert_array_equal(line(price, plots.MA5_LABEL).get_ydata(),
                                      [np.nan if q[3] is None else q[3] for q in quotes])
        assert np.isnan(line(price, plots.MA20_LABEL).get_ydata()).all()  # fewer than 20 sessions
        assert price.get_ylabel() == "price (BRL, latest\nshare basis)"
        assert [t.get_text() for t in price.get_legend().get_texts()] == [
            plots.CLOSE_LABEL, plots.MA5_LABEL, plots.MA20_LABEL]
        volume = axes_named(fig, f"{ticker} volume")
        assert bar_heights(volume) == [q[4] for q in quotes]
        assert bar_days(volume) == [q[0] for q in quotes]
        assert volume.get_ylabel() == "volume (shares,\nlatest basis)"
        assert isinstance(axes_named(fig, f"{ticker} monthly return").xaxis.get_major_formatter(),
                          mdates.ConciseDateFormatter)
    petr4_title = axes_named(fig, "PETR4 price").get_title(loc="left")
    assert petr4_title == "PETR4: close 30.00 \u2192 32.00 BRL (+6.7%), 30 Jan 2020 to 06 Feb 2020"
    monthly = axes_named(fig, "PETR4 monthly return")
    assert bar_heights(monthly) == [0.05, 0.0323]
    assert [mdates.num2date(p.get_x() + p.get_width() / 2).strftime("%Y-%m") for p in monthly.containers[0]] == [
        "2020-01", "2020-02"]
    assert bar_heights(axes_named(fig, "VALE3 monthly return")) == []  # its first month has no return
    assert fig.get_suptitle() == "B3 daily quotes: PETR4, VALE3, 30 Jan 2020 to 06 Feb 2020"
    assert fig.axes[-1].get_xlabel() == "session date"


def assert_ibov_figure(fig: Figure) -> None:
    expected = expected_ibov()
    daily_ax = axes_named(fig, "IBOV-weighted daily return")
    assert bar_days(daily_ax) == [e[0] for e in expected]
    np.testing.assert_allclose(bar_heights(daily_ax), [e[1] for e in expected], rtol=1e-12)
    compounded, values = 1.0, []
    for _, r, _ in expected:
        compounded *= 1.0 + r
        values.append(compounded - 1.0)
    total = line(axes_named(fig, "IBOV-weighted cumulative return"), plots.CUMULATIVE_LABEL)
    np.testing.assert_allclose(total.get_ydata(), values, rtol=1e-12)
    assert fig.get_suptitle() == "IBOV-weighted daily return, 31 Jan 2020 to 06 Feb 2020"
    note = fig._supxlabel.get_text()  # pyright: ignore[reportAttributeAccessIssue]
    assert "1-2 quoted per session, 6.0-16.0 % of the index weight" in note
    assert "IBOV portfolio of 2025-04-07" in note


# --- queries and frames ----------------------------------------------------------------------


def test_queries_refuse_anything_but_b3_codes_and_dates():
    with pytest.raises(ValueError, match="invalid ticker"):
        frames.daily_sql(["PETR4'; DROP TABLE quotes_daily; --"])
    with pytest.raises(ValueError):
        frames.monthly_sql(["PETR4"], start="2020-13-01")
    with pytest.raises(ValueError, match="no ticker"):
        frames.daily_sql([])


def test_frames_give_the_same_types_for_athena_strings_and_python_values():
    athena = pd.DataFrame([("PETR4", "2020-02-05", "30.5", "30.0", None, "1500", "true", "61.0"),
                           ("PETR4", "2020-02-06", "31", None, None, "1600", None, "62")], columns=frames.DAILY_COLUMNS)
    duckdb = pd.DataFrame([("PETR4", "2020-02-05", 30.5, 30.0, None, 1500, True, 61.0),
                           ("PETR4", "2020-02-06", 31.0, None, None, 1600, None, 62.0)], columns=frames.DAILY_COLUMNS)
    for rows in (athena, duckdb):
        frame = frames.daily_frame(rows)
        assert frame["date"].tolist() == [pd.Timestamp("2020-02-05"), pd.Timestamp("2020-02-06")]
        assert frame[["close", "ma_5", "volume", "close_price"]].iloc[0].tolist() == [30.5, 30.0, 1500.0, 61.0]
        assert math.isnan(frame["ma_20"].iloc[0])
        assert frame["gap_before"].tolist() == [True, False]  # unknown (null) is no gap, as refine reads it
    monthly = frames.monthly_frame(pd.DataFrame([("PETR4", "2020-02", "0.0323")], columns=frames.MONTHLY_COLUMNS))
    assert monthly[["month_start", "month_end"]].iloc[0].tolist() == [pd.Timestamp("2020-02-01"),
                                                                     pd.Timestamp("2020-02-29")]


# --- pure plotting ---------------------------------------------------------------------------


def test_plot_quotes_draws_close_averages_volume_and_monthly_returns():
    daily = frames.daily_frame(pd.DataFrame(
        [("PETR4", d, c, m, None, v, False, c) for d, c, _, m, v in PETR4]
        + [("VALE3", d, c, m, None, v, False, c) for d, c, _, m, v in VALE3], columns=frames.DAILY_COLUMNS))
    monthly = frames.monthly_frame(pd.DataFrame([(t, m, r) for m, t, r in MONTHLY], columns=frames.MONTHLY_COLUMNS))
    fig = plots.plot_quotes(daily, monthly)
    assert_quotes_figure(fig)
    assert len(fig.axes) == 6  # three per ticker


def test_the_quotes_chart_footnote_fits_inside_the_png():
    daily = frames.daily_frame(pd.DataFrame(
        [("PETR4", d, c, m, None, v, False, c) for d, c, _, m, v in PETR4], columns=frames.DAILY_COLUMNS))
    monthly = frames.monthly_frame(pd.DataFrame([(t, m, r) for m, t, r in MONTHLY if t == "PETR4"],
                                                columns=frames.MONTHLY_COLUMNS))
    fig = plots.plot_quotes(daily, monthly)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # the PNG's renderer
    canvas.draw()  # lays the figure out, as savefig does
    renderer = canvas.get_renderer()
    note = next(t for t in fig.texts if t.get_text().startswith("Source:"))
    box, width, height = note.get_window_extent(renderer), fig.bbox.width, fig.bbox.height
    assert 0 <= box.x0 and box.x1 <= width and 0 <= box.y0 and box.y1 <= height, (box, width, height)
    assert " ".join(note.get_text().split()) == " ".join(plots.QUOTES_NOTE.split())  # all of it, wrapped


def test_plot_quotes_without_any_session_is_an_error():
    empty = frames.daily_frame(pd.DataFrame(columns=frames.DAILY_COLUMNS))
    with pytest.raises(ValueError, match="no session"):
        plots.plot_quotes(empty, frames.monthly_frame(pd.DataFrame(columns=frames.MONTHLY_COLUMNS)))


def test_plot_draws_into_a_given_figure():
    given = Figure()
    rows = pd.DataFrame([("2020-01-31", "2025-04-07", 1, 6.0, 0.01)], columns=frames.IBOV_COLUMNS)
    assert plots.plot_ibov_weighted_return(frames.ibov_frame(rows), fig=given) is given
    assert len(given.axes) == 2 and tuple(given.get_size_inches()) == (plots.WIDTH_IN, plots.IBOV_HEIGHT_IN)


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def drawn(monkeypatch) -> list[Figure]:
    """Every figure the command saves, kept for inspection."""
    figures: list[Figure] = []
    save = command.save_png

    def keep(fig: Figure, path: Path) -> Path:
        figures.append(fig)
        return save(fig, path)

    monkeypatch.setattr(command, "save_png", keep)
    return figures


def test_chart_command_writes_quotes_and_ibov_pngs_from_the_local_lake(ibov_lake, tmp_path, capsys, drawn):
    out = tmp_path / "out"
    code = command.main(["--lake-dir", str(ibov_lake), "--tickers", "petr4,VALE3.SA", "--out-dir", str(out)])
    assert code == 0, capsys.readouterr().err
    quotes_png = out / "quotes_PETR4-VALE3_2020-01-30_2020-02-06.png"
    ibov_png = out / "ibov_weighted_2020-01-31_2020-02-06.png"
    assert sorted(out.iterdir()) == sorted([quotes_png, ibov_png])  # and no temporary file left
    printed = capsys.readouterr().out
    assert f"chart     {quotes_png} (PETR4, VALE3: 9 sessions, 2 monthly returns)" in printed
    assert f"chart     {ibov_png} (IBOV-weighted daily return, 5 sessions)" in printed
    quotes_fig, ibov_fig = drawn
    assert_quotes_figure(quotes_fig)
    assert_ibov_figure(ibov_fig)
    with Image.open(quotes_png) as image:
        assert image.format == "PNG"
        assert image.size == (round(plots.WIDTH_IN * command.DPI), round((2 * plots.TICKER_HEIGHT_IN + 0.6) * command.DPI))


def test_chart_command_range_limits_the_sessions(plain_lake, tmp_path, capsys, drawn):
    code = command.main(["--lake-dir", str(plain_lake), "--tickers", "PETR4", "--start", "2020-02-01",
                         "--end", "2020-02-05", "--out-dir", str(tmp_path)])
    assert code == 0
    price = axes_named(drawn[0], "PETR4 price")
    assert line_days(line(price, plots.CLOSE_LABEL)) == ["2020-02-03", "2020-02-04", "2020-02-05"]
    assert bar_heights(axes_named(drawn[0], "PETR4 monthly return")) == [0.0323]  # February only
    assert "no IBOV portfolio snapshot" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["quotes_PETR4_2020-02-03_2020-02-05.png"]


def test_chart_command_ticker_without_sessions_charts_the_others_and_exits_3(plain_lake, tmp_path, capsys, drawn):
    code = command.main(["--lake-dir", str(plain_lake), "--tickers", "VALE3,ITUB4", "--out-dir", str(tmp_path)])
    assert code == 3
    assert "error: no session of ITUB4 in the range; the others are charted" in capsys.readouterr().err
    assert [ax.get_label() for ax in drawn[0].axes] == ["VALE3 price", "VALE3 volume", "VALE3 monthly return"]


def test_chart_command_with_no_session_in_range_writes_nothing_and_exits_3(plain_lake, tmp_path, capsys):
    code = command.main(["--lake-dir", str(plain_lake), "--tickers", "PETR4", "--start", "2021-01-01",
                         "--out-dir", str(tmp_path / "out")])
    assert code == 3
    assert "nothing charted" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--start", "2020-02-05", "--end", "2020-02-01"], "error: --end 2020-02-01 is before --start 2020-02-05"),
    (["--tickers", "PETR-4"], "error: invalid ticker 'PETR-4'"),
])
def test_chart_command_bad_options_exit_2_with_one_line(plain_lake, tmp_path, capsys, args, message):
    assert command.main(["--lake-dir", str(plain_lake), "--out-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_chart_command_on_an_empty_lake_exits_2(tmp_path, capsys):
    assert command.main(["--lake-dir", str(tmp_path / "none"), "--out-dir", str(tmp_path)]) == 2
    assert f"no lake at {tmp_path / 'none'}: run the scraper first" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_a_month_cut_by_end_is_drawn_to_that_day(tmp_path, capsys, drawn):
    lake = tmp_path / "lake"
    write_table(lake, QUOTES_DAILY_COMPACT, [{**row, "year": "2020"} for row in daily_rows()])
    write_table(lake, QUOTES_MONTHLY_COMPACT, [
        {"month": "2020-01", "ticker": "PETR4", "monthly_return": 0.05, "close_price": 31.0,
         "last_session": dt.date(2020, 1, 31), "year": "2020"},
        {"month": "2020-02", "ticker": "PETR4", "monthly_return": 32.0 / 31.0 - 1, "close_price": 32.0,
         "last_session": dt.date(2020, 2, 6), "year": "2020"},
    ])
    code = command.main(["--lake-dir", str(lake), "--tickers", "PETR4", "--end", "2020-02-04", "--out-dir",
                         str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    monthly = axes_named(drawn[0], "PETR4 monthly return")
    # February to 02-04: its close 29.5 over January's 31 (not 32 / 31, the whole month's).
    assert bar_heights(monthly) == pytest.approx([0.05, 29.5 / 31 - 1])
    labels = [t.get_text() for t in monthly.texts]
    assert labels == ["+5.0%", "-4.8% to 04 Feb"]
    # The axis ends 3 days after the last session charted, not at the end of February.
    assert monthly.get_xlim()[1] == pytest.approx(mdates.date2num(dt.datetime(2020, 2, 7)))


# --- adjusted prices and gaps --------------------------------------------------------------------

# ABCD3 on real B3 sessions of March 2024, as refine would store it: closes as traded, a 2:1 split
# ex 03-08 (share_ratio 2), 03-11 missing (gap_before on 03-12); ma_5 in each session's own basis,
# its window across the gap as refine keeps it (the chart must not draw those).
SPLIT_AND_GAP = [  # dt, close as traded, share_ratio, gap_before, ma_5 as stored
    ("2024-03-01", 20.0, 1.0, None, None),
    ("2024-03-04", 21.0, 1.0, False, None),
    ("2024-03-05", 22.0, 1.0, False, None),
    ("2024-03-06", 23.0, 1.0, False, None),
    ("2024-03-07", 24.0, 1.0, False, 22.0),  # (20 + 21 + 22 + 23 + 24) / 5, the old basis
    ("2024-03-08", 12.5, 2.0, False, 11.5),  # (10.5 + 11 + 11.5 + 12 + 12.5) / 5, the new basis
    ("2024-03-12", 13.0, 1.0, True, 12.0),  # (11 + 11.5 + 12 + 12.5 + 13) / 5: across the gap
    ("2024-03-13", 13.5, 1.0, False, 12.5),
    ("2024-03-14", 14.0, 1.0, False, 13.0),
    ("2024-03-15", 14.5, 1.0, False, 13.5),
    ("2024-03-18", 15.0, 1.0, False, 14.0),  # 03-12 to 03-18: the gap is before its window's first session
]


@pytest.fixture(scope="module")
def split_gap_lake(tmp_path_factory) -> Path:
    lake = tmp_path_factory.mktemp("lake_split_gap")
    write_table(lake, QUOTES_DAILY_COMPACT, [
        {"dt": d, "ticker": "ABCD3", "trade_date": dt.date.fromisoformat(d), "close_price": close, "ma_5": ma5,
         "volume": 1000, "gap_before": gap, "share_ratio": ratio, "cash_per_share": 0.0, "year": "2024"}
        for d, close, ratio, gap, ma5 in SPLIT_AND_GAP])
    write_table(lake, QUOTES_MONTHLY_COMPACT, [{"month": "2024-03", "ticker": "ABCD3", "monthly_return": None,
                                                "close_price": 15.0, "last_session": dt.date(2024, 3, 18),
                                                "year": "2024"}])
    return lake


def test_the_price_chart_is_adjusted_to_the_latest_basis_and_breaks_at_a_gap(split_gap_lake, tmp_path, drawn):
    assert command.main(["--lake-dir", str(split_gap_lake), "--tickers", "ABCD3", "--out-dir", str(tmp_path)]) == 0
    price = axes_named(drawn[0], "ABCD3 price")
    close, ma5 = line(price, plots.CLOSE_LABEL), line(price, plots.MA5_LABEL)
    nan = np.nan
    # Before the split each close / 2; a NaN point before 03-12 breaks the line over the missing 03-11.
    assert line_days(close) == ["2024-03-01", "2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08",
                                "2024-03-12", "2024-03-12", "2024-03-13", "2024-03-14", "2024-03-15", "2024-03-18"]
    np.testing.assert_allclose(ydata(close), [10, 10.5, 11, 11.5, 12, 12.5, nan, 13, 13.5, 14, 14.5, 15],
                               rtol=1e-12)
    # 22 in the old basis is 11 in the latest; 03-12 to 03-15 average across the gap: not drawn.
    np.testing.assert_allclose(ydata(ma5), [nan, nan, nan, nan, 11, 11.5, nan, nan, nan, nan, nan, 14], rtol=1e-12)
    assert line_days(ma5) == line_days(close)
    np.testing.assert_allclose(bar_heights(axes_named(drawn[0], "ABCD3 volume")), [2000] * 5 + [1000] * 6)
    (shade,) = [p for p in price.patches if p.get_label() == plots.GAP_LABEL]
    box = cast(Rectangle, shade).get_bbox()  # in data coordinates: the missing 03-11, between its neighbours
    assert [mdates.num2date(x).strftime("%Y-%m-%d") for x in (box.x0, box.x1)] == ["2024-03-08", "2024-03-12"]
    assert price.get_title(loc="left").startswith("ABCD3: close 10.00 \u2192 15.00 BRL (+50.0%)")
    note = drawn[0]._supxlabel.get_text()  # pyright: ignore[reportAttributeAccessIssue]
    assert "adjusted for splits, reverse splits and bonus shares to each ticker's latest share basis" in " ".join(
        note.split())


def test_a_moving_average_after_start_still_knows_the_gap_before_it(split_gap_lake, tmp_path, drawn):
    """The range starts after the gap: 03-13 to 03-15 still average across it (hidden), 03-18 does not."""
    assert command.main(["--lake-dir", str(split_gap_lake), "--tickers", "ABCD3", "--start", "2024-03-13",
                         "--out-dir", str(tmp_path)]) == 0
    price = axes_named(drawn[0], "ABCD3 price")
    assert line_days(line(price, plots.CLOSE_LABEL)) == ["2024-03-13", "2024-03-14", "2024-03-15", "2024-03-18"]
    np.testing.assert_allclose(ydata(line(price, plots.MA5_LABEL)), [np.nan, np.nan, np.nan, 14], rtol=1e-12)
    assert not [p for p in price.patches if p.get_label() == plots.GAP_LABEL]  # no gap inside the range


def test_the_bbas3_split_draws_no_cliff_on_real_cotahist_records(tmp_path, drawn):
    """BBAS3's 2:1 split (ex 2024-04-16) from B3's own records and B3's own event payload, through the
    scraper and the job: the chart's closes are the records' PREULT, halved before the ex date, and
    the line breaks where the records skip sessions (02-22 to 04-15, 04-16 to 06-12)."""
    from tests.helpers import run_local, run_scraper
    from tests.test_corporate_events import EVENTS_DATA, cotahist_file, payload

    records = [r for r in (EVENTS_DATA / "cotahist_event_records_2024.DERIVED.TXT").read_text().splitlines()
               if r[12:24].strip() == "BBAS3"]
    lake = tmp_path / "lake"
    assert run_scraper(lake, "--source", "b3", "--cotahist-file", str(cotahist_file(tmp_path / "BBAS3.TXT", records)),
                       "--tickers", "BBAS3", "--b3-events-file", str(payload(tmp_path, "BBAS_SUPPLEMENT"))) == 0
    assert command.main(["--lake-dir", str(lake), "--tickers", "BBAS3", "--out-dir", str(tmp_path / "out")]) == 0
    price = axes_named(drawn[0], "BBAS3 price")
    close = line(price, plots.CLOSE_LABEL)
    nan = np.nan
    assert line_days(close) == ["2024-02-21", "2024-02-22", "2024-04-15", "2024-04-15", "2024-04-16",
                                "2024-06-12", "2024-06-12", "2024-06-13", "2024-06-14"]
    # PREULT: 59.44, 58.10, 56.46 before the split (halved), then 27.91, 26.54, 26.72, 26.45.
    np.testing.assert_allclose(ydata(close), [29.72, 29.05, nan, 28.23, 27.91, nan, 26.54, 26.72, 26.45],
                               rtol=1e-12)
    # No cliff: the split's day moves -1.1 % (27.91 / 28.23), not -50.6 % (27.91 / 56.46).
    steps = np.diff(ydata(close)) / ydata(close)[:-1]
    assert np.nanmax(np.abs(steps)) < 0.03
    # refine's ma_5 of 06-14 averages five sessions across both gaps; the chart draws no average here.
    _, rows = run_local(lake, "SELECT ma_5 FROM quotes_daily WHERE ticker = 'BBAS3' AND dt = '2024-06-14'")
    assert rows[0][0] is not None
    assert np.isnan(ydata(line(price, plots.MA5_LABEL))).all()
    assert len([p for p in price.patches if p.get_label() == plots.GAP_LABEL]) == 1  # one legend entry ...
    assert len(price.patches) == 2  # ... for two shaded gaps


def athena_result(columns: list[str], rows: list[tuple]) -> dict:
    """What Athena answers: every value a string, null as no value, the header as the first row."""
    def row(values) -> dict:
        return {"Data": [{} if v is None else {"VarCharValue": str(v)} for v in values]}

    return {"column_info": [{"Name": c, "Type": "varchar"} for c in columns], "rows": [row(columns), *map(row, rows)]}


def test_chart_command_queries_athena_when_a_bucket_is_set(aws_credentials, monkeypatch, tmp_path, drawn):
    monkeypatch.setenv("BUCKET", "b3-lake")
    with mock_aws():
        athena = boto3_athena()
        weights = PORTFOLIOS["2025-04-07"]
        answers = [
            athena_result(frames.DAILY_COLUMNS, [(t, d, c, m, None, v, "false", c)
                                                for t, quotes in (("PETR4", PETR4), ("VALE3", VALE3))
                                                for d, c, _, m, v in quotes]),
            athena_result(frames.MONTHLY_COLUMNS, [(t, m, r) for m, t, r in MONTHLY]),
            athena_result(["table_name"], [("ibov_portfolio",)]),
            athena_result(frames.IBOV_COLUMNS, [(d, "2025-04-07", 1 if w == weights["PETR4"] else 2, w, r)
                                                for d, r, w in expected_ibov()]),
        ]
        requests.post("http://motoapi.amazonaws.com/moto-api/static/athena/query-results", json={
            "account_id": "123456789012", "region": "us-east-1", "results": answers}, timeout=5)
        code = command.main(["--tickers", "PETR4,VALE3", "--out-dir", str(tmp_path)])
        sent = [athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]
                for q in athena.list_query_executions()["QueryExecutionIds"]]
    assert code == 0
    assert sorted(e["Query"] for e in sent) == sorted([
        frames.daily_sql(["PETR4", "VALE3"]), frames.monthly_sql(["PETR4", "VALE3"]),
        frames.ibov_table_sql("default"), frames.ibov_sql()])
    assert {(e["WorkGroup"], e["QueryExecutionContext"]["Database"]) for e in sent} == {("b3-quotes", "default")}
    assert_quotes_figure(drawn[0])
    assert_ibov_figure(drawn[1])


def boto3_athena():
    import boto3

    athena = boto3.client("athena", region_name="us-east-1")
    athena.create_work_group(Name="b3-quotes", Configuration={
        "ResultConfiguration": {"OutputLocation": "s3://b3-lake/athena-results/"}})
    return athena


# --- the Athena notebook ---------------------------------------------------------------------


def notebook_code_cells() -> list[tuple[list[str], str]]:
    notebook = json.loads(NOTEBOOK.read_text())
    assert notebook["nbformat"] == 4
    return [(c["metadata"].get("tags", []), "".join(c["source"])) for c in notebook["cells"] if c["cell_type"] == "code"]


def run_notebook(namespace: dict, parameters: dict) -> list[Figure]:
    """Execute the code cells as Athena would: `%matplot plt` shows pyplot's current figure."""
    shown: list[Figure] = []
    namespace["_matplot"] = lambda pyplot: shown.append(pyplot.gcf())
    for number, (tags, source) in enumerate(notebook_code_cells()):
        lines = []
        for text in source.splitlines():
            if text.startswith("%"):
                assert text.strip() == "%matplot plt", f"magic Athena lacks: {text}"
                text = "_matplot(plt)"
            lines.append(text)
        exec(compile("\n".join(lines), f"<cell {number}>", "exec"), namespace)
        if "parameters" in tags:
            namespace.update(parameters)  # what a user edits in that cell
    return shown


def test_notebook_parameters_cell_names_what_the_readme_says():
    tags, source = notebook_code_cells()[0]
    assert tags == ["parameters"]
    settings: dict = {}
    exec(source, settings)
    assert settings["CHARTS_ZIP"] == "s3://YOUR-BUCKET/scripts/charts.zip"
    assert settings["DATABASE"] == "default"


def test_notebook_draws_the_same_charts_from_spark_tables(spark, ibov_lake, tmp_path):
    """Local Spark stands in for Athena's: the catalogued tables as views over the lake."""
    views = {t.name: t for t in (QUOTES_DAILY_COMPACT, QUOTES_MONTHLY_COMPACT, IBOV_PORTFOLIO)}
    for name, table in views.items():
        spark.read.parquet(str(ibov_lake / table.folder)).createOrReplaceTempView(name)
    try:
        shown = run_notebook({"spark": spark, "sc": spark.sparkContext}, {
            "CHARTS_ZIP": str(write_charts_zip(tmp_path / "charts.zip")), "TICKERS": ["PETR4", "VALE3"]})
    finally:
        for name in [*views, "quotes_daily_adjusted"]:  # the notebook defines the adjusted view
            spark.catalog.dropTempView(name)
        plt.close("all")
    assert len(shown) == 2
    assert_quotes_figure(shown[0])
    assert_ibov_figure(shown[1])
    # Spark's default database folder, made by a query over a view: never in the current folder.
    assert str(Path.cwd()) not in spark.conf.get("spark.sql.warehouse.dir")


def test_charts_zip_imports_without_the_repository(tmp_path):
    """What `sc.addPyFile` gives an Athena session: the zip alone on the path."""
    archive = write_charts_zip(tmp_path / "dist" / "charts.zip")
    probe = ("import b3_quotes.charts.frames, b3_quotes.charts.plots, b3_quotes.contract.tables; print(b3_quotes.charts.frames.__file__); "
             "print(b3_quotes.contract.tables.__file__); print(b3_quotes.charts.frames.daily_sql(['PETR4']).splitlines()[4])")
    env = {**os.environ, "PYTHONPATH": str(archive), "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(archive / "b3_quotes" / "charts" / "frames.py"),
                                          str(archive / "b3_quotes" / "contract" / "tables.py"), "FROM quotes_daily_adjusted a"]
