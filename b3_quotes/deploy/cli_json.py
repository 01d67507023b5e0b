"""JSON documents the provisioning scripts send to the AWS CLI, computed from what is already there.

Standard library only: `scripts/*.sh` run it as `python3 -m b3_quotes.deploy.cli_json COMMAND ...` from the
repository root, reading the CLI's JSON output on stdin and printing the document to send.

    merge-tags KEY VALUE...        get-bucket-tagging output -> TagSet with ours added, theirs kept
    drop-tags KEY...               get-bucket-tagging output -> TagSet without those keys
    has-tag KEY VALUE              get-bucket-tagging output -> exit 0 if the tag is there, 1 if not
    merge-notification ID ARN QUEUE_ARN
                                   get-bucket-notification-configuration output -> configuration
                                   with our entries (by Id) replaced, every other entry kept: the
                                   Lambda's on the run manifests, the crawler queue's on each crawled table
    drop-notification ID           same, with our entries removed
    queue-attributes               rendered queue policy -> create-queue/set-queue-attributes map
    merge-lifecycle DAYS           get-bucket-lifecycle-configuration output -> rules with ours (by
                                   ID) replaced, every other rule kept: athena-results/ expire
                                   after DAYS, incomplete multipart uploads aborted after a day
    drop-lifecycle                 same, with our rules removed (an empty list: delete the configuration)

Catalog documents, all from b3_quotes/contract/tables.py (the one statement of every table):

    table-names                    one table name a line
    table-input NAME LAKE_ROOT HISTORY_START
                                   Glue TableInput of that table under LAKE_ROOT (s3://bucket),
                                   partitions projected from HISTORY_START (YYYY-MM-DD) when the
                                   table's keys are days, months or tickers
    crawler-targets DATABASE QUEUE_ARN
                                   crawler Targets: every table Athena does not project
                                   as a catalog target, S3 events from that queue (CRAWL_EVENT_MODE)
    schema-change-policy, recrawl-policy
                                   the crawler's SchemaChangePolicy and RecrawlPolicy
    crawler-differs ROLE_ARN DATABASE QUEUE_ARN CONFIGURATION
                                   get-crawler output -> exit 0 if it differs from what bootstrap
                                   sets (so update-crawler is needed), 1 if not
    location-in LAKE_ROOT          get-table output -> exit 0 if the table lies under LAKE_ROOT/
    table-states LAKE_ROOT         get-tables output (or nothing: no database) -> one line per
                                   table of b3_quotes/contract/tables.py: NAME ours|foreign|absent
    view-names                     one view name a line (b3_quotes/contract/tables.py VIEWS)
    view-ddl NAME                  the Athena statement that creates or replaces that view
"""

from __future__ import annotations

import json
import sys
from typing import Any

from b3_quotes.contract.tables import CRAWLED_TABLES, TABLES, VIEWS

MANIFEST_FILTER = {"Key": {"FilterRules": [{"Name": "prefix", "Value": "raw/_manifests/"},
                                           {"Name": "suffix", "Value": ".json"}]}}
# S3 keeps undelivered events this long in the crawler's queue: 14 days, the most SQS allows.
QUEUE_RETENTION_S = 14 * 24 * 3600
# The crawler's queue entries, one per table folder (a filter holds one prefix).
QUEUE_ENTRY_PREFIX = "crawl-events-"
NOTIFICATION_KINDS = ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations",
                      "EventBridgeConfiguration")


def _load(text: str) -> dict[str, Any]:
    """The CLI prints nothing for an empty configuration, and an error for a bucket without tags."""
    text = text.strip()
    return json.loads(text) if text.startswith("{") else {}


def merge_tags(existing: str, *pairs: str) -> dict[str, Any]:
    ours = [{"Key": k, "Value": v} for k, v in zip(pairs[::2], pairs[1::2])]
    keys = {t["Key"] for t in ours}
    return {"TagSet": [*(t for t in _load(existing).get("TagSet", []) if t["Key"] not in keys), *ours]}


def drop_tags(existing: str, *keys: str) -> dict[str, Any]:
    return {"TagSet": [t for t in _load(existing).get("TagSet", []) if t["Key"] not in keys]}


