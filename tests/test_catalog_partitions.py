"""What the Glue Data Catalog holds of partitions: none of the day-, month- and ticker-partitioned
tables (Athena projects them), one a year of the compact tables (the crawler's)."""

from __future__ import annotations

from b3_quotes.contract.tables import TABLES


def test_athena_projects_every_day_month_and_ticker_partition_so_the_catalog_holds_none_of_them():
    """Partition projection (Athena's docs: no catalog partitions; Hive key=value folders need no
    location template). The yearly compact tables stay catalogued: a partition a year, the crawler's."""
    daily = TABLES["quotes_daily"].glue_table_input("s3://my-lake", "2019-01-02")["Parameters"]
    assert daily == {
        "classification": "parquet", "EXTERNAL": "TRUE", "projection.enabled": "true",
        "projection.dt.type": "date", "projection.dt.format": "yyyy-MM-dd", "projection.dt.range": "2019-01-02,NOW",
        "projection.dt.interval": "1", "projection.dt.interval.unit": "DAYS", "projection.ticker.type": "injected"}
    monthly = TABLES["quotes_monthly"].glue_table_input("s3://my-lake", "2019-01-02")["Parameters"]
    assert (monthly["projection.month.format"], monthly["projection.month.range"],
            monthly["projection.month.interval.unit"]) == ("yyyy-MM", "2019-01,NOW", "MONTHS")
    raw = TABLES["quotes"].glue_table_input("s3://my-lake", "2019-01-02")["Parameters"]
    assert raw["projection.dt.range"] == "2019-01-02,NOW" and "projection.ticker.type" not in raw
    assert {name for name, t in TABLES.items() if not t.projected} == {"quotes_daily_compact", "quotes_monthly_compact"}
    assert "projection.enabled" not in TABLES["quotes_daily_compact"].glue_table_input("s3://my-lake", "2019-01-02")[
        "Parameters"]
