"""The job registers exactly the partitions it wrote in the Glue Data Catalog (moto's, in-process)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from contract.tables import QUOTES_DAILY, QUOTES_MONTHLY, TABLES
from etl.catalog_partitions import CatalogRegistrationError, register_table_partitions, register_written_partitions

DATABASE = "b3_quotes"
LAKE = "s3://b3-test-lake"


@pytest.fixture
def glue(aws_credentials):
    with mock_aws():
        client = boto3.client("glue", region_name="us-east-1")
        client.create_database(DatabaseInput={"Name": DATABASE})
        for table in TABLES.values():
            client.create_table(DatabaseName=DATABASE, TableInput=table.glue_table_input(LAKE))
        yield client


def partitions(glue, table: str) -> dict[tuple[str, ...], dict]:
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=DATABASE, TableName=table)
    return {tuple(p["Values"]): p["StorageDescriptor"] for page in pages for p in page["Partitions"]}


def quiet(message: str) -> None:
    pass


def test_registers_exactly_the_partitions_a_run_wrote(glue):
    written = {"quotes_daily": ["dt=2024-01-02/ticker=PETR4", "dt=2024-01-02/ticker=VALE3"],
               "quotes_monthly": ["month=2024-01/ticker=PETR4"]}
    assert register_written_partitions(glue, DATABASE, LAKE, written, log=quiet) == {
        "quotes_daily": 2, "quotes_monthly": 1}
    daily = partitions(glue, "quotes_daily")
    assert sorted(daily) == [("2024-01-02", "PETR4"), ("2024-01-02", "VALE3")]
    assert daily[("2024-01-02", "VALE3")]["Location"] == "s3://b3-test-lake/refined/quotes_daily/dt=2024-01-02/ticker=VALE3/"
    # The table's storage as contract/tables.py states it: Parquet SerDe, the stored columns.
    descriptor = daily[("2024-01-02", "PETR4")]
    assert descriptor["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert descriptor["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert [c["Name"] for c in descriptor["Columns"]] == [  # README's quotes_daily, partition keys apart
        "trade_date", "open_price", "high_price", "low_price", "close_price", "adj_close_price", "volume",
        "daily_return", "total_return", "ma_5", "ma_20", "days_since_prev_session", "gap_before", "share_ratio",
        "cash_per_share", "source", "ingested_at"]
    (monthly,) = partitions(glue, "quotes_monthly").items()
    assert monthly[0] == ("2024-01", "PETR4")
    assert monthly[1]["Location"] == "s3://b3-test-lake/refined/quotes_monthly/month=2024-01/ticker=PETR4/"
    assert partitions(glue, "quotes") == {}  # nothing the run did not write


def test_a_second_run_overlapping_the_first_adds_only_the_new_partitions(glue):
    register_written_partitions(glue, DATABASE, LAKE, {"quotes_monthly": ["month=2024-01/ticker=PETR4"]}, log=quiet)
    said = []
    again = {"quotes_monthly": ["month=2024-01/ticker=PETR4", "month=2024-02/ticker=PETR4"]}
    assert register_written_partitions(glue, DATABASE, LAKE, again, log=said.append) == {"quotes_monthly": 1}
    assert sorted(partitions(glue, "quotes_monthly")) == [("2024-01", "PETR4"), ("2024-02", "PETR4")]
    assert said == [f"catalog: 1 new partition(s) of {DATABASE}.quotes_monthly"]


class CountingGlue:
    """The moto client, counting each BatchCreatePartition call's size and what the folders had yielded."""

    def __init__(self, glue, yielded: list[int]) -> None:
        self.glue, self.yielded, self.calls = glue, yielded, []
        self.exceptions = glue.exceptions

    def batch_create_partition(self, **kwargs):
        self.calls.append((len(kwargs["PartitionInputList"]), self.yielded[0]))
        return self.glue.batch_create_partition(**kwargs)


def test_partitions_are_built_and_sent_100_at_a_time_from_the_folder_names(glue):
    yielded = [0]

    def folders():  # a large run's folders, as a stream
        for day in range(1, 29):
            for n in range(9):
                yielded[0] += 1
                yield f"dt=2024-02-{day:02d}/ticker=T{n}"

    counting = CountingGlue(glue, yielded)
    assert register_table_partitions(counting, DATABASE, QUOTES_DAILY, LAKE, folders()) == 252
    # 252 = 28 days x 9 tickers: 100 + 100 + 52, each call made before the next folders were read.
    assert counting.calls == [(100, 100), (100, 200), (52, 252)]
    assert len(partitions(glue, "quotes_daily")) == 252


def test_a_missing_table_is_one_clear_error(glue):
    glue.delete_table(DatabaseName=DATABASE, Name="quotes_monthly")
    with pytest.raises(CatalogRegistrationError) as raised:
        register_table_partitions(glue, DATABASE, QUOTES_MONTHLY, LAKE, ["month=2024-01/ticker=PETR4"])
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"cannot register partitions of {DATABASE}.quotes_monthly")
    assert "EntityNotFoundException" in message


class RefusingGlue:
    """A catalog that refuses every partition for a reason other than its existing."""

    exceptions = boto3.client("glue", region_name="us-east-1").exceptions

    def batch_create_partition(self, DatabaseName, TableName, PartitionInputList):  # noqa: N803 - boto3's names
        return {"Errors": [{"PartitionValues": p["Values"],
                            "ErrorDetail": {"ErrorCode": "InternalServiceException", "ErrorMessage": "try later"}}
                           for p in PartitionInputList]}


def test_other_partition_errors_are_raised_in_one_line():
    with pytest.raises(CatalogRegistrationError) as raised:
        register_table_partitions(RefusingGlue(), DATABASE, QUOTES_MONTHLY, LAKE,
                                  ["month=2024-01/ticker=PETR4", "month=2024-02/ticker=PETR4"])
    assert str(raised.value) == (f"the Glue Data Catalog refused 2 partition(s) of {DATABASE}.quotes_monthly, "
                                 "first 2024-01/PETR4: InternalServiceException: try later")


@pytest.mark.parametrize("folder", ["dt=2024-01-02", "month=2024-01/ticker=PETR4", "ticker=PETR4/x=1"])
def test_a_folder_that_is_not_a_partition_of_the_table_is_refused(folder):
    with pytest.raises(CatalogRegistrationError, match="is not a partition of quotes_daily"):
        register_table_partitions(RefusingGlue(), DATABASE, QUOTES_DAILY, LAKE, [folder])


def test_a_table_the_contract_does_not_state_is_refused(glue):
    with pytest.raises(CatalogRegistrationError, match="'quotes_weekly', which contract/tables.py does not state"):
        register_written_partitions(glue, DATABASE, LAKE, {"quotes_weekly": ["week=1"]}, log=quiet)
