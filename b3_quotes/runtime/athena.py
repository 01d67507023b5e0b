"""Run a query on Athena: start, wait for a terminal state, fetch the rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

POLL_INTERVAL_S = 1.0
QUERY_TIMEOUT_S = 300.0
TERMINAL_STATES = {"SUCCEEDED", "FAILED", "CANCELLED"}


class AthenaQueryError(RuntimeError):
    """The query failed, was cancelled, or did not finish in time."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[str | None, ...]]
    query_execution_id: str


def wait_for_query(athena: Any, query_execution_id: str, *, timeout_s: float = QUERY_TIMEOUT_S,
                   poll_interval_s: float = POLL_INTERVAL_S, sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Poll until the query reaches a terminal state; raise unless it SUCCEEDED."""
    deadline = clock() + timeout_s
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_execution_id)["QueryExecution"]
        status = execution["Status"]
        state = status["State"]
        if state == "SUCCEEDED":
            return execution
        if state in TERMINAL_STATES:
            reason = status.get("StateChangeReason", "no reason given")
            raise AthenaQueryError(f"Athena query {query_execution_id} {state}: {reason}")
        if clock() >= deadline:
            athena.stop_query_execution(QueryExecutionId=query_execution_id)
            raise AthenaQueryError(
                f"Athena query {query_execution_id} still {state} after {timeout_s:g} s; cancelled"
            )
        sleep(poll_interval_s)


def fetch_rows(athena: Any, query_execution_id: str) -> tuple[list[str], list[tuple[str | None, ...]]]:
    """All result rows, as strings (Athena's wire format); the header row is dropped."""
    columns: list[str] = []
    rows: list[tuple[str | None, ...]] = []
    paginator = athena.get_paginator("get_query_results")
    first_page = True
    for page in paginator.paginate(QueryExecutionId=query_execution_id):
        result_set = page["ResultSet"]
        if not columns:
            columns = [c["Name"] for c in result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])]
        page_rows = [tuple(d.get("VarCharValue") for d in r["Data"]) for r in result_set["Rows"]]
        if first_page and page_rows and list(page_rows[0]) == columns:
            page_rows = page_rows[1:]  # SELECT results repeat the header as the first row
        first_page = False
        rows.extend(page_rows)
    return columns, rows


def run_athena_query(athena: Any, sql: str, *, database: str, workgroup: str,
                     timeout_s: float = QUERY_TIMEOUT_S, sleep: Callable[[float], None] = time.sleep) -> QueryResult:
    """Start `sql` in `workgroup` (whose settings say where results go) and return its rows."""
    started = athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": database},
        WorkGroup=workgroup,
    )
    query_id = started["QueryExecutionId"]
    wait_for_query(athena, query_id, timeout_s=timeout_s, sleep=sleep)
    columns, rows = fetch_rows(athena, query_id)
    return QueryResult(columns, rows, query_id)
