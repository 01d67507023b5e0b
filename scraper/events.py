"""Corporate events from every source, in one shape: the rows of the `corporate_events` table.

- Yahoo (yfinance actions, or the `Dividends` and `Stock Splits` columns of a CSV written by
  `Ticker.history()`): a split's value is new shares per old (2.0 for 2:1, 0.1 for a 10:1
  reverse split; a bonus reads as a split, Yahoo does not tell them apart). Yahoo's prices, and
  its dividends, come split-adjusted as of the download: `undo_splits` puts them back as traded.
- An events CSV (`--events-file`): `ticker,ex_date,kind,share_ratio,cash_per_share`.
- B3's listed-company payload (GetListedSupplementCompany, `--b3-events-file`), read as B3
  writes it: pt-BR numbers and dates, `factor` in percent of new shares for DESDOBRAMENTO and
  BONIFICACAO and the ratio itself for GRUPAMENTO, `lastDatePrior` the last session with the
  right (the ex date is the next session), one row per ISIN the company had.
- B3's cash-dividend history of a company (GetListedCashDividends, `--b3-events-file
  COMPANY=PATH`: the payload names neither the company nor an ISIN): `valueCash` per
  `quotedPerShares` shares, `typeStock` the paper, `lastDatePriorEx` the last session with the right.

Every reader returns EVENT_COLUMNS; bad input is a SourceDataError naming the file and line.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from b3_quotes.contract.tables import CASH_EVENT_KINDS, EVENT_KINDS, SHARE_EVENT_KINDS
from b3_quotes.contract.tickers import b3_code
from scraper.errors import SourceDataError, SourceUnavailable
from scraper.http_client import HttpClient, get_with_retries
from scraper.sources.base import read_csv_columns

EVENT_COLUMNS = ["ticker", "ex_date", "kind", "share_ratio", "cash_per_share", "source_label"]
EVENTS_FILE_COLUMNS = ["ticker", "ex_date", "kind", "share_ratio", "cash_per_share"]

# B3's labels -> our kinds. Stock events carry a factor; cash events a rate in R$ per share.
B3_STOCK_LABELS = {"DESDOBRAMENTO": "split", "GRUPAMENTO": "reverse_split", "BONIFICACAO": "bonus"}
B3_CASH_LABELS = {"DIVIDENDO": "cash_dividend", "JRS CAP PROPRIO": "interest_on_capital",
                  "RENDIMENTO": "cash_dividend"}


def empty_events() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in ("share_ratio", "cash_per_share") else "object")
                         for c in EVENT_COLUMNS})


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=EVENT_COLUMNS) if rows else empty_events()


def split_kind(ratio: float) -> str:
    """A Yahoo split's kind from its ratio: more shares is a split, fewer a reverse split."""
    return "split" if ratio > 1 else "reverse_split"


def yahoo_events(ticker: str, days: Iterable[dt.date], dividends: Iterable[float],
                 splits: Iterable[float]) -> pd.DataFrame:
    """Events from Yahoo's `Dividends` and `Stock Splits` columns (0 or empty: none that day).

    The dividends are as Yahoo gives them (split-adjusted as of the download): undo_splits
    puts them back in the basis of their day, with the prices.
    """
    rows = []
    for day, cash, ratio in zip(days, dividends, splits):
        if _given(ratio) and ratio != 1:
            rows.append({"ticker": ticker, "ex_date": day, "kind": split_kind(ratio), "share_ratio": float(ratio),
                         "cash_per_share": 0.0, "source_label": "Stock Splits"})
        if _given(cash):
            rows.append({"ticker": ticker, "ex_date": day, "kind": "cash_dividend", "share_ratio": 1.0,
                         "cash_per_share": float(cash), "source_label": "Dividends"})
    return _frame(rows)


