"""Register the partitions a job run wrote in the Glue Data Catalog, so Athena sees them when the run ends."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any
from urllib.parse import unquote

from contract.tables import TABLES, Table

# BatchCreatePartition takes at most 100 PartitionInputs per call.
PARTITIONS_PER_CALL = 100
# The one per-partition error a re-run meets by design: that partition is registered already.
ALREADY_REGISTERED = "AlreadyExistsException"


class CatalogRegistrationError(RuntimeError):
    """The catalog refused partitions for another reason than that they exist already."""


def partition_values(table: Table, folder: str) -> list[str]:
    """`dt=2024-01-02/ticker=PETR4` -> ["2024-01-02", "PETR4"], in the table's partition key order."""
    pairs = dict(part.split("=", 1) for part in folder.strip("/").split("/"))
    if sorted(pairs) != sorted(table.partition_names):
        raise CatalogRegistrationError(
            f"folder {folder!r} is not a partition of {table.name} (keys {'/'.join(table.partition_names)})")
    # Hive folder names escape special characters; the catalog holds the values themselves.
    return [unquote(pairs[name]) for name in table.partition_names]


def partition_inputs(table: Table, lake_root: str, folders: Iterable[str]) -> Iterator[dict[str, Any]]:
    """One PartitionInput per folder: the table's StorageDescriptor with the folder as its location."""
    template = table.glue_table_input(lake_root)["StorageDescriptor"]
    for folder in folders:
        descriptor = copy.deepcopy(template)
        descriptor["Location"] = f"{table.location(lake_root)}{folder.strip('/')}/"
        yield {"Values": partition_values(table, folder), "StorageDescriptor": descriptor}


def batches(items: Iterable[Any], size: int = PARTITIONS_PER_CALL) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def register_table_partitions(glue: Any, database: str, table: Table, lake_root: str,
                              folders: Iterable[str]) -> int:
    """Create the partitions of `folders` in `database`.`table`; return how many were new.

    Partitions are built 100 at a time from the folder names, so a backfill's millions of
    partitions never exist as dicts at once.
    """
    created = 0
    for batch in batches(partition_inputs(table, lake_root, folders)):
        try:
            errors = glue.batch_create_partition(DatabaseName=database, TableName=table.name,
                                                 PartitionInputList=batch).get("Errors", [])
        except glue.exceptions.ClientError as exc:
            raise CatalogRegistrationError(
                f"cannot register partitions of {database}.{table.name} in the Glue Data Catalog: {exc}") from exc
        refused = [e for e in errors if e.get("ErrorDetail", {}).get("ErrorCode") != ALREADY_REGISTERED]
        if refused:
            detail = refused[0].get("ErrorDetail", {})
            raise CatalogRegistrationError(
                f"the Glue Data Catalog refused {len(refused)} partition(s) of {database}.{table.name}, first "
                f"{'/'.join(refused[0].get('PartitionValues', []))}: {detail.get('ErrorCode')}: "
                f"{detail.get('ErrorMessage')}")
        created += len(batch) - len(errors)
    return created


def register_written_partitions(glue: Any, database: str, lake_root: str, written: dict[str, Iterable[str]],
                                log: Callable[[str], None] = print) -> dict[str, int]:
    """Register every partition a run wrote (`{table name: [folder, ...]}`); new partitions per table."""
    created = {}
    for name, folders in written.items():
        if name not in TABLES:
            raise CatalogRegistrationError(f"the run wrote table {name!r}, which contract/tables.py does not state")
        created[name] = register_table_partitions(glue, database, TABLES[name], lake_root, folders)
        log(f"catalog: {created[name]} new partition(s) of {database}.{name}")
    return created
