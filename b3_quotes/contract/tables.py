"""The lake's tables, stated once: folder, partition keys, columns and their catalog types.

Standard library only: the Glue job, the Lambda and the bootstrap tooling all import it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Glue / Hive type name: string, double, bigint, int, date, timestamp
    comment: str = ""


# Athena's partition projection per partition key (AWS: "Partition projection with Amazon Athena";
# no custom storage.location.template: the folders are Hive's key=value). Days and months are
# dates from the deployment's history start to NOW; a ticker is injected: the query gives it, and
# Athena reads exactly that ticker's folders. The catalog then holds no partition of these
# tables, however many ticker-sessions the lake has; a year (the compact tables) is not projected:
# the crawler registers one partition a year.
PROJECTIONS: dict[str, dict[str, str]] = {
    "dt": {"type": "date", "format": "yyyy-MM-dd", "range": "{day},NOW", "interval": "1", "interval.unit": "DAYS"},
    "month": {"type": "date", "format": "yyyy-MM", "range": "{month},NOW", "interval": "1",
              "interval.unit": "MONTHS"},
    "ticker": {"type": "injected"},
}


@dataclass(frozen=True)
class Table:
    name: str
    folder: str  # relative to the lake root, no trailing slash
    partition_keys: tuple[Column, ...]
    columns: tuple[Column, ...]  # as stored in the Parquet files (partition keys excluded)
    description: str
    # A refined table's yearly companion: the same rows, one file a year sorted by compact_key.
    compact: Table | None = None

    @property
    def prefix(self) -> str:
        return f"{self.folder}/"

    @property
    def partition_names(self) -> list[str]:
        return [c.name for c in self.partition_keys]

    @property
    def compact_key(self) -> list[str]:
        """A row's key in the compact companion, its sort order: (ticker, period), the partition keys reversed."""
        return list(reversed(self.partition_names))

    def location(self, lake_root: str) -> str:
        return f"{lake_root.rstrip('/')}/{self.folder}/"

    @property
    def projected(self) -> bool:
        """Athena computes this table's partitions (partition projection): the catalog holds none."""
        return all(c.name in PROJECTIONS for c in self.partition_keys)

    def projection_parameters(self, history_start: str) -> dict[str, str]:
        """The table parameters that turn on Athena's partition projection (none when not projected).

        Dates from `history_start` (YYYY-MM-DD) to the day of the query; tickers injected: a query
        of a table with a ticker key names its ticker with an equality (`WHERE ticker = 'PETR4'`).
        """
        if not self.projected:
            return {}
        parameters = {"projection.enabled": "true"}
        for column in self.partition_keys:
            for key, value in PROJECTIONS[column.name].items():
                parameters[f"projection.{column.name}.{key}"] = value.format(
                    day=history_start, month=history_start[:7])
        return parameters

    def glue_table_input(self, lake_root: str, history_start: str = "") -> dict:
        """The `TableInput` of Glue's CreateTable/UpdateTable for this table under `lake_root`, with
        its partition projection from `history_start` (YYYY-MM-DD) when given."""

        def columns(cols: tuple[Column, ...]) -> list[dict[str, str]]:
            return [{"Name": c.name, "Type": c.type, **({"Comment": c.comment} if c.comment else {})} for c in cols]

        return {
            "Name": self.name,
            "Description": self.description,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE",
                           **(self.projection_parameters(history_start) if history_start else {})},
            "PartitionKeys": columns(self.partition_keys),
            "StorageDescriptor": {
                "Columns": columns(self.columns),
                "Location": self.location(lake_root),
                "InputFormat": PARQUET_INPUT_FORMAT,
                "OutputFormat": PARQUET_OUTPUT_FORMAT,
                "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
            },
        }


def _cols(spec: str) -> tuple[Column, ...]:
    """One column a line, `name type what it holds` -> columns."""
    return tuple(Column(*line.split(None, 2)) for line in spec.strip().splitlines())


DAY = (Column("dt", "string", "the day, YYYY-MM-DD (a raw file's scrape day for rows the calendar cannot place)"),)
TICKER = Column("ticker", "string", "B3 code, e.g. PETR4")

