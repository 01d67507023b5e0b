"""b3_quotes.contract.tables' columns as pyarrow schemas, for the code that writes or reads Parquet.

Dates are date32 and timestamps microseconds in UTC: Spark 3.5 cannot read pandas'
nanoseconds. Imports pyarrow: the Lambda never imports this module.
"""

from __future__ import annotations

import pyarrow as pa

from b3_quotes.contract.tables import Table

ARROW_TYPES = {
    "string": pa.string(),
    "double": pa.float64(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "boolean": pa.bool_(),
}


def arrow_schema(table: Table, columns: list[str] | None = None) -> pa.Schema:
    """The table's stored columns (partition keys excluded), all or the named ones in table order."""
    chosen = [c for c in table.columns if columns is None or c.name in columns]
    if columns is not None and len(chosen) != len(set(columns)):
        unknown = sorted(set(columns) - {c.name for c in chosen})
        raise KeyError(f"{table.name} has no column {', '.join(unknown)}")
    return pa.schema([(c.name, ARROW_TYPES[c.type]) for c in chosen])