def _given(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != 0


def later_splits_factor(days: pd.Series, ticker: pd.Series, events: pd.DataFrame) -> pd.Series:
    """Per row, the product of the share ratios of its ticker's splits (any share event) with an ex
    date after the row's day: what a price adjusted as of the download was divided by."""
    factor = pd.Series(1.0, index=days.index)
    shares = events[events["kind"].isin(SHARE_EVENT_KINDS)]
    for event in shares.itertuples():
        factor = factor.where(~((ticker == event.ticker) & (days < event.ex_date)), factor * event.share_ratio)
    return factor


def undo_splits(quotes: pd.DataFrame, events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Yahoo's split-adjusted download as traded: prices before a split's ex date times its ratio,
    the volume divided by it; the dividends likewise (Yahoo adjusts them too). Adj Close stays
    Yahoo's (adjusted for everything, by definition). Returns (quotes, events)."""
    if events.empty:
        return quotes, events
    factor = later_splits_factor(quotes["trade_date"], quotes["ticker"], events)
    quotes = quotes.copy()
    for column in ("open", "high", "low", "close"):
        quotes[column] = quotes[column] * factor
    quotes["volume"] = quotes["volume"] / factor
    events = events.copy()
    cash = events["kind"].isin(CASH_EVENT_KINDS)
    events.loc[cash, "cash_per_share"] = (events.loc[cash, "cash_per_share"]
                                          * later_splits_factor(events["ex_date"], events["ticker"], events)[cash])
    return quotes, events


def as_traded(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A Yahoo download's rows (ticker, trade_date, prices, optional `dividends` and `splits`) as
    traded, and the events its action columns list.

    Without action columns nothing can be undone: the rows are stored as given (the health
    report flags a jump that looks like an event)."""
    if "splits" not in frame and "dividends" not in frame:
        return frame, empty_events()
    zeros = pd.Series(0.0, index=frame.index)
    dividends, splits = frame.get("dividends", zeros).fillna(0.0), frame.get("splits", zeros).fillna(0.0)
    found = [yahoo_events(str(ticker), rows["trade_date"], dividends[rows.index], splits[rows.index])
             for ticker, rows in frame.groupby("ticker", sort=True)]
    events = pd.concat([e for e in found if not e.empty], ignore_index=True) if any(not e.empty for e in found) \
        else empty_events()
    return undo_splits(frame, events)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise SourceDataError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceDataError(f"{path}: cannot be read as UTF-8 text ({exc})") from exc


def read_events_file(path: Path) -> pd.DataFrame:
    """An events CSV: `ticker,ex_date,kind,share_ratio,cash_per_share`, ex_date YYYY-MM-DD,
    kind one of EVENT_KINDS; a share event's cash and a cash event's ratio may be empty."""
    frame = read_csv_columns(_text(path), path, "CSV", list(EVENTS_FILE_COLUMNS), ",".join(EVENTS_FILE_COLUMNS),
                             keep_default_na=False)
    rows = []
    for line, row in enumerate(frame.to_dict("records"), start=2):
        where = f"{path}:{line}"
        kind = row["kind"].strip()
        if kind not in EVENT_KINDS:
            raise SourceDataError(f"{where}: kind {kind!r} is not one of {', '.join(EVENT_KINDS)}")
        try:
            ex_date = dt.date.fromisoformat(row["ex_date"].strip())
        except ValueError:
            raise SourceDataError(f"{where}: bad ex_date {row['ex_date']!r} (expected YYYY-MM-DD)") from None
        ratio = _number(row["share_ratio"], 1.0, where, "share_ratio")
        cash = _number(row["cash_per_share"], 0.0, where, "cash_per_share")
        ticker = b3_code(row["ticker"])
        if not ticker:
            raise SourceDataError(f"{where}: invalid ticker {row['ticker']!r}: expected a B3 code such as PETR4")
        rows.append(checked_event({"ticker": ticker, "ex_date": ex_date, "kind": kind, "share_ratio": ratio,
                                   "cash_per_share": cash, "source_label": kind}, where))
    return _frame(rows)


def _number(text: str, default: float, where: str, name: str) -> float:
    text = text.strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise SourceDataError(f"{where}: bad {name} {text!r} (a number with a '.' decimal point)") from None
    return value


def checked_event(event: dict, where: str) -> dict:
    """An event whose numbers fit its kind, or a SourceDataError: a wrong ratio would bend every
    return around it, so it is refused rather than loaded."""
    ratio, cash, kind = event["share_ratio"], event["cash_per_share"], event["kind"]
    if not (math.isfinite(ratio) and ratio > 0):
        raise SourceDataError(f"{where}: share_ratio {ratio} must be a positive number (new shares per old)")
    if not (math.isfinite(cash) and cash >= 0):
        raise SourceDataError(f"{where}: cash_per_share {cash} must be zero or more")
    if kind == "split" and ratio <= 1 or kind == "reverse_split" and ratio >= 1 or kind == "bonus" and ratio <= 1:
        raise SourceDataError(f"{where}: a {kind} with share_ratio {ratio}: a split or bonus gives more shares "
                              "(ratio > 1, 2 for 2:1), a reverse split fewer (0.1 for 10:1)")
    if kind in CASH_EVENT_KINDS and (ratio != 1 or cash <= 0):
        raise SourceDataError(f"{where}: a {kind} needs cash_per_share > 0 and share_ratio 1 (or empty)")
    return event


def pt_br_number(text: str) -> float:
    """`1.234,56` -> 1234.56."""
    return float(text.strip().replace(".", "").replace(",", "."))


def pt_br_date(text: str) -> dt.date:
    """`15/04/2024` -> 2024-04-15."""
    return dt.datetime.strptime(text.strip(), "%d/%m/%Y").date()


# B3's ISINs of shares: BR + the 4-letter company code + the paper + 2 characters. The paper
# names the ticker's number: ACNOR (ON) 3, ACNPR (PN) 4, ACNPA (PNA) 5, ACNPB 6, ACNPC 7,
# ACNPD 8, CDAM (unit) 11. Older papers (BRBBASA04OR8) name no traded code.
ISIN_PAPERS = {"ACNOR": "3", "ACNPR": "4", "ACNPA": "5", "ACNPB": "6", "ACNPC": "7", "ACNPD": "8", "CDAM": "11"}


def ticker_of_isin(isin: str) -> str | None:
    """`BRBBASACNOR3` -> `BBAS3`; None for an ISIN of no traded share code."""
    isin = isin.strip().upper()
    if len(isin) != 12 or not isin.startswith("BR"):
        return None
    paper = next((p for p in ISIN_PAPERS if isin[6:6 + len(p)] == p), None)
    return None if paper is None else isin[2:6] + ISIN_PAPERS[paper]


# GetListedCashDividends' `typeStock` -> the ticker's number (as ISIN_PAPERS for an ISIN).
TYPE_STOCK_PAPERS = {"ON": "3", "PN": "4", "PNA": "5", "PNB": "6", "PNC": "7", "PND": "8", "UNT": "11"}


def read_b3_events_file(path: Path, next_session: Callable[[dt.date], dt.date],
                        ticker_of: Callable[[str], str | None] = ticker_of_isin,
                        company: str | None = None) -> pd.DataFrame:
    """A saved B3 answer: GetListedSupplementCompany's (parse_b3_supplement), or the
    GetListedCashDividends page of `company` (parse_b3_cash_dividends), told apart by its shape."""
    text = _text(path)
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        payload = None  # parse_b3_supplement names the file and the error
    if isinstance(payload, dict) and "results" in payload and "page" in payload:
        if company is None:
            raise SourceDataError(f"{path}: a GetListedCashDividends answer names no company: "
                                  f"give it as --b3-events-file COMPANY={path} (COMPANY as in PETR4's PETR)")
        return parse_b3_cash_dividends(payload, str(path), company, next_session)
    return parse_b3_supplement(text, str(path), next_session, ticker_of)


def _first_time(entry: dict, seen: set[str]) -> bool:
    """Whether `entry` is new to `seen` (now in it): the same entry twice (a page fetched twice, a
    payload merged) is one event, not twice its cash."""
    fingerprint = json.dumps(entry, sort_keys=True)
    if fingerprint in seen:
        return False
    seen.add(fingerprint)
    return True


def read_b3_events_arg(given: str, next_session: Callable[[dt.date], dt.date]) -> pd.DataFrame:
    """`--b3-events-file`'s value: PATH, or COMPANY=PATH (a B3 company code, 4 capitals) for a
    GetListedCashDividends answer, which names no company."""
    found = re.fullmatch(r"([A-Z]{4})=(.+)", given)
    company, path = (found.group(1), found.group(2)) if found else (None, given)
    return read_b3_events_file(Path(path), next_session, company=company)


def parse_b3_cash_dividends(payload: dict, where: str, company: str,
                            next_session: Callable[[dt.date], dt.date]) -> pd.DataFrame:
    """B3's GetListedCashDividends answer for `company` (`ABEV`): its cash events, every paper.

    The ticker is the company and `typeStock`'s number (ON 3, PN 4, UNT 11; another paper is left
    out); R$ per share is `valueCash` / `quotedPerShares` (B3 quoted some papers per 1,000 shares);
    the ex date is the session after `lastDatePriorEx`. Labels as in the supplement (DIVIDENDO,
    JRS CAP PROPRIO, RENDIMENTO); a row listed twice, field for field, is one event, and events of
    one ticker, day and kind add up (combine_same_day).
    """
    results = payload.get("results")
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise SourceDataError(f"{where}: not a GetListedCashDividends answer (`results`, a list of objects)")
    rows, seen = [], set[str]()
    for entry in results:
        label = str(entry.get("corporateAction", "")).strip()
        paper = TYPE_STOCK_PAPERS.get(str(entry.get("typeStock", "")).strip().upper())
        if label not in B3_CASH_LABELS or paper is None or not _first_time(entry, seen):
            continue
        entry_at = f"{where}: {label} of {company} {entry.get('typeStock')} ({entry.get('lastDatePriorEx')})"
        try:
            cash = pt_br_number(str(entry["valueCash"])) / pt_br_number(str(entry["quotedPerShares"]))
            last_with_right = pt_br_date(str(entry["lastDatePriorEx"]))
        except (KeyError, ValueError, ZeroDivisionError):
            raise SourceDataError(f"{entry_at}: unreadable valueCash, quotedPerShares or lastDatePriorEx") from None
        rows.append(checked_event({"ticker": company.upper() + paper, "ex_date": next_session(last_with_right),
                                   "kind": B3_CASH_LABELS[label], "share_ratio": 1.0, "cash_per_share": cash,
                                   "source_label": label}, entry_at))
    return combine_same_day(_frame(rows))


B3_SUPPLEMENT_URL = ("https://sistemaswebb3-listados.b3.com.br/listedCompaniesProxy/CompanyCall/"
                     "GetListedSupplementCompany/{params}")


def b3_supplement_url(company: str) -> str:
    """The API's URL of a company's events: its parameters are base64 JSON, as B3's site sends them."""
    params = json.dumps({"issuingCompany": company, "language": "pt-br"}, separators=(",", ":"))
    return B3_SUPPLEMENT_URL.format(params=base64.b64encode(params.encode()).decode())


def fetch_b3_events(http: HttpClient, tickers: Iterable[str], next_session: Callable[[dt.date], dt.date],
                    sleep: Callable[[float], None] = time.sleep) -> pd.DataFrame:
    """The events of `tickers` from B3's listed-company API, one request per company (PETR for
    PETR3 and PETR4); an empty answer is a company with no event. A refused or failed request is
    SourceUnavailable: nothing is loaded half."""
    wanted = sorted(set(tickers))
    frames = []
    for company in sorted({t[:4] for t in wanted if len(t) > 4}):
        url = b3_supplement_url(company)
        status, body = get_with_retries(http, url, sleep=sleep)
        if status != 200:
            raise SourceUnavailable(f"B3's listed-company API answered HTTP {status} for {company} ({url})")
        if body.strip():
            frames.append(parse_b3_supplement(body.decode("utf-8-sig"), f"B3 events of {company}", next_session))
    found = pd.concat([f for f in frames if not f.empty], ignore_index=True) if any(not f.empty for f in frames) \
        else empty_events()
    return found[found["ticker"].isin(wanted)].reset_index(drop=True)


def parse_b3_supplement(text: str, where: str, next_session: Callable[[dt.date], dt.date],
                        ticker_of: Callable[[str], str | None] = ticker_of_isin) -> pd.DataFrame:
    """B3's GetListedSupplementCompany answer (a list of companies, or one company object).

    `ticker_of` names the traded paper of an ISIN (COTAHIST's CODISI), None for the others: B3
    lists an event once per ISIN the company has had, and only the traded paper's rows are kept.
    `next_session(day)`: the B3 session after `day` (the ex date after lastDatePrior).
    Labels that change no price basis and pay nothing we know (CIS RED CAP, SUBSCRICAO...) are
    left out; a known label with an unreadable number stops the load with `where` and the label.
    """
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceDataError(f"{where}: not JSON ({exc.msg} at line {exc.lineno})") from None
    companies = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(c, dict) for c in companies):
        raise SourceDataError(f"{where}: not a GetListedSupplementCompany answer (a list of company objects)")
    rows, seen = [], set[str]()
    for company in companies:
        for kind_map, entries, field in ((B3_STOCK_LABELS, company.get("stockDividends") or [], "factor"),
                                         (B3_CASH_LABELS, company.get("cashDividends") or [], "rate")):
            for entry in entries:
                label = str(entry.get("label", "")).strip()
                ticker = ticker_of(str(entry.get("isinCode", "")))
                if label not in kind_map or ticker is None or not _first_time(entry, seen):
                    continue
                entry_at = f"{where}: {label} of {entry.get('isinCode')} ({entry.get('lastDatePrior')})"
                try:
                    value, last_with_right = pt_br_number(str(entry[field])), pt_br_date(str(entry["lastDatePrior"]))
                except (KeyError, ValueError):
                    raise SourceDataError(f"{entry_at}: unreadable {field} or lastDatePrior") from None
                kind = kind_map[label]
                ratio = 1.0 if field == "rate" else (value if kind == "reverse_split" else 1 + value / 100)
                rows.append(checked_event({"ticker": ticker, "ex_date": next_session(last_with_right), "kind": kind,
                                           "share_ratio": ratio, "cash_per_share": value if field == "rate" else 0.0,
                                           "source_label": label}, entry_at))
    return combine_same_day(_frame(rows))


def combine_same_day(events: pd.DataFrame) -> pd.DataFrame:
    """One row per ticker, ex date and kind: two dividends of one day are paid together (cash
    added), two share events of one kind on one day multiply. The table keeps one such row per
    load, so the latest load of a day's events replaces the earlier one whole."""
    if events.empty:
        return events
    grouped = events.groupby(["ticker", "ex_date", "kind"], sort=True)
    return grouped.agg(share_ratio=("share_ratio", "prod"), cash_per_share=("cash_per_share", "sum"),
                       source_label=("source_label", lambda s: " + ".join(sorted(set(s))))).reset_index()[EVENT_COLUMNS]