RAW_QUOTES = Table(
    "quotes", "raw/quotes", DAY,
    _cols("""
        trade_date date the session's day (São Paulo)
        ticker string B3 code, e.g. PETR4 (IBOV for the Ibovespa index)
        open double first trade's price, R$
        high double highest price of the session, R$
        low double lowest price of the session, R$
        close double last trade's price, R$
        adj_close double close adjusted for splits and dividends (Yahoo only; null for B3's own files)
        volume bigint shares traded
        traded_value double R$ traded (B3 only)
        trades bigint number of trades (B3 only)
        source string where the row came from: yfinance, b3, sample, csv
        source_symbol string the source's own code (PETR4.SA, or the COTAHIST code of the contract)
        ingested_at timestamp when the scraper fetched it (UTC)
        run_id string the scrape run that wrote it (its manifest is raw/_manifests/<run_id>.json)
        dismes int COTAHIST's distribution number (DISMES): B3 adds one on each event's ex date (null for other sources)
        prev_b3_session date the B3 session before trade_date in the BVMF calendar (null outside it, or in older files)
    """),
    "Raw daily quotes as traded (a Yahoo download's own splits undone), one file per day and scrape",
)
IBOV_PORTFOLIO = Table(
    "ibov_portfolio", "raw/ibov_portfolio", DAY,
    _cols("""
        portfolio_date date the day the portfolio is for
        ticker string B3 code of the constituent
        name string the company's short name
        type string share class (ON, PN, UNT, ...)
        segment string B3's listing segment (NM, N1, N2, ...)
        weight_pct double weight in the index, percent
        theoretical_qty bigint theoretical quantity in the index
        ingested_at timestamp when the snapshot was fetched (UTC)
    """),
    "Ibovespa portfolio snapshots from B3's index API, one file per portfolio day",
)
# dt is the row's day; a row whose day the calendar cannot place (future, outside its range,
# unreadable) goes under the run's day, so one bad file cannot make a folder per century.
QUOTE_ISSUES = Table(
    "quote_issues", "raw/quote_issues", DAY,
    _cols("""
        trade_date date the quote's day as the source gave it (null when unreadable)
        ticker string B3 code
        reason string the check that found the issue, e.g. open_close_outside_range, future_date
        action string kept (loaded as it came) or rejected (not loaded)
        detail string the numbers that differ, in words
        open double open as the source gave it
        high double high as the source gave it
        low double low as the source gave it
        close double close as the source gave it
        adj_close double adjusted close as the source gave it
        volume double volume as the source gave it (a double: inf and -5 are kept as they came)
        source string where the row came from
        source_symbol string the source's own code
        ingested_at timestamp when the scraper fetched it (UTC)
        run_id string the scrape run that found it
    """),
    "Data-quality report: every quote with an issue, its reason, whether it was kept or rejected, "
    "and its values as the source gave them",
)
# A quote's numbers, with raw's names: what every source returns, validation checks, raw and
# quote_issues store (tests/test_tables.py holds them to both tables). The job renames the prices
# for the refined tables (etl/transforms.py PRICE_RENAMES).
QUOTE_NUMBERS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close", "volume")

# The kinds of event; the share kinds change the price basis (share_ratio), the cash kinds pay.
SHARE_EVENT_KINDS: tuple[str, ...] = ("split", "reverse_split", "bonus")
CASH_EVENT_KINDS: tuple[str, ...] = ("cash_dividend", "interest_on_capital")
EVENT_KINDS: tuple[str, ...] = (*SHARE_EVENT_KINDS, *CASH_EVENT_KINDS, "other")
# dt is the ex date: a run reads the events of the days it reads, by folder name.
CORPORATE_EVENTS = Table(
    "corporate_events", "raw/corporate_events",
    (Column("dt", "string", "the ex date, YYYY-MM-DD"),),
    _cols("""
        ticker string B3 code, e.g. BBAS3
        ex_date date the first session without the right (the day the price basis changes or the cash leaves it)
        kind string split, reverse_split, bonus, cash_dividend, interest_on_capital or other
        share_ratio double new shares per old share: 2 for a 2:1 split, 0.1 for a 10:1 reverse split, 1.05 for a 5 % bonus (1 for cash events)
        cash_per_share double R$ paid per share held on the ex date's eve (0 for share events; JCP gross of tax)
        source string where the event came from: yfinance, csv, sample, events_file, b3
        source_label string the source's own name for it (DESDOBRAMENTO, JRS CAP PROPRIO, Stock Splits ...)
        ingested_at timestamp when it was loaded (UTC): of one ticker, ex date and kind the latest load wins
        run_id string the run that loaded it
    """),
    "Corporate events (splits, reverse splits, bonus shares, dividends, JCP), one file per ex date and load",
)
YEAR = (Column("year", "string", "YYYY"),)


