"""The lake's tables, stated once: folder, partition keys, columns and their catalog types.

Standard library only: the Glue job, the Lambda and the bootstrap tooling all import it.
"""

from __future__ import annotations

from dataclasses import dataclass

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Glue / Hive type name: string, double, bigint, int, date, timestamp
    comment: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    folder: str  # relative to the lake root, no trailing slash
    partition_keys: tuple[Column, ...]
    columns: tuple[Column, ...]  # as stored in the Parquet files (partition keys excluded)
    description: str

    @property
    def prefix(self) -> str:
        return f"{self.folder}/"

    @property
    def partition_names(self) -> list[str]:
        return [c.name for c in self.partition_keys]

    def location(self, lake_root: str) -> str:
        return f"{lake_root.rstrip('/')}/{self.folder}/"

    def glue_table_input(self, lake_root: str) -> dict:
        """The `TableInput` of Glue's CreateTable/UpdateTable for this table under `lake_root`."""

        def columns(cols: tuple[Column, ...]) -> list[dict[str, str]]:
            return [{"Name": c.name, "Type": c.type, **({"Comment": c.comment} if c.comment else {})} for c in cols]

        return {
            "Name": self.name,
            "Description": self.description,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
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
    """`name:type name:type ...` -> columns."""
    return tuple(Column(*item.split(":")) for item in spec.split())


# A quote's numbers as the sources give them (Yahoo's names) -> as raw stores them, stated once.
# The job renames the prices once more for the refined tables (etl/transforms.py PRICE_RENAMES).
SOURCE_TO_RAW = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Adj Close": "adj_close",
                 "Volume": "volume"}
SOURCE_PRICES = ("Open", "High", "Low", "Close", "Adj Close")  # SOURCE_TO_RAW's prices, volume aside

DAY = (Column("dt", "string", "trading day, YYYY-MM-DD"),)
TICKER = Column("ticker", "string", "B3 code, e.g. PETR4")

RAW_QUOTES = Table(
    "quotes", "raw/quotes", DAY,
    _cols("trade_date:date ticker:string open:double high:double low:double close:double "
          "adj_close:double volume:bigint traded_value:double trades:bigint source:string "
          "source_symbol:string ingested_at:timestamp run_id:string"),
    "Raw daily quotes as the scraper landed them, one file per day and scrape",
)
IBOV_PORTFOLIO = Table(
    "ibov_portfolio", "raw/ibov_portfolio", DAY,
    _cols("portfolio_date:date ticker:string name:string type:string segment:string weight_pct:double "
          "theoretical_qty:bigint ingested_at:timestamp"),
    "Ibovespa portfolio snapshots from B3's index API, one file per portfolio day",
)
# dt is the row's day; a row whose day the calendar cannot place (future, outside its range,
# unreadable) goes under the run's day, so one bad file cannot make a folder per century.
QUOTE_ISSUES = Table(
    "quote_issues", "raw/quote_issues", DAY,
    _cols("trade_date:date ticker:string reason:string action:string detail:string open:double high:double "
          "low:double close:double adj_close:double volume:double source:string source_symbol:string "
          "ingested_at:timestamp run_id:string"),
    "Data-quality report: every quote with an issue, its reason, whether it was kept or rejected, "
    "and its values as the source gave them",
)
QUOTES_DAILY = Table(
    "quotes_daily", "refined/quotes_daily", (*DAY, TICKER),
    _cols("trade_date:date open_price:double high_price:double low_price:double close_price:double "
          "adj_close_price:double volume:bigint daily_return:double ma_5:double ma_20:double "
          "days_since_prev_session:int source:string ingested_at:timestamp"),
    "One row per ticker and session with return, moving averages and days since the previous session",
)
QUOTES_MONTHLY = Table(
    "quotes_monthly", "refined/quotes_monthly", (Column("month", "string", "YYYY-MM"), TICKER),
    _cols("sessions:int first_session:date last_session:date open_price:double high_price:double "
          "low_price:double close_price:double total_volume:bigint avg_close_price:double "
          "monthly_return:double"),
    "One row per ticker and calendar month: OHLC, volume, mean close and return",
)

YEAR = (Column("year", "string", "YYYY"),)
# Compact companions: the same rows as quotes_daily / quotes_monthly, one file per year sorted
# by ticker, rewritten by the job only for the years a run touches. Reading history costs a few
# objects instead of one per ticker and session: point queries over years here.
QUOTES_DAILY_COMPACT = Table(
    "quotes_daily_compact", "refined/quotes_daily_compact", YEAR,
    (*QUOTES_DAILY.columns, *QUOTES_DAILY.partition_keys),
    "quotes_daily's rows, one file per year sorted by ticker and day: fast to read over years",
)
QUOTES_MONTHLY_COMPACT = Table(
    "quotes_monthly_compact", "refined/quotes_monthly_compact", YEAR,
    (*QUOTES_MONTHLY.columns, *QUOTES_MONTHLY.partition_keys),
    "quotes_monthly's rows, one file per year sorted by ticker and month: fast to read over years",
)

TABLES: dict[str, Table] = {t.name: t for t in (RAW_QUOTES, QUOTES_DAILY, QUOTES_MONTHLY, IBOV_PORTFOLIO,
                                                      QUOTE_ISSUES, QUOTES_DAILY_COMPACT,
                                                      QUOTES_MONTHLY_COMPACT)}
