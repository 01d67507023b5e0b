"""B3's IBOV portfolio of the day (GetPortfolioDay): the constituents and their weights."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Callable

import pandas as pd

from scraper.errors import SourceDataError, SourceUnavailable
from scraper.http_client import HttpClient, get_with_retries

PORTFOLIO_URL = "https://sistemaswebb3-listados.b3.com.br/indexProxy/indexCall/GetPortfolioDay/{params}"
PORTFOLIO_COLUMNS = ["ticker", "name", "type", "segment", "weight_pct", "theoretical_qty", "portfolio_date"]


def portfolio_url(index: str = "IBOV", language: str = "en-us") -> str:
    params = {"pageNumber": 1, "pageSize": 9999, "language": language, "index": index, "segment": 2}
    encoded = base64.b64encode(json.dumps(params, separators=(",", ":")).encode()).decode()
    return PORTFOLIO_URL.format(params=encoded)


def parse_b3_number(text: str, language: str) -> float:
    """`1,243,177,587` / `2.663` (en-us) or `1.243.177.587` / `2,663` (pt-br)."""
    thousands, decimal = (",", ".") if language == "en-us" else (".", ",")
    return float(text.strip().replace(thousands, "").replace(decimal, "."))


def parse_portfolio(body: bytes, language: str = "en-us") -> pd.DataFrame:
    """GetPortfolioDay's JSON to one row per constituent."""
    try:
        doc = json.loads(body)
        header, results = doc["header"], doc["results"]
        if "date" not in header and "reductor" in header:
            raise SourceDataError("a GetTheoricalPortfolio response (the next rebalancing's theoretical "
                                  "portfolio) carries no portfolio date: save B3's GetPortfolioDay answer instead")
        month_first = language == "en-us"
        date = dt.datetime.strptime(header["date"], "%m/%d/%y" if month_first else "%d/%m/%y").date()
        rows = [{
            "ticker": r["cod"].strip(),
            "name": r["asset"].strip(),
            "type": " ".join(r["type"].split()),
            "segment": r.get("segment", "").strip(),
            "weight_pct": parse_b3_number(r["part"], language),
            "theoretical_qty": int(parse_b3_number(r["theoricalQty"], language)),
            "portfolio_date": date,
        } for r in results]
    except (KeyError, TypeError, ValueError) as exc:
        what = f"no field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise SourceDataError(f"not a GetPortfolioDay response ({what})") from exc
    if not rows:
        raise SourceDataError("the IBOV portfolio response lists no constituent")
    return pd.DataFrame(rows, columns=PORTFOLIO_COLUMNS)


def fetch_ibov_portfolio(http: HttpClient, *, sleep: Callable[[float], None] = time.sleep,
                         language: str = "en-us") -> pd.DataFrame:
    status, body = get_with_retries(http, portfolio_url("IBOV", language), sleep=sleep)
    if status != 200:
        raise SourceUnavailable(f"B3 index API answered HTTP {status} for the IBOV portfolio")
    return parse_portfolio(body, language)
