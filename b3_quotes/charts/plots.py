"""Pure plotting: typed frames (b3_quotes.charts.frames) in, a matplotlib Figure out; nothing is read or written.

Each function draws into a new Figure (no pyplot state), or into the one it is given: a
notebook passes `plt.figure()` so that its display magic shows it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import pandas as pd
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

WIDTH_IN = 12.0
TICKER_HEIGHT_IN = 6.2
IBOV_HEIGHT_IN = 6.5
HEIGHT_RATIOS = (3.0, 1.0, 1.5)  # price, volume, monthly return
MAX_LABELLED_MONTHS = 24

CLOSE_COLOR = "#1f3b73"
MA5_COLOR = "#f28e2b"
MA20_COLOR = "#59a14f"
VOLUME_COLOR = "#8c9bb5"
UP_COLOR = "#2e7d32"
DOWN_COLOR = "#c62828"

CLOSE_LABEL = "close (adjusted)"
MA5_LABEL = "ma_5 (mean close, last 5 sessions)"
MA20_LABEL = "ma_20 (mean close, last 20 sessions)"
GAP_LABEL = "sessions missing from the lake"
GAP_COLOR = "#bdbdbd"
VOLUME_LABEL = "volume"
MONTHLY_LABEL = "monthly return"
CUMULATIVE_LABEL = "cumulative (compounded)"
DAILY_LABEL = "daily return"

QUOTES_NOTE = ("Source: quotes_daily_adjusted, quotes_daily and quotes_monthly (their compact copies). Prices, averages "
               "and volumes are adjusted for splits, reverse splits and bonus shares to each ticker's latest share basis "
               "in the lake (cash dividends are not taken out): an event draws no cliff. The lines break where the lake "
               "lacks B3 sessions (shaded); a moving average whose window spans such a gap is not drawn. Monthly "
               "return = the month's last close / the previous month's last close - 1, in one basis (to date for a "
               "month still in progress, to the chart's last session for a month the chart's end cuts: labelled "
               "\"to <day>\").")

NOTE_POINTS = 8
# A line of the note fits the figure: DejaVu Sans averages about 0.55 em a character, and a margin is left.
NOTE_CHARS_PER_LINE = int(WIDTH_IN * 72 * 0.9 / (NOTE_POINTS * 0.55))


def _prepare(fig: Figure | None, height_in: float) -> Figure:
    if fig is None:
        return Figure(figsize=(WIDTH_IN, height_in), layout="constrained")
    fig.set_size_inches(WIDTH_IN, height_in)
    if hasattr(fig, "set_layout_engine"):  # matplotlib >= 3.6
        fig.set_layout_engine("constrained")
    else:
        fig.set_constrained_layout(True)  # pyright: ignore[reportAttributeAccessIssue] - matplotlib < 3.6
    return fig


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _compact(value: float, _position: object = None) -> str:
    """12_300_000 -> 12.3M: volume ticks stay short."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def _day(value: Any) -> str:
    return pd.Timestamp(value).strftime("%d %b %Y")


def _signed_colors(values: Any) -> list[str]:
    """Green for a gain (or nothing), red for a loss."""
    return [DOWN_COLOR if v < 0 else UP_COLOR for v in values]