def with_compact(table: Table, description: str) -> Table:
    """`table` with its compact companion: the same rows, one file per year sorted by ticker and
    period, rewritten by the job only for the years a run touches. Reading history costs a few
    objects instead of one per ticker and session: point queries over years go there."""
    compact = Table(f"{table.name}_compact", f"{table.folder}_compact", YEAR,
                    (*table.columns, *table.partition_keys), description)
    return replace(table, compact=compact)


QUOTES_DAILY = with_compact(Table(
    "quotes_daily", "refined/quotes_daily", (*DAY, TICKER),
    _cols("""
        trade_date date the session's day
        open_price double raw open, renamed
        high_price double raw high, renamed
        low_price double raw low, renamed
        close_price double raw close, renamed
        adj_close_price double raw adj_close, renamed (null for B3 rows)
        volume bigint shares traded
        daily_return double close / the previous session's close in today's basis - 1 (the close divided by the share_ratio of events ex today); null on a ticker's first session and across a gap
        total_return double daily_return with the cash paid today: (close + cash_per_share) / the previous close in today's basis - 1; null like daily_return
        ma_5 double mean of the last 5 sessions' closes, this one included, each in this session's basis (null until it has 5)
        ma_20 double mean of the last 20 sessions' closes, this one included, each in this session's basis (null until it has 20)
        days_since_prev_session int calendar days since the ticker's previous session (null on its first)
        gap_before boolean true when the B3 calendar has a session between the ticker's previous session in the lake and this one (the returns are null then); null when raw lacks the calendar's day
        share_ratio double new shares per old of the events ex on this session or since the previous one (1 when none): the basis change daily_return undoes
        cash_per_share double R$ per share paid by the events ex on this session or since the previous one (0 when none)
        source string where the winning raw row came from
        ingested_at timestamp when that row was fetched: the latest ingestion of a ticker and day wins
    """),
    "One row per ticker and session with return, moving averages and days since the previous session",
), "quotes_daily's rows, one file per year sorted by ticker and day: fast to read over years")
QUOTES_MONTHLY = with_compact(Table(
    "quotes_monthly", "refined/quotes_monthly", (Column("month", "string", "YYYY-MM"), TICKER),
    _cols("""
        sessions int the ticker's sessions in the month
        first_session date the month's first session
        last_session date the month's last session
        open_price double the first session's open, in the basis of the month's last session (divided by the share_ratio of the month's later events)
        high_price double the month's highest high, each in the basis of the month's last session
        low_price double the month's lowest low, each in the basis of the month's last session
        close_price double the last session's close, as traded
        total_volume bigint shares traded in the month, as traded
        avg_close_price double mean close over the month's sessions, each in the basis of the month's last session
        monthly_return double close / the previous month's close in this month's basis - 1 (null on a ticker's first month)
        monthly_total_return double monthly_return with the month's cash reinvested on its ex dates: (1 + monthly_return) x the product of (1 + cash / close) over the month's sessions - 1
    """),
    "One row per ticker and calendar month: OHLC, volume, mean close and return",
), "quotes_monthly's rows, one file per year sorted by ticker and month: fast to read over years")
# The refined tables, in the order the job builds them (monthly from daily), each with its compact companion.
REFINED_TABLES: tuple[Table, ...] = (QUOTES_DAILY, QUOTES_MONTHLY)


def compact_of(table: Table) -> Table:
    """A refined table's compact companion (ValueError for a table without one)."""
    if table.compact is None:
        raise ValueError(f"{table.name} has no compact companion")
    return table.compact


QUOTES_DAILY_COMPACT, QUOTES_MONTHLY_COMPACT = (compact_of(t) for t in REFINED_TABLES)



TABLES: dict[str, Table] = {t.name: t for t in (RAW_QUOTES, QUOTES_DAILY, QUOTES_MONTHLY, IBOV_PORTFOLIO,
                                                      QUOTE_ISSUES, QUOTES_DAILY_COMPACT,
                                                      QUOTES_MONTHLY_COMPACT, CORPORATE_EVENTS)}


