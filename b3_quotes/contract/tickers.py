"""What a B3 ticker is, as every source and command reads it: the B3 code, Yahoo's symbol for it,
and the Ibovespa index's names. Standard library only."""

from __future__ import annotations

# The Ibovespa, as the lake names it and as Yahoo does (`^BVSP`; some files drop the caret).
INDEX_TICKER = "IBOV"
INDEX_YAHOO_SYMBOLS = ("^BVSP", "BVSP")
# Yahoo's suffix for B3's listings: PETR4 is PETR4.SA.
YAHOO_SUFFIX = ".SA"


def b3_code(symbol: str) -> str:
    """`petr4.sa` -> `PETR4`, `^BVSP` -> `IBOV`: a Yahoo symbol or a B3 code, as the lake names it.

    Returns "" when what is left is no code (empty, or not letters and digits)."""
    code = symbol.strip().upper().removesuffix(YAHOO_SUFFIX)
    if code in INDEX_YAHOO_SYMBOLS:
        return INDEX_TICKER
    return code if code.isalnum() else ""


def yahoo_symbol(ticker: str) -> str:
    """The Yahoo symbol of a B3 code: `PETR4` -> `PETR4.SA`, `IBOV` -> `^BVSP`."""
    return INDEX_YAHOO_SYMBOLS[0] if ticker == INDEX_TICKER else f"{ticker}{YAHOO_SUFFIX}"