def segments(days: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """`days[column]` by date, with a NaN point just before each session that follows a gap
    (`gap_before`): matplotlib breaks a line at a NaN, so no line crosses sessions the lake lacks."""
    breaks = days.loc[days["gap_before"]]
    dates = pd.concat([days["date"], breaks["date"]], ignore_index=True)
    values = pd.concat([days[column], pd.Series(float("nan"), index=breaks.index)], ignore_index=True)
    # The NaN (second) sorts before the session it breaks at: a stable sort on (date, not NaN).
    order = pd.DataFrame({"date": dates, "real": values.notna()}).sort_values(["date", "real"], kind="stable").index
    return dates.loc[order].reset_index(drop=True), values.loc[order].reset_index(drop=True)


def gap_spans(days: pd.DataFrame) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """(last session before, first session after) of each gap in `days`."""
    previous = days["date"].shift(1)
    return [(before, after) for before, after, gap in zip(previous, days["date"], days["gap_before"])
            if gap and not pd.isna(before)]


def _price_axes(ax: Axes, ticker: str, days: pd.DataFrame) -> None:
    ax.plot(*segments(days, "close"), color=CLOSE_COLOR, linewidth=1.4, label=CLOSE_LABEL)
    ax.plot(*segments(days, "ma_5"), color=MA5_COLOR, linewidth=1.0, label=MA5_LABEL)
    ax.plot(*segments(days, "ma_20"), color=MA20_COLOR, linewidth=1.6, linestyle="--", label=MA20_LABEL)
    for number, (before, after) in enumerate(gap_spans(days)):
        ax.axvspan(float(mdates.date2num(before)), float(mdates.date2num(after)), color=GAP_COLOR, alpha=0.35, linewidth=0, label=GAP_LABEL if number == 0 else None)
    first, last = days.iloc[0], days.iloc[-1]
    change = last["close"] / first["close"] - 1
    ax.set_title(f"{ticker}: close {first['close']:.2f} \u2192 {last['close']:.2f} BRL "
                 f"({change:+.1%}), {_day(first['date'])} to {_day(last['date'])}",
                 loc="left", fontsize=11, fontweight="bold")
    ax.set_ylabel("price (BRL, latest\nshare basis)")
    ax.grid(True, axis="both", alpha=0.3)
    ax.legend(loc="best", ncol=2, fontsize=8, framealpha=0.85)
    ax.set_label(f"{ticker} price")


def _volume_axes(ax: Axes, ticker: str, days: pd.DataFrame) -> None:
    ax.bar(days["date"], days["volume"], width=0.8, color=VOLUME_COLOR, label=VOLUME_LABEL)
    ax.set_ylabel("volume (shares,\nlatest basis)")
    ax.yaxis.set_major_formatter(FuncFormatter(_compact))
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_label(f"{ticker} volume")


def _monthly_axes(ax: Axes, ticker: str, months: pd.DataFrame) -> None:
    months = months.dropna(subset=["monthly_return"])
    length_days = (months["month_end"] - months["month_start"]).dt.days + 1
    middle = months["month_start"] + pd.to_timedelta(length_days / 2, unit="D")
    ax.bar(middle, months["monthly_return"], width=length_days * 0.8,
           color=_signed_colors(months["monthly_return"]), label=MONTHLY_LABEL)
    if len(months) <= MAX_LABELLED_MONTHS:
        cut = months["cut_at"] if "cut_at" in months else pd.Series(pd.NaT, index=months.index)
        for x, value, cut_at in zip(middle, months["monthly_return"], cut):
            # A month cut by the range's end says to which day its return runs.
            text = f"{value:+.1%}" + ("" if pd.isna(cut_at) else f" to {cut_at:%d %b}")
            ax.annotate(text, (x, value), textcoords="offset points",
                        xytext=(0, 3 if value >= 0 else -3), ha="center",
                        va="bottom" if value >= 0 else "top", fontsize=7)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("monthly\nreturn")
    ax.margins(y=0.25)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_label(f"{ticker} monthly return")


def plot_quotes(daily: pd.DataFrame, monthly: pd.DataFrame, *, tickers: Sequence[str] | None = None,
                fig: Figure | None = None) -> Figure:
    """Per ticker: close with ma_5 and ma_20, volume bars and monthly return bars, on one date axis.

    `daily` is `b3_quotes.charts.frames.daily_frame`, `monthly` is `b3_quotes.charts.frames.monthly_frame`; tickers
    come in `tickers` order (default: as in `daily`), a ticker without sessions is left out.
    """
    order = list(tickers) if tickers is not None else list(dict.fromkeys(daily["ticker"]))
    quoted = set(daily["ticker"])
    present = [t for t in order if t in quoted]
    if not present:
        raise ValueError("no session to chart")
    fig = _prepare(fig, TICKER_HEIGHT_IN * len(present) + 0.6)
    grid = fig.add_gridspec(3 * len(present), 1, height_ratios=list(HEIGHT_RATIOS) * len(present))
    shared: Axes | None = None
    for number, ticker in enumerate(present):
        days = daily.loc[daily["ticker"] == ticker]
        axes = []
        for row in range(3):
            ax = fig.add_subplot(grid[3 * number + row], sharex=shared)
            shared = shared or ax
            axes.append(ax)
        _price_axes(axes[0], ticker, days)
        _volume_axes(axes[1], ticker, days)
        _monthly_axes(axes[2], ticker, monthly.loc[monthly["ticker"] == ticker])
        for ax in axes[:2]:
            ax.tick_params(labelbottom=False)
        _date_axis(axes[2])
    start, end = daily["date"].min(), daily["date"].max()
    bars = monthly.loc[monthly["ticker"].isin(present) & monthly["monthly_return"].notna()]
    assert shared is not None
    # A partial month at either end keeps its whole bar in view.
    left = min([start, *bars["month_start"]]) - pd.Timedelta(days=3)
    right = max([end, *bars["month_end"]]) + pd.Timedelta(days=3)
    shared.set_xlim(float(mdates.date2num(left)), float(mdates.date2num(right)))
    fig.axes[-1].set_xlabel("session date")
    fig.suptitle(f"B3 daily quotes: {', '.join(present)}, {_day(start)} to {_day(end)}",
                 fontsize=14, fontweight="bold")
    # Wrapped to the figure's width: one centred line of it ran past both edges of the PNG.
    fig.supxlabel(textwrap.fill(QUOTES_NOTE, NOTE_CHARS_PER_LINE), fontsize=NOTE_POINTS, color="dimgray")
    return fig


def plot_ibov_weighted_return(ibov: pd.DataFrame, *, fig: Figure | None = None) -> Figure:
    """The IBOV-weighted daily return (`b3_quotes.charts.frames.ibov_frame`) and its compounded total."""
    if ibov.empty:
        raise ValueError("no IBOV-weighted return to chart")
    fig = _prepare(fig, IBOV_HEIGHT_IN)
    grid = fig.add_gridspec(2, 1, height_ratios=[2.0, 1.3])
    total_ax = fig.add_subplot(grid[0])
    daily_ax = fig.add_subplot(grid[1], sharex=total_ax)
    returns = ibov["weighted_daily_return"]
    cumulative = (1.0 + returns).cumprod() - 1.0
    total_ax.plot(ibov["date"], cumulative, color=CLOSE_COLOR, linewidth=1.5, label=CUMULATIVE_LABEL)
    total_ax.axhline(0.0, color="black", linewidth=0.6)
    total_ax.set_ylabel("cumulative return")
    total_ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    total_ax.grid(True, alpha=0.3)
    total_ax.legend(loc="best", fontsize=8, framealpha=0.85)
    total_ax.tick_params(labelbottom=False)
    total_ax.set_title(f"compounded over the period: {cumulative.iloc[-1]:+.1%}", loc="left", fontsize=10)
    total_ax.set_label("IBOV-weighted cumulative return")

    daily_ax.bar(ibov["date"], returns, width=0.8, color=_signed_colors(returns), label=DAILY_LABEL)
    daily_ax.axhline(0.0, color="black", linewidth=0.6)
    daily_ax.set_ylabel("daily return")
    daily_ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    daily_ax.grid(True, axis="y", alpha=0.3)
    daily_ax.set_xlabel("session date")
    daily_ax.set_label("IBOV-weighted daily return")
    _date_axis(daily_ax)

    def span(column: str, fmt: str) -> str:
        low, high = ibov[column].min(), ibov[column].max()
        return format(low, fmt) if bool(low == high) else f"{format(low, fmt)}-{format(high, fmt)}"

    start, end = ibov["date"].min(), ibov["date"].max()
    fig.suptitle(f"IBOV-weighted daily return, {_day(start)} to {_day(end)}", fontsize=14, fontweight="bold")
    fig.supxlabel(
        f"Constituents in the lake: {span('constituents_quoted', '.0f')} quoted per session, "
        f"{span('weight_pct_covered', '.1f')} % of the index weight; weights of the IBOV portfolio of "
        f"{ibov['portfolio_dt'].iloc[-1]}, renormalised over the constituents quoted each session.",
        fontsize=8, color="dimgray")
    return fig