@dataclass(frozen=True)
class View:
    """A view over the tables, in SQL that DuckDB and Athena both run: computed at read time."""

    name: str
    sql: str
    description: str
    columns: tuple[Column, ...]


# Later events' factor per row, each a product over the ticker's later sessions: exp(sum(ln))
# is the product in SQL both engines have. A cash event's factor is Yahoo's: 1 - cash / the
# previous close in the ex date's basis (a cash >= that close is no factor: left out).
_LATER = "OVER (PARTITION BY ticker ORDER BY trade_date ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)"
_PREVIOUS = "LAG(close_price) OVER (PARTITION BY ticker ORDER BY trade_date)"
QUOTES_DAILY_ADJUSTED = View(
    "quotes_daily_adjusted",
    f"""SELECT ticker, trade_date,
       open_price / later_ratio AS open, high_price / later_ratio AS high, low_price / later_ratio AS low,
       close_price / later_ratio AS close, volume * later_ratio AS volume,
       close_price / later_ratio * later_cash AS total_return_close, dt
FROM (
    SELECT f.*,
           COALESCE(EXP(SUM(LN(share_ratio)) {_LATER}), 1.0) AS later_ratio,
           COALESCE(EXP(SUM(LN(cash_factor)) {_LATER}), 1.0) AS later_cash
    FROM (
        SELECT d.*,
               CASE WHEN cash_per_share > 0 AND cash_per_share < {_PREVIOUS} / share_ratio
                    THEN 1 - cash_per_share / ({_PREVIOUS} / share_ratio) END AS cash_factor
        FROM quotes_daily_compact d
    ) f
) a""",
    "quotes_daily back-adjusted to each ticker's latest basis at read time: splits, reverse splits and bonus "
    "shares undone in the prices and volume, and cash too in total_return_close (Yahoo's Adj Close idea)",
    _cols("""
        ticker string B3 code
        trade_date date the session's day
        open double open in the ticker's latest share basis
        high double high in the latest basis
        low double low in the latest basis
        close double close in the latest basis: the traded close divided by the share_ratio of every later event
        volume double shares traded, in the latest basis (times those ratios)
        total_return_close double close also adjusted for later cash (times 1 - cash / previous close of each later ex date)
        dt string the session's day, YYYY-MM-DD
    """),
)
VIEWS: dict[str, View] = {v.name: v for v in (QUOTES_DAILY_ADJUSTED,)}

# The crawler crawls the tables Athena does not project (the compact ones: a partition a year),
# so S3 sends its queue no event of the others (millions of ticker-session files after a backfill).
CRAWLED_TABLES: dict[str, Table] = {name: t for name, t in TABLES.items() if not t.projected}


def markdown() -> str:
    """docs/tables.md: every table, where it lives, and what each column holds (`python -m b3_quotes.contract.tables`)."""
    out = ["# The lake's tables", "",
           "Generated from `b3_quotes/contract/tables.py` by `python -m b3_quotes.contract.tables > docs/tables.md`; a test fails",
           "when the two differ. The Glue catalog (bootstrap) and the DuckDB views are made from the same",
           "definitions; the comments below are the columns' comments in Glue too.", ""]
    for table in TABLES.values():
        keys = ", ".join(f"`{c.name}=`" for c in table.partition_keys)
        out += [f"## `{table.name}`", "", f"{table.description}. Folder `{table.folder}/`, partitioned by {keys}.",
                "", "| column | type | what it holds |", "|---|---|---|"]
        out += [f"| `{c.name}` | {c.type} | {c.comment} |" for c in table.columns]
        out += [f"| `{c.name}` (partition) | {c.type} | {c.comment} |" for c in table.partition_keys]
        out.append("")
    for view in VIEWS.values():
        out += [f"## `{view.name}` (view)", "", f"{view.description}. Computed when read from the refined rows "
                "(its SQL: `b3_quotes/contract/tables.py`), so nothing is rewritten when an event arrives.", "",
                "| column | type | what it holds |", "|---|---|---|"]
        out += [f"| `{c.name}` | {c.type} | {c.comment} |" for c in view.columns]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown(), end="")