def has_tag(existing: str, key: str, value: str) -> bool:
    return {"Key": key, "Value": value} in _load(existing).get("TagSet", [])


def _queue_entry_ids() -> set[str]:
    # Every table's, crawled or not: an entry an earlier bootstrap made for a table no longer crawled goes too.
    return {QUEUE_ENTRY_PREFIX + name for name in TABLES}


def drop_notification(existing: str, entry_id: str) -> dict[str, Any]:
    config = {k: v for k, v in _load(existing).items() if k in NOTIFICATION_KINDS}
    lambdas = [c for c in config.get("LambdaFunctionConfigurations", []) if c.get("Id") != entry_id]
    queues = [c for c in config.get("QueueConfigurations", []) if c.get("Id") not in _queue_entry_ids()]
    config["LambdaFunctionConfigurations"], config["QueueConfigurations"] = lambdas, queues
    return {k: v for k, v in config.items() if v or k == "EventBridgeConfiguration"}


def merge_notification(existing: str, entry_id: str, lambda_arn: str, queue_arn: str) -> dict[str, Any]:
    config = drop_notification(existing, entry_id)
    ours = {"Id": entry_id, "LambdaFunctionArn": lambda_arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": MANIFEST_FILTER}
    config["LambdaFunctionConfigurations"] = [*config.get("LambdaFunctionConfigurations", []), ours]
    # Removed objects too: without them an event-mode crawler re-creates a deleted partition.
    queues = [{"Id": QUEUE_ENTRY_PREFIX + name, "QueueArn": queue_arn,
               "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
               "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": table.prefix}]}}}
              for name, table in CRAWLED_TABLES.items()]
    config["QueueConfigurations"] = [*config.get("QueueConfigurations", []), *queues]
    return config


# The bucket's prefixes (bootstrap creates them); every lifecycle rule of ours starts LIFECYCLE_ID.
LAKE_PREFIXES = ("raw/", "refined/", "scripts/", "athena-results/")
ATHENA_RESULTS = "athena-results/"
LIFECYCLE_ID = "b3-quotes-"
# An upload not completed after this many days is abandoned: a job or query killed mid-upload.
ABORT_UPLOADS_AFTER_DAYS = 1


def _other_rules(existing: str) -> list[dict[str, Any]]:
    return [r for r in _load(existing).get("Rules", []) if not str(r.get("ID", "")).startswith(LIFECYCLE_ID)]


def merge_lifecycle(existing: str, results_days: str) -> dict[str, Any]:
    """Our rules, one per prefix (a rule filters on one prefix; ours keep off an adopted bucket's other keys)."""
    ours = []
    for prefix in LAKE_PREFIXES:
        rule: dict[str, Any] = {"ID": f"{LIFECYCLE_ID}{prefix.rstrip('/')}", "Filter": {"Prefix": prefix},
                                "Status": "Enabled",
                                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_UPLOADS_AFTER_DAYS}}
        if prefix == ATHENA_RESULTS:
            rule["Expiration"] = {"Days": int(results_days)}
        ours.append(rule)
    return {"Rules": [*_other_rules(existing), *ours]}


def drop_lifecycle(existing: str) -> dict[str, Any]:
    return {"Rules": _other_rules(existing)}


def queue_attributes(policy: str) -> dict[str, str]:
    return {"Policy": json.dumps(json.loads(policy), separators=(",", ":")),
            "MessageRetentionPeriod": str(QUEUE_RETENTION_S)}


def crawler_targets(database: str, queue_arn: str) -> dict[str, Any]:
    # Event mode takes one target: every table, all in the one bucket, in a single catalog target.
    return {"CatalogTargets": [{"DatabaseName": database, "Tables": list(CRAWLED_TABLES),
                                "EventQueueArn": queue_arn}]}


