"""The JSON documents bootstrap and reset send to the AWS CLI (b3_quotes/deploy/cli_json.py), by hand-written cases."""

from __future__ import annotations

import json

from b3_quotes.deploy.cli_json import (
    crawler_differs,
    crawler_targets,
    drop_lifecycle,
    drop_notification,
    drop_tags,
    has_tag,
    location_in,
    merge_lifecycle,
    merge_notification,
    merge_tags,
    queue_attributes,
    table_states,
)

QUEUE = "arn:aws:sqs:us-east-1:1:b3-quotes-crawler-events"

THEIRS = {
    "TopicConfigurations": [{"Id": "audit", "TopicArn": "arn:aws:sns:us-east-1:1:audit", "Events": ["s3:ObjectRemoved:*"]}],
    "LambdaFunctionConfigurations": [
        {"Id": "thumbnails", "LambdaFunctionArn": "arn:aws:lambda:us-east-1:1:function:thumbs",
         "Events": ["s3:ObjectCreated:*"], "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "img/"}]}}},
        {"Id": "raw-run-committed", "LambdaFunctionArn": "arn:aws:lambda:us-east-1:1:function:old", "Events": ["s3:ObjectCreated:*"]},
    ],
    "EventBridgeConfiguration": {},
}


def test_merge_notification_replaces_only_our_entry_by_id():
    theirs = {**THEIRS, "QueueConfigurations": [
        {"Id": "theirs", "QueueArn": "arn:aws:sqs:us-east-1:1:audit", "Events": ["s3:ObjectCreated:*"]},
        {"Id": "crawl-events-quotes", "QueueArn": "arn:aws:sqs:us-east-1:1:old", "Events": ["s3:ObjectCreated:*"]},
        # An entry an older bootstrap made for a table the crawler no longer crawls: it goes.
        {"Id": "crawl-events-quotes_daily", "QueueArn": "arn:aws:sqs:us-east-1:1:old", "Events": ["s3:ObjectCreated:*"]}]}
    merged = merge_notification(json.dumps(theirs), "raw-run-committed", "arn:aws:lambda:us-east-1:1:function:new", QUEUE)
    assert merged["TopicConfigurations"] == THEIRS["TopicConfigurations"]
    assert merged["EventBridgeConfiguration"] == {}
    assert [c["Id"] for c in merged["LambdaFunctionConfigurations"]] == ["thumbnails", "raw-run-committed"]
    ours = merged["LambdaFunctionConfigurations"][1]
    assert ours["LambdaFunctionArn"] == "arn:aws:lambda:us-east-1:1:function:new"
    assert ours["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "raw/_manifests/"},
                                                    {"Name": "suffix", "Value": ".json"}]
    # Their queue entry kept; ours replaced, one per table folder, created and removed objects.
    queues = merged["QueueConfigurations"]
    assert queues[0] == theirs["QueueConfigurations"][0]
    by_id = {q["Id"]: q for q in queues[1:]}
    assert by_id["crawl-events-quotes_monthly_compact"] == {
        "Id": "crawl-events-quotes_monthly_compact", "QueueArn": QUEUE,
        "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "refined/quotes_monthly_compact/"}]}}}
    # The crawled tables only: not the ticker-session folders, whose partitions the job registers.
    assert sorted(by_id) == ["crawl-events-quotes_daily_compact", "crawl-events-quotes_monthly_compact"]
    assert by_id["crawl-events-quotes_daily_compact"]["Filter"]["Key"]["FilterRules"] == [
        {"Name": "prefix", "Value": "refined/quotes_daily_compact/"}]
    # No queue prefix overlaps the Lambda's (S3 refuses overlapping filters for the same event).
    assert not any(q["Filter"]["Key"]["FilterRules"][0]["Value"].startswith("raw/_manifests") for q in queues[1:])


def test_merge_notification_on_an_empty_bucket_and_drop_leaves_theirs():
    # The CLI prints nothing at all for a bucket without notifications.
    assert [c["Id"] for c in merge_notification("", "raw-run-committed", "arn:x", QUEUE)["LambdaFunctionConfigurations"]] == [
        "raw-run-committed"]
    dropped = drop_notification(json.dumps(THEIRS), "raw-run-committed")
    assert [c["Id"] for c in dropped["LambdaFunctionConfigurations"]] == ["thumbnails"]
    assert drop_notification(json.dumps({"LambdaFunctionConfigurations": [THEIRS["LambdaFunctionConfigurations"][1]]}),
                             "raw-run-committed") == {}
    ours = merge_notification("", "raw-run-committed", "arn:x", QUEUE)
    assert drop_notification(json.dumps(ours), "raw-run-committed") == {}


def test_tags_merge_drop_and_lookup():
    theirs = json.dumps({"TagSet": [{"Key": "team", "Value": "finance"}, {"Key": "project", "Value": "old"}]})
    assert merge_tags(theirs, "project", "b3-quotes-pipeline") == {"TagSet": [
        {"Key": "team", "Value": "finance"}, {"Key": "project", "Value": "b3-quotes-pipeline"}]}
    # A bucket without tags: the CLI prints an error (NoSuchTagSet), which the scripts turn into nothing.
    assert merge_tags("", "project", "p") == {"TagSet": [{"Key": "project", "Value": "p"}]}
    assert drop_tags(theirs, "project", "other") == {"TagSet": [{"Key": "team", "Value": "finance"}]}
    assert has_tag(theirs, "team", "finance") and not has_tag(theirs, "project", "b3-quotes-pipeline")
    assert not has_tag("", "project", "b3-quotes-pipeline")


def test_location_in_the_bucket_only():
    def table(location: str) -> str:
        return json.dumps({"Table": {"StorageDescriptor": {"Location": location}}})

    assert location_in(table("s3://lake/raw/quotes/"), "s3://lake")
    assert not location_in(table("s3://lake-archive/raw/quotes/"), "s3://lake")
    assert not location_in(table("s3://other/raw/quotes/"), "s3://lake")
    assert not location_in(json.dumps({"Table": {"Name": "no_location"}}), "s3://lake")


def test_crawler_targets_are_the_catalog_tables():
    (target,) = crawler_targets("default", QUEUE)["CatalogTargets"]
    assert target["DatabaseName"] == "default" and target["EventQueueArn"] == QUEUE
    assert target["Tables"] == ["quotes_daily_compact", "quotes_monthly_compact"]


def _crawler(**changes) -> str:
    """get-crawler's output for the crawler bootstrap sets, as AWS answers it (empty other target kinds)."""
    crawler = {"Name": "c", "Role": "arn:aws:iam::1:role/glue", "DatabaseName": "default", "State": "READY",
               "Targets": {"S3Targets": [], "JdbcTargets": [], "CatalogTargets": [{
                   "DatabaseName": "default", "EventQueueArn": QUEUE,
                   "Tables": ["quotes_monthly_compact", "quotes_daily_compact"]}]},
               "Configuration": '{"Version":1.0,"CreatePartitionIndex":false}',
               "SchemaChangePolicy": {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
               "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_EVENT_MODE"}, "Version": 3}
    return json.dumps({"Crawler": {**crawler, **changes}})


def test_the_crawler_differs_only_when_a_setting_bootstrap_makes_differs():
    wanted = ("arn:aws:iam::1:role/glue", "default", QUEUE, '{"CreatePartitionIndex": false, "Version": 1.0}')
    assert not crawler_differs(_crawler(), *wanted)  # same settings: tables in another order, JSON spaced otherwise
    assert not crawler_differs(_crawler(Role="glue"), *wanted)  # the role by name
    changed = {
        "role": {"Role": "arn:aws:iam::1:role/other"},
        "database": {"DatabaseName": "other"},
        "queue": {"Targets": {"CatalogTargets": [{"DatabaseName": "default", "EventQueueArn": "arn:x",
                                                  "Tables": ["quotes"]}]}},
        "tables (every table crawled, as before)": {"Targets": {"CatalogTargets": [{
            "DatabaseName": "default", "EventQueueArn": QUEUE,
            "Tables": ["quotes", "quotes_daily", "quotes_monthly", "ibov_portfolio", "quote_issues",
                       "quotes_daily_compact", "quotes_monthly_compact"]}]}},
        "an S3 target": {"Targets": {"S3Targets": [{"Path": "s3://x/"}], "CatalogTargets": [{
            "DatabaseName": "default", "EventQueueArn": QUEUE,
            "Tables": ["quotes_daily_compact", "quotes_monthly_compact"]}]}},
        "configuration": {"Configuration": '{"Version":1.0,"CreatePartitionIndex":true}'},
        "schema policy": {"SchemaChangePolicy": {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"}},
        "recrawl policy": {"RecrawlPolicy": {"RecrawlBehavior": "CRAWL_EVERYTHING"}},
    }
    for what, change in changed.items():
        assert crawler_differs(_crawler(**change), *wanted), what


def test_lifecycle_rules_ours_replaced_by_id_theirs_kept():
    theirs = {"ID": "their-logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 90}}
    stale = {"ID": "b3-quotes-athena-results", "Filter": {"Prefix": "athena-results/"}, "Status": "Enabled",
             "Expiration": {"Days": 30}}
    merged = merge_lifecycle(json.dumps({"Rules": [theirs, stale]}), "7")["Rules"]
    assert merged[0] == theirs
    assert {r["ID"]: r["Filter"]["Prefix"] for r in merged[1:]} == {
        "b3-quotes-raw": "raw/", "b3-quotes-refined": "refined/", "b3-quotes-scripts": "scripts/",
        "b3-quotes-athena-results": "athena-results/"}
    results = next(r for r in merged if r["ID"] == "b3-quotes-athena-results")
    assert results["Expiration"] == {"Days": 7} and results["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert merge_lifecycle("", "7")["Rules"] == merged[1:]  # the CLI prints nothing for a bucket without rules
    assert drop_lifecycle(json.dumps({"Rules": merged}))["Rules"] == [theirs]


def test_table_states_ours_foreign_absent():
    tables = {"TableList": [
        {"Name": "quotes", "StorageDescriptor": {"Location": "s3://lake/raw/quotes/"}},
        {"Name": "quotes_daily", "StorageDescriptor": {"Location": "s3://other/refined/quotes_daily/"}},
        {"Name": "not_a_contract_table", "StorageDescriptor": {"Location": "s3://lake/x/"}}]}
    states = table_states(json.dumps(tables), "s3://lake")
    assert states["quotes"] == "ours" and states["quotes_daily"] == "foreign" and states["quotes_monthly"] == "absent"
    assert "not_a_contract_table" not in states
    # No database: get-tables fails and prints nothing.
    assert set(table_states("", "s3://lake").values()) == {"absent"}


def test_queue_attributes_hold_the_policy_as_compact_text():
    policy = '{\n  "Version": "2012-10-17",\n  "Statement": []\n}'
    assert queue_attributes(policy) == {"Policy": '{"Version":"2012-10-17","Statement":[]}',
                                        "MessageRetentionPeriod": "1209600"}


def test_drop_keys_leaves_a_definition_an_older_cli_accepts():
    import json

    from b3_quotes.deploy.cli_json import drop_keys

    definition = json.dumps({"JobMode": "VISUAL", "JobRunQueuingEnabled": True, "Timeout": 30})
    assert drop_keys(definition, "JobRunQueuingEnabled") == {"JobMode": "VISUAL", "Timeout": 30}
    assert drop_keys(definition, "Absent") == json.loads(definition)
