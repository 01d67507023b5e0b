"""bench_aws_cost's arithmetic: how a request is named and billed, how a count scales, a run's bill by hand."""

from __future__ import annotations

import sys
from collections import Counter

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))  # the benchmarks import each other as scripts do
import bench_aws_cost as cost  # noqa: E402  # pyright: ignore[reportMissingImports] - a script folder, put on sys.path above

DAILY_FILE = "refined/quotes_daily/dt=2024-12-30/ticker=PETR4/part-0.snappy.parquet"


@pytest.mark.parametrize(("method", "path", "query", "headers", "expected"), [
    # pyarrow uploads a small file as a multipart upload: three requests, all in S3's PUT tier
    ("POST", f"/b/{DAILY_FILE}", {"uploads": [""]}, {}, ("CreateMultipartUpload", DAILY_FILE)),
    ("PUT", f"/b/{DAILY_FILE}", {"partNumber": ["1"], "uploadId": ["x"]}, {}, ("UploadPart", DAILY_FILE)),
    ("POST", f"/b/{DAILY_FILE}", {"uploadId": ["x"]}, {}, ("CompleteMultipartUpload", DAILY_FILE)),
    ("PUT", "/b/raw/_manifests/r.json", {}, {}, ("PutObject", "raw/_manifests/r.json")),
    ("GET", "/b", {"list-type": ["2"], "prefix": ["raw/quotes/dt=2024-12-30/"]}, {},
     ("ListObjects", "raw/quotes/dt=2024-12-30/")),
    ("GET", "/b", {"notification": [""]}, {}, ("GetBucketNotification", "")),
    ("POST", "/b", {"delete": [""]}, {}, ("DeleteObjects", "")),
    ("HEAD", "/b/raw/quotes/dt=2024-12-30/a.parquet", {}, {}, ("HeadObject", "raw/quotes/dt=2024-12-30/a.parquet")),
])
def test_s3_operation_names_a_path_style_request(method, path, query, headers, expected):
    assert cost.s3_operation(method, path, query, headers) == expected


def test_key_class_is_what_the_count_grows_with():
    assert cost.key_class(DAILY_FILE) == "ticker-session"
    assert cost.key_class("refined/quotes_daily/dt=2024-12-30/") == "session"  # a folder's listing
    assert cost.key_class("refined/quotes_monthly/month=2024-12/ticker=PETR4/part-0.snappy.parquet") == "ticker-month"
    assert cost.key_class("refined/quotes_daily_compact/year=2024/part-0.snappy.parquet") == "year"
    assert cost.key_class("raw/quotes/dt=2024-12-30/part.parquet") == "session"
    assert cost.key_class("raw/_manifests/r.json") == "run"


def test_a_daily_runs_counts_scale_with_tickers_and_a_backfills_with_tickers_and_sessions():
    measured = Counter({("s3", "PutObject", "ticker-session"): 87, ("s3", "GetObject", "session"): 20,
                        ("glue", "StartCrawler", "run"): 1})
    daily = cost.scale(measured, cost.units("daily", 87, 1, 1, 1), cost.units("daily", 750, 1, 1, 1))
    # 750 tickers: 750 files; the 20 raw days the windows read and the one crawl stay as they were
    assert daily == Counter({("s3", "PutObject", "ticker-session"): 750, ("s3", "GetObject", "session"): 20,
                             ("glue", "StartCrawler", "run"): 1})
    backfill = cost.scale(measured, cost.units("backfill", 87, 10, 1, 1), cost.units("backfill", 87, 2480, 120, 10))
    assert backfill[("s3", "PutObject", "ticker-session")] == 87 * 248  # 87 x 10 sessions -> 87 x 2,480
    assert backfill[("s3", "GetObject", "session")] == 20 * 248
    assert backfill[("glue", "StartCrawler", "run")] == 1


def test_a_runs_bill_by_hand():
    requests = cost.Requests(s3_put=3000, s3_list=1000, s3_get=2000, s3_free=5, catalog=0, glue_other=3, sqs=0,
                             athena=0, other=2)
    bill = cost.run_dollars(requests, glue_s=90, workers=2, crawls=1, queue_messages=4, athena_queries=7,
                            athena_bytes=1000, region="us-east-1")
    assert bill["glue job"] == pytest.approx(2 * 90 / 3600 * 0.44)          # 2 DPU x 90 s = $0.022
    assert bill["crawler"] == pytest.approx(2 * 600 / 3600 * 0.44)          # 2 DPU x the 10-minute minimum
    assert bill["s3 requests"] == pytest.approx(4000 * 0.005 / 1000 + 2000 * 0.0004 / 1000)  # LIST in the PUT tier
    assert bill["sqs"] == pytest.approx(12 * 0.40 / 1e6)                    # 4 events: send, receive, delete
    assert bill["athena"] == pytest.approx(7 * 10 * 2**20 / 2**40 * 5.0)    # 1,000 bytes billed as 10 MB each
    short = cost.run_dollars(requests, glue_s=20, workers=10, crawls=0, queue_messages=0, athena_queries=0,
                             athena_bytes=0, region="sa-east-1")
    assert short["glue job"] == pytest.approx(10 * 60 / 3600 * 0.44)        # the 1-minute minimum, 10 workers
    assert short["s3 requests"] == pytest.approx(4000 * 0.007 / 1000 + 2000 * 0.00056 / 1000)


def test_glue_seconds_spread_the_files_cpu_over_the_executors_vcpus():
    # 2 workers: 1 executor, 4 vCPU; 400,000 files x 10 ms = 4,000 CPU-s -> 1,000 s, past the PUTs' latency
    # (400,000 x 40 ms / 128 threads = 125 s)
    assert cost.glue_seconds(400_000, 0.010, fixed_s=40, workers=2) == pytest.approx(40 + 1000)
    assert cost.glue_seconds(400_000, 0.010, fixed_s=40, workers=10) == pytest.approx(40 + 1000 / 9)
    # CPU-cheap files: the latency bound holds
    assert cost.glue_seconds(400_000, 0.0001, fixed_s=0, workers=2) == pytest.approx(400_000 * 0.040 / 128)
