"""The table definitions: what Glue's CreateTable receives."""

from __future__ import annotations

from b3_quotes.contract.tables import TABLES


def test_tables_are_the_datasets_with_their_partition_keys():
    assert {name: (t.folder, t.partition_names) for name, t in TABLES.items()} == {
        "quotes": ("raw/quotes", ["dt"]),
        "ibov_portfolio": ("raw/ibov_portfolio", ["dt"]),
        "quotes_daily": ("refined/quotes_daily", ["dt", "ticker"]),
        "quotes_monthly": ("refined/quotes_monthly", ["month", "ticker"]),
        "quote_issues": ("raw/quote_issues", ["dt"]),
        "quotes_daily_compact": ("refined/quotes_daily_compact", ["year"]),
        "quotes_monthly_compact": ("refined/quotes_monthly_compact", ["year"]),
        "corporate_events": ("raw/corporate_events", ["dt"]),
    }


def test_glue_table_input_is_external_parquet_at_the_lake_folder():
    table_input = TABLES["quotes_daily"].glue_table_input("s3://my-lake")
    storage = table_input["StorageDescriptor"]
    assert storage["Location"] == "s3://my-lake/refined/quotes_daily/"
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert table_input["TableType"] == "EXTERNAL_TABLE"
    assert [k["Name"] for k in table_input["PartitionKeys"]] == ["dt", "ticker"]
    columns = {c["Name"]: c["Type"] for c in storage["Columns"]}
    assert columns["close_price"] == "double" and columns["volume"] == "bigint"
    assert columns["days_since_prev_session"] == "int" and "ticker" not in columns


def test_no_column_name_needs_quoting_in_athena():
    for table in TABLES.values():
        for column in (*table.columns, *table.partition_keys):
            assert column.name.isidentifier() and column.name == column.name.lower(), (table.name, column.name)


def test_a_quotes_numbers_are_raw_quotes_and_quote_issues_columns_in_that_order():
    from b3_quotes.contract.tables import QUOTE_ISSUES, QUOTE_NUMBERS, RAW_QUOTES

    assert QUOTE_NUMBERS == ("open", "high", "low", "close", "adj_close", "volume")
    for table in (RAW_QUOTES, QUOTE_ISSUES):
        names = [c.name for c in table.columns]
        assert [n for n in names if n in QUOTE_NUMBERS] == list(QUOTE_NUMBERS), table.name


def test_compact_tables_hold_the_partitioned_tables_columns_and_keys():
    daily = TABLES["quotes_daily"]
    assert [c.name for c in TABLES["quotes_daily_compact"].columns] == [
        *(c.name for c in daily.columns), "dt", "ticker"]
    monthly = TABLES["quotes_monthly"]
    assert (daily.compact, monthly.compact) == (TABLES["quotes_daily_compact"], TABLES["quotes_monthly_compact"])
    assert [t.compact.folder for t in (daily, monthly)] == ["refined/quotes_daily_compact",  # pyright: ignore[reportOptionalMemberAccess]
                                                             "refined/quotes_monthly_compact"]
    assert (daily.compact_key, monthly.compact_key) == (["ticker", "dt"], ["ticker", "month"])


def test_every_refined_table_has_one_rule_in_the_jobs_list_in_the_contracts_order():
    from b3_quotes.contract.tables import REFINED_TABLES
    from etl.transforms import REFINEMENTS

    assert [r.table.name for r in REFINEMENTS] == [t.name for t in REFINED_TABLES] == ["quotes_daily", "quotes_monthly"]
    assert all(t.compact is not None for t in REFINED_TABLES)
    assert [t.name for t in TABLES.values() if t.compact is not None] == ["quotes_daily", "quotes_monthly"]


def test_docs_tables_page_is_the_contracts_and_every_column_says_what_it_holds():
    from b3_quotes.contract.tables import TABLES, markdown
    from tests.conftest import REPO

    assert (REPO / "docs" / "tables.md").read_text() == markdown(), "run: python -m b3_quotes.contract.tables > docs/tables.md"
    for table in TABLES.values():
        for column in (*table.columns, *table.partition_keys):
            assert column.comment, f"{table.name}.{column.name} has no comment"
            assert len(column.comment) <= 255, f"{table.name}.{column.name}: Glue takes 255 characters"
    assert "| `ma_20` | double | mean of the last 20 sessions' closes, this one included, each in this session's basis" in markdown()