def crawler_differs(current: str, role_arn: str, database: str, queue_arn: str, configuration: str) -> bool:
    """Whether get-crawler's crawler differs from what bootstrap would set (ensure_crawler's arguments).

    UpdateCrawler is not free: in event mode the crawl after it lists every folder of every target
    again (AWS's incremental-crawl documentation), so a re-run that changed nothing must not call it.
    """
    crawler = _load(current).get("Crawler", {})
    role = crawler.get("Role", "")
    targets = [{"DatabaseName": t.get("DatabaseName"), "Tables": sorted(t.get("Tables", [])),
                "EventQueueArn": t.get("EventQueueArn")}
               for t in crawler.get("Targets", {}).get("CatalogTargets", [])]
    wanted = crawler_targets(database, queue_arn)["CatalogTargets"][0]
    try:
        same_configuration = json.loads(crawler.get("Configuration") or "{}") == json.loads(configuration)
    except json.JSONDecodeError:
        same_configuration = False
    # AWS answers the role as it was given (an ARN, from bootstrap), or by name.
    return not (role in (role_arn, role_arn.rsplit("/", 1)[-1])
                and crawler.get("DatabaseName") == database
                and targets == [{**wanted, "Tables": sorted(wanted["Tables"])}]
                and not any(crawler.get("Targets", {}).get(kind) for kind in crawler.get("Targets", {})
                            if kind != "CatalogTargets")
                and same_configuration
                and crawler.get("SchemaChangePolicy", {}) == SCHEMA_CHANGE_POLICY
                and crawler.get("RecrawlPolicy", {}) == RECRAWL_POLICY)


# What the crawler may do (ensure_crawler passes these): only log a schema difference or a
# deleted folder, and after its first crawl list only the folders its queue's events name.
SCHEMA_CHANGE_POLICY = {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
RECRAWL_POLICY = {"RecrawlBehavior": "CRAWL_EVENT_MODE"}


def location_in(table: str, lake_root: str) -> bool:
    location = _load(table).get("Table", {}).get("StorageDescriptor", {}).get("Location", "")
    return location.startswith(lake_root.rstrip("/") + "/")


def table_states(tables: str, lake_root: str) -> dict[str, str]:
    """Each contract table: absent from the database, ours (under LAKE_ROOT/) or someone else's."""
    found = {t["Name"]: t for t in _load(tables).get("TableList", [])}
    return {name: "absent" if name not in found else
            "ours" if location_in(json.dumps({"Table": found[name]}), lake_root) else "foreign"
            for name in TABLES}


def view_ddl(name: str) -> str:
    """The Athena statement that makes the contract's view, the same SQL DuckDB runs locally."""
    return f"CREATE OR REPLACE VIEW {name} AS\n{VIEWS[name].sql}"


def drop_keys(document: str, *keys: str) -> dict:
    """A JSON object without the given top-level keys (parameters an older AWS CLI does not know)."""
    return {k: v for k, v in json.loads(document).items() if k not in keys}


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    if command == "table-names":
        print("\n".join(TABLES))
        return 0
    if command == "view-names":
        print("\n".join(VIEWS))
        return 0
    if command == "view-ddl":
        print(view_ddl(args[0]))
        return 0
    if command == "table-input":
        print(json.dumps(TABLES[args[0]].glue_table_input(*args[1:3])))
        return 0
    if command in ("schema-change-policy", "recrawl-policy"):
        print(json.dumps(SCHEMA_CHANGE_POLICY if command == "schema-change-policy" else RECRAWL_POLICY))
        return 0
    if command == "crawler-targets":
        print(json.dumps(crawler_targets(*args)))
        return 0
    stdin = sys.stdin.read()
    if command == "has-tag":
        return 0 if has_tag(stdin, *args) else 1
    if command == "crawler-differs":
        return 0 if crawler_differs(stdin, *args) else 1
    if command == "location-in":
        return 0 if location_in(stdin, *args) else 1
    if command == "table-states":
        print("\n".join(f"{name} {state}" for name, state in table_states(stdin, *args).items()))
        return 0
    if command == "queue-attributes":
        print(json.dumps(queue_attributes(stdin)))
        return 0
    handlers = {"merge-tags": merge_tags, "drop-tags": drop_tags, "merge-notification": merge_notification,
                "drop-notification": drop_notification, "drop-keys": drop_keys, "merge-lifecycle": merge_lifecycle,
                "drop-lifecycle": drop_lifecycle}
    print(json.dumps(handlers[command](stdin, *args)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
