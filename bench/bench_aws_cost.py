"""Cost and time on AWS, on paper, from requests counted against a moto server.

    .venv/bin/python bench/bench_aws_cost.py [--market-instruments 60] [--years 1] [--sessions N]
    .venv/bin/python bench/bench_aws_cost.py --sessions 40 --cores 1 --save counts.json   # bench/README.md's
    .venv/bin/python bench/bench_aws_cost.py --from counts.json    # price saved counts again, measure nothing

For the 87 IBOV stocks and for a sample of the whole market (`--market-instruments` codes), each
over `--years` of B3 sessions (bench_history's seeded prices, written as COTAHIST files as
bench_market.py does), on a moto server that counts every request it serves:

1. bootstrap: `scripts/bootstrap_aws.sh` against moto (the bucket, its notifications, the SQS
   queue, the Glue job and crawler, the Lambda): not counted;
2. backfill: `scraper_upload.py --source b3 --cotahist-file ... --bucket ...` (a whole command:
   raw files and the manifest to S3), then the Lambda handler on the S3 event the notification
   would send (moto cannot invoke a Lambda without Docker: it runs here), then the Glue job's
   `main` in a child process with the run's arguments and a stand-in awsglue, its Spark local,
   its storage the moto S3 (pyarrow and boto3, as on Glue);
3. daily run: the same for the last session's daily file.

How requests are counted: the moto server runs in its own process, wrapped in a WSGI middleware
that names each request before moto answers it: the service from the SigV4 signature, the
operation from X-Amz-Target, the Action parameter, or for S3 the method, key and query
(PutObject, GetObject, HeadObject, ListObjects, DeleteObjects, ...), and the S3 key's class
(a ticker-session file, a session folder, a month, a year, or once a run). S3's events to the
crawler's queue are counted from the queue (moto delivers them inside the server).

Each count is then scaled to the whole market and to 10 years by its class (a ticker-session's
requests by tickers x sessions, a session's by sessions, a run's not at all), priced from the
PRICES table (AWS's price list: bench/README.md says where and when read), and the Glue time is
modelled from the job's measured CPU (MODEL below). Measured and modelled figures are printed
apart.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote

REPO = Path(__file__).resolve().parent.parent
BUCKET = "b3-cost-bench"
REGION = "us-east-1"
SCRAPER = str(REPO / "scraper/scraper_upload.py")
GLUE_STANDIN = REPO / "tests/glue_standin"

# ---- prices: AWS's price list, read 2026-12-07 (bench/README.md, "bench_aws_cost.py", cites each) ----
# USD. None: not found for that region in what was read; the us-east-1 price is used and said so.
PRICES = {
    "glue_dpu_hour": {"us-east-1": 0.44, "sa-east-1": None},          # ETL job and crawler, per DPU-hour
    "glue_job_min_s": 60,                                               # Glue 5.0: billed per second, 1-minute minimum
    "glue_crawler_min_s": 600,                                          # a crawl: 10-minute minimum
    "s3_put_tier_per_1k": {"us-east-1": 0.005, "sa-east-1": 0.007},    # PUT, COPY, POST, LIST
    "s3_get_tier_per_1k": {"us-east-1": 0.0004, "sa-east-1": 0.00056},  # GET, HEAD, and all other requests
    "s3_storage_gb_month": {"us-east-1": 0.023, "sa-east-1": 0.0405},  # S3 Standard, first 50 TB
    "catalog_requests_per_m": {"us-east-1": 1.0, "sa-east-1": None},    # Glue Data Catalog, over the free million
    "sqs_requests_per_m": {"us-east-1": 0.40, "sa-east-1": None},       # standard queue, over the free million
    "athena_per_tb": {"us-east-1": 5.0, "sa-east-1": None},             # SQL queries, per TB scanned
    "athena_min_bytes": 10 * 2**20,                                     # 10 MB minimum per query
    "logs_ingest_per_gb": {"us-east-1": 0.50, "sa-east-1": 0.90},      # CloudWatch Logs, standard class
}
REGIONS = ("us-east-1", "sa-east-1")


def price(name: str, region: str) -> float:
    """The price in `region`, or us-east-1's where the region's was not found (said in the output)."""
    value = PRICES[name][region]
    return PRICES[name]["us-east-1"] if value is None else value


# ---- the model's assumptions (bench/README.md states and defends each) ------------------------
MODEL = {
    "vcpus_per_worker": 4,            # G.1X: 4 vCPU, 16 GB, 1 DPU; one worker is the driver
    "put_latency_s": 0.040,           # an in-region PUT of a small object (docs/design.md: 30-60 ms)
    "put_threads_per_task": 32,       # etl/refined_writer.py's threads per Spark task
    "crawler_dpus": 2,                # a crawl's DPUs (AWS chooses; its pricing example uses 2)
    "log_mb_per_worker_run": 1.0,     # CloudWatch Logs a worker writes a run (not measured)
    "athena_queries_per_day": None,   # None: each sql/*.sql once a day
}
B3_SESSIONS_PER_YEAR = 248  # 2,479 sessions in 10 years (bench_history, BVMF calendar)
WHOLE_MARKET = 750          # bench_market.py's whole cash market: 745 round-lot codes and 5 funds
IBOV = 87
JOB_TIMEOUT_MIN = 30


# ---- the counting moto server (its own process) ----------------------------------------------

# An S3 key's class: what its count grows with. A list request's class is its prefix's.
KEY_CLASSES = [
    (re.compile(r"^refined/quotes_daily/dt=[^/]+/ticker="), "ticker-session"),
    (re.compile(r"^refined/quotes_daily/dt="), "session"),
    (re.compile(r"^refined/quotes_monthly/month=[^/]+/ticker="), "ticker-month"),
    (re.compile(r"^refined/quotes_monthly/month="), "month"),
    (re.compile(r"^refined/[a-z_]+_compact/year="), "year"),
    (re.compile(r"^raw/[a-z_]+/dt="), "session"),
]
S3_PUT_TIER = {"PutObject", "CopyObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload",
               "ListObjects", "ListBuckets"}
S3_FREE = {"DeleteObject", "DeleteObjects", "AbortMultipartUpload"}  # DELETE and CANCEL requests are free


def key_class(key: str) -> str:
    return next((name for pattern, name in KEY_CLASSES if pattern.match(key)), "run")


def s3_operation(method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[str, str]:
    """(operation, key or list prefix) of a path-style S3 request."""
    bucket, _, key = path.lstrip("/").partition("/")
    sub = next((q for q in query if q in ("tagging", "acl", "location", "notification", "lifecycle", "policy",
                                          "encryption", "publicAccessBlock", "versioning", "ownershipControls",
                                          "cors", "website", "logging")), "")
    if not bucket:
        return "ListBuckets", ""
    if key:
        if method == "PUT":
            if "partNumber" in query:
                return "UploadPart", key
            return ("CopyObject" if "x-amz-copy-source" in headers else f"PutObject{sub.title()}"), key
        if method == "POST":
            return ("CreateMultipartUpload" if "uploads" in query else "CompleteMultipartUpload"), key
        if method == "DELETE":
            return ("AbortMultipartUpload" if "uploadId" in query else "DeleteObject"), key
        return {"GET": f"GetObject{sub.title()}", "HEAD": "HeadObject"}.get(method, method), key
    if method == "GET" and not sub:
        return "ListObjects", query.get("prefix", [""])[0]
    if method == "POST" and "delete" in query:
        return "DeleteObjects", ""
    if method == "HEAD":
        return "HeadBucket", ""
    return f"{method.title()}Bucket{sub.title()}", ""


class CountingApp:
    """WSGI middleware: counts (service, operation, key class) of each request, then lets moto answer.

    GET /_bench/counts returns the counts so far as JSON.
    """

    def __init__(self, app) -> None:
        self.app, self.counts, self.lock = app, Counter(), threading.Lock()

    def name(self, environ) -> tuple[str, str, str]:
        signed = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        service = signed.group(1) if signed else "unsigned"
        method, path = environ["REQUEST_METHOD"], unquote(environ.get("PATH_INFO", ""))
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if service == "s3":
            headers = {k[5:].lower().replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")}
            operation, key = s3_operation(method, path, query, headers)
            return service, operation, key_class(key)
        if target := environ.get("HTTP_X_AMZ_TARGET"):
            return service, target.rsplit(".", 1)[-1], "run"
        if "Action" not in query and "form-urlencoded" in environ.get("CONTENT_TYPE", ""):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
            query = parse_qs(body.decode("utf-8", "replace"))
        if "Action" in query:
            return service, query["Action"][0], "run"
        return service, f"{method} {re.sub(r'/[^/]*[0-9a-f-]{20,}[^/]*', '/{id}', path)}", "run"

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/_bench/counts":
            with self.lock:
                body = json.dumps([[*k, n] for k, n in self.counts.items()]).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            name = self.name(environ)
            with self.lock:
                self.counts[name] += 1
        return self.app(environ, start_response)


def serve_counting_moto(port: int) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    run_simple("127.0.0.1", port, CountingApp(DomainDispatcherApplication(create_backend_app)), threaded=True,
               request_handler=MotoRequestHandler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def counting_moto() -> Iterator[str]:
    """The counting moto server in its own process (its CPU is not the pipeline's); its endpoint."""
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve-moto", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/_bench/counts", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the moto server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


def read_counts(endpoint: str) -> Counter:
    with urllib.request.urlopen(f"{endpoint}/_bench/counts", timeout=30) as answer:
        return Counter({(s, o, c): n for s, o, c, n in json.load(answer)})


# moto, one process on a shared machine, can take longer than pyarrow's 3-second default to answer
# (the AWS SDK then fails the request, or retries it and a request is counted twice): every
# command's pyarrow S3 file system gets a longer request timeout. Nothing else changes.
SITE_CUSTOMIZE = """\
import pyarrow.fs as _fs

class S3FileSystem(_fs.S3FileSystem):
    def __init__(self, **options):
        options.setdefault("request_timeout", 120)
        options.setdefault("connect_timeout", 30)
        super().__init__(**options)

_fs.S3FileSystem = S3FileSystem
"""
PATIENT_S3 = Path(tempfile.gettempdir()) / f"bench-aws-cost-site-{os.getpid()}"


# ---- the pipeline's commands against moto --------------------------------------------------

def aws_env(endpoint: str) -> dict[str, str]:
    """The environment of every command: moto as AWS, fake credentials, no .env, no local lake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYSPARK", "LAKE_", "BUCKET"))}
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "ENV_FILE": "/nonexistent/.env",
                "PYTHONPATH": os.pathsep.join([str(PATIENT_S3), str(REPO)])})
    return env


def bootstrap(endpoint: str, work: Path) -> None:
    sys.path.insert(0, str(REPO))
    from tests.aws_cli_server import aws_cli_folder  # the real AWS CLI, imported once (the tests' own)

    with aws_cli_folder(work / "aws-cli") as cli:
        env = {**aws_env(endpoint), "PATH": f"{cli}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               "HOME": str(work), "BUCKET": BUCKET, "SKIP_TLS_BUCKET_POLICY": "true"}
        done = subprocess.run(["bash", str(REPO / "scripts/bootstrap_aws.sh")], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"bootstrap failed on moto:\n{done.stderr[-3000:]}")


@dataclass
class Phase:
    """One step of a run: its requests, and its time and CPU where it is a process of its own."""
    counts: Counter
    seconds: float = 0.0
    cpu_s: float = 0.0


@dataclass
class RunFigures:
    label: str
    tickers: int
    sessions: int
    months: int
    years: int
    phases: dict[str, Phase] = field(default_factory=dict)
    queue_messages: int = 0  # S3 events the crawler's queue received

    def counts(self) -> Counter:
        total: Counter = Counter()
        for phase in self.phases.values():
            total.update(phase.counts)
        return total


def counted(endpoint: str, action) -> Phase:
    before = read_counts(endpoint)
    began = time.perf_counter()
    cpu_s = action() or 0.0
    seconds = time.perf_counter() - began
    after = read_counts(endpoint)
    after.subtract(before)
    return Phase(+after, seconds, cpu_s)


def run_scraper(endpoint: str, files: list[Path], universe_args: list[str]) -> None:
    argv = [sys.executable, SCRAPER, "--source", "b3", *[a for f in files for a in ("--cotahist-file", str(f))],
            *universe_args, "--bucket", BUCKET]
    done = subprocess.run(argv, env=aws_env(endpoint), capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"scrape failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def run_query(endpoint: str) -> None:
    """One example query on Athena (moto's), a whole `python -m b3_quotes.catalog.query` process: its API calls."""
    done = subprocess.run([sys.executable, "-m", "b3_quotes.catalog.query", "--file", str(REPO / "sql/latest_sessions.sql")],
                          env={**aws_env(endpoint), "BUCKET": BUCKET}, cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        print(f"  (the query on moto's Athena exited {done.returncode}: {done.stderr.strip()[-300:]})")


def newest_manifest(endpoint: str) -> str:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    keys = s3.list_objects_v2(Bucket=BUCKET, Prefix="raw/_manifests/")["Contents"]
    return max(keys, key=lambda o: o["LastModified"])["Key"]


def run_lambda(endpoint: str, manifest_key: str) -> dict:
    """The handler, configured as bootstrap deployed it, on the event the notification sends."""
    import boto3

    from b3_quotes.local_mode.trigger import s3_put_event
    from lambdas.start_glue_job import lambda_handler

    lam = boto3.client("lambda", endpoint_url=endpoint, region_name=REGION)
    (target,) = boto3.client("s3", endpoint_url=endpoint, region_name=REGION).get_bucket_notification_configuration(
        Bucket=BUCKET)["LambdaFunctionConfigurations"]
    function = lam.get_function(FunctionName=target["LambdaFunctionArn"].rsplit(":", 1)[-1])["Configuration"]
    saved = dict(os.environ)
    os.environ.update({**aws_env(endpoint), **function["Environment"]["Variables"]})
    try:
        (started,) = lambda_handler(s3_put_event(BUCKET, manifest_key), None)["job_runs"]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {"job": function["Environment"]["Variables"]["GLUE_JOB_NAME"], **started}


def glue_argv(job_name: str, default_arguments: dict[str, str], run_arguments: dict[str, str]) -> list[str]:
    """sys.argv as Glue builds it (tests/glue_harness.py's rule): run Arguments over DefaultArguments."""
    argv = ["glue_job.py", "--JOB_ID", "j_bench", "--JOB_RUN_ID", "jr_bench", "--JOB_NAME", job_name]
    for name, value in {**default_arguments, **run_arguments}.items():
        argv += [name] if value == "" else [name, value]
    return argv


def run_job(endpoint: str, started: dict, cores: int) -> float:
    """The Glue job's main in a child process (Spark local[cores]); returns its process tree's CPU seconds."""
    import boto3

    glue = boto3.client("glue", endpoint_url=endpoint, region_name=REGION)
    defaults = glue.get_job(JobName=started["job"])["Job"]["DefaultArguments"]
    run = glue.get_job_run(JobName=started["job"], RunId=started["job_run_id"])["JobRun"]
    argv = glue_argv(started["job"], defaults, run["Arguments"])
    from b3_quotes.local_mode.spark import jvm_options

    env = {**aws_env(endpoint), "PYTHONPATH": os.pathsep.join([str(PATIENT_S3), str(REPO), str(GLUE_STANDIN)]),
           "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1",
           "PYSPARK_SUBMIT_ARGS": f"--master local[{cores}] --driver-java-options '{jvm_options()}' "
                                  f"--conf spark.ui.enabled=false --conf spark.sql.shuffle.partitions={cores} "
                                  f"{os.environ.get('BENCH_SPARK_CONF', '')} pyspark-shell"}
    done = subprocess.run([sys.executable, __file__, "--phase-job", json.dumps(argv)], env=env,
                          capture_output=True, text=True, timeout=7200)
    if done.returncode != 0:
        raise SystemExit(f"the job failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["cpu_s"]


def tree_cpu_s(root: int) -> float:
    """CPU seconds of `root`'s live descendants (with the children each has reaped), from /proc."""
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(entry.path, "stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                table[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    total, frontier, seen = 0, [root], {root}
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, ticks) in table.items():
            if ppid == parent and pid not in seen:
                seen.add(pid)
                total += ticks
                frontier.append(pid)
    return total / os.sysconf("SC_CLK_TCK")


def phase_job(argv: list[str]) -> None:
    """In the child: the job's main as Glue runs it, then this process tree's CPU, Spark still up."""
    from etl import glue_job

    glue_job.main(argv)
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime + tree_cpu_s(os.getpid())
    print(json.dumps({"cpu_s": cpu}))


def queue_messages(endpoint: str) -> int:
    """Messages S3 sent the crawler's event queue so far (nothing consumes them on moto)."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
    total = 0
    for url in sqs.list_queues().get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        total += int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    return total


def object_bytes(endpoint: str) -> Counter:
    """Bytes stored by key class, and the compact tables' bytes (what a query may scan)."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    sizes: Counter = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            if item["Key"].startswith(("raw/", "refined/")):
                sizes[key_class(item["Key"])] += item["Size"]
                if "_compact/" in item["Key"]:
                    sizes["compact"] += item["Size"]
    return sizes


def measure_run(endpoint: str, figures: RunFigures, files: list[Path], universe_args: list[str], cores: int) -> None:
    """One run as AWS runs it: the scrape command, the Lambda on its manifest, the job; each one's requests."""
    before_queue = queue_messages(endpoint)

    def scrape() -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run_scraper(endpoint, files, universe_args)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime

    figures.phases["scrape"] = counted(endpoint, scrape)
    manifest = newest_manifest(endpoint)
    started: dict = {}
    figures.phases["lambda"] = counted(endpoint, lambda: started.update(run_lambda(endpoint, manifest)))
    figures.phases["job"] = counted(endpoint, lambda: run_job(endpoint, started, cores))
    figures.queue_messages = queue_messages(endpoint) - before_queue


# ---- one lake, measured ----------------------------------------------------------------------

def measure_lake(endpoint: str, work: Path, label: str, quotes, universe_args: list[str], cores: int) -> dict:
    """Bootstrap, backfill and daily run of one lake on a fresh moto account; the runs' figures."""
    from bench_market import write_market_files  # pyright: ignore[reportMissingImports]

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()
    bootstrap(endpoint, work)
    yearly, daily_file = write_market_files(work / f"files-{label}", quotes)
    history = quotes[quotes["trade_date"] < max(quotes["trade_date"])]
    runs = {}
    for kind, files, rows in (("backfill", yearly, history), ("daily", [daily_file], quotes.iloc[0:0])):
        days = sorted(set(rows["trade_date"])) if kind == "backfill" else [max(quotes["trade_date"])]
        figures = RunFigures(label, tickers=quotes["ticker"].nunique(), sessions=len(days),
                             months=len({(d.year, d.month) for d in days}), years=len({d.year for d in days}))
        measure_run(endpoint, figures, files, universe_args, cores)
        if kind == "daily":
            figures.phases["query"] = counted(endpoint, lambda: run_query(endpoint))
        runs[kind] = figures
        print(f"  {label} {kind}: {figures.tickers} tickers x {figures.sessions} sessions; "
              f"scrape {figures.phases['scrape'].seconds:.1f} s, job {figures.phases['job'].seconds:.1f} s "
              f"({figures.phases['job'].cpu_s:.1f} CPU-s), {sum(figures.counts().values()):,} requests", flush=True)
    runs["bytes"] = object_bytes(endpoint)
    return runs


def save_measured(measured: dict[str, dict], path: Path) -> None:
    """The measured figures as JSON: `--from` prices them again without measuring."""
    def run(r: RunFigures) -> dict:
        return {**{k: getattr(r, k) for k in ("label", "tickers", "sessions", "months", "years", "queue_messages")},
                "phases": {n: {"counts": [[*k, v] for k, v in p.counts.items()], "seconds": p.seconds, "cpu_s": p.cpu_s}
                           for n, p in r.phases.items()}}
    path.write_text(json.dumps({u: {"backfill": run(r["backfill"]), "daily": run(r["daily"]), "bytes": r["bytes"]}
                                for u, r in measured.items()}, indent=1))


def load_measured(path: Path) -> dict[str, dict]:
    def run(d: dict) -> RunFigures:
        phases = {n: Phase(Counter({(s, o, c): v for s, o, c, v in p["counts"]}), p["seconds"], p["cpu_s"])
                  for n, p in d.pop("phases").items()}
        return RunFigures(**d, phases=phases)
    return {u: {"backfill": run(r["backfill"]), "daily": run(r["daily"]), "bytes": Counter(r["bytes"])}
            for u, r in json.loads(path.read_text()).items()}


# ---- scaling and pricing ---------------------------------------------------------------------

def units(kind: str, tickers: int, sessions: int, months: int, years: int) -> dict[str, float]:
    """How many of each key class a run touches: what its requests are counted per."""
    if kind == "daily":  # one session: its tickers' files; the windows' raw days do not grow with history
        return {"ticker-session": tickers, "session": 1, "ticker-month": tickers, "month": 1, "year": 1, "run": 1}
    return {"ticker-session": tickers * sessions, "session": sessions, "ticker-month": tickers * months,
            "month": months, "year": years, "run": 1}


def scale(measured: Counter, at: dict[str, float], to: dict[str, float]) -> Counter:
    """Each count times its class's units in the target over its units where measured."""
    return Counter({(s, o, c): n * to[c] / at[c] for (s, o, c), n in measured.items()})


@dataclass(frozen=True)
class Requests:
    s3_put: float
    s3_list: float
    s3_get: float      # GET and HEAD
    s3_free: float     # DELETE requests
    catalog: float     # Glue Data Catalog requests (tables, partitions, databases)
    glue_other: float  # job and crawler control (StartJobRun, StartCrawler, ...): not billed
    sqs: float
    athena: float
    other: float       # Lambda, STS, ...


CATALOG_OPS = re.compile(r"(Table|Partition|Database|Catalog|UserDefinedFunction)")


def by_api(counts: Counter) -> Requests:
    sums: Counter = Counter()
    for (service, operation, _), n in counts.items():
        if service == "s3":
            bucket = ("s3_list" if operation in ("ListObjects", "ListBuckets") else "s3_put" if operation in S3_PUT_TIER
                      else "s3_free" if operation in S3_FREE else "s3_get")
        elif service == "glue":
            bucket = "catalog" if CATALOG_OPS.search(operation) else "glue_other"
        else:
            bucket = service if service in ("sqs", "athena") else "other"
        sums[bucket] += n
    return Requests(**{f: float(sums[f]) for f in Requests.__dataclass_fields__})


def glue_seconds(files: float, extra_cpu_s_per_file: float, fixed_s: float, workers: int) -> float:
    """A run's Glue time on `workers` G.1X: the fixed part plus its files' CPU spread over the executors'
    vCPUs, and never less than the PUTs' latency over the writer threads in flight (MODEL)."""
    executors = workers - 1
    cpu_bound = files * extra_cpu_s_per_file / (MODEL["vcpus_per_worker"] * executors)
    latency_bound = files * MODEL["put_latency_s"] / (MODEL["put_threads_per_task"] * MODEL["vcpus_per_worker"] * executors)
    return fixed_s + max(cpu_bound, latency_bound)


def run_dollars(requests: Requests, glue_s: float, workers: int, crawls: int, queue_messages: float,
                athena_queries: int, athena_bytes: float, region: str) -> dict[str, float]:
    """One run's bill by line, at list prices with no free tier."""
    dpu_hour = price("glue_dpu_hour", region)
    return {
        "glue job": workers * max(glue_s, PRICES["glue_job_min_s"]) / 3600 * dpu_hour,
        "crawler": crawls * MODEL["crawler_dpus"] * PRICES["glue_crawler_min_s"] / 3600 * dpu_hour,
        "s3 requests": ((requests.s3_put + requests.s3_list) * price("s3_put_tier_per_1k", region)
                        + requests.s3_get * price("s3_get_tier_per_1k", region)) / 1000,
        "catalog": requests.catalog * price("catalog_requests_per_m", region) / 1e6,
        # each S3 event: S3's send, the crawler's receive and delete; plus the pipeline's own calls
        "sqs": (3 * queue_messages + requests.sqs) * price("sqs_requests_per_m", region) / 1e6,
        "athena": athena_queries * max(athena_bytes, PRICES["athena_min_bytes"]) / 2**40 * price("athena_per_tb", region),
        "logs": workers * MODEL["log_mb_per_worker_run"] / 1024 * price("logs_ingest_per_gb", region),
    }


@dataclass
class Scenario:
    universe: str
    years: int
    kind: str
    workers: int
    requests: Requests
    queue_messages: float
    glue_s: float
    dollars: dict[str, dict[str, float]]
    files: float


def scenarios(measured: dict[str, dict], sql_queries: int) -> list[Scenario]:
    """Every universe x years x run kind x workers, scaled from the lake measured for that universe."""
    ibov_runs = measured["IBOV"]
    base_daily, base_backfill = ibov_runs["daily"], ibov_runs["backfill"]
    fixed_s = base_daily.phases["job"].cpu_s  # as if it all ran on one vCPU: the wall here is the load's
    files_of = {kind: refined_files(r.phases["job"].counts) for kind, r in (("daily", base_daily),
                                                                            ("backfill", base_backfill))}
    extra_cpu = ((base_backfill.phases["job"].cpu_s - base_daily.phases["job"].cpu_s)
                 / max(files_of["backfill"] - files_of["daily"], 1))
    out = []
    for universe, tickers in (("IBOV", IBOV), ("market", WHOLE_MARKET)):
        runs = measured["IBOV" if universe == "IBOV" else "market"]
        for years in (1, 10):
            for kind in ("backfill", "daily"):
                run = runs[kind]
                at = units(kind, run.tickers, run.sessions, run.months, run.years)
                to = units(kind, tickers, B3_SESSIONS_PER_YEAR * years, 12 * years, years)
                counts = scale(run.counts(), at, to)
                requests = by_api(counts)
                if kind == "daily":  # the query phase ran one example; a day runs each of them
                    requests = dataclasses.replace(requests, athena=requests.athena * sql_queries)
                files = refined_files(counts)
                queue = run.queue_messages * to["year"] / at["year"]
                compact = runs["bytes"]["compact"] * (tickers * years) / (run.tickers * max(run.years, 1)) \
                    if kind == "daily" else 0.0
                queries = sql_queries if kind == "daily" else 0
                for workers in (2, 10):
                    glue_s = glue_seconds(files, extra_cpu, fixed_s, workers)
                    dollars = {region: run_dollars(requests, glue_s, workers, 1, queue, queries, compact, region)
                               for region in REGIONS}
                    out.append(Scenario(universe, years, kind, workers, requests, queue, glue_s, dollars, files))
    return out


def refined_files(counts: Counter) -> float:
    """Refined partition files a run writes: its uploads (single or multipart) of ticker-session and ticker-month keys."""
    return sum(n for (s, o, c), n in counts.items()
               if s == "s3" and o in ("PutObject", "CompleteMultipartUpload") and c.startswith("ticker-"))


# ---- output ----------------------------------------------------------------------------------

def print_measured(measured: dict[str, dict]) -> None:
    print("\nmeasured on moto (requests by service and operation; S3 by key class):")
    for universe, runs in measured.items():
        for kind in ("backfill", "daily"):
            run: RunFigures = runs[kind]
            print(f"  {universe} {kind}: {run.tickers} tickers, {run.sessions} sessions, {run.months} months, "
                  f"{run.years} year(s); S3 events to the crawler's queue: {run.queue_messages}")
            for name, phase in run.phases.items():
                timing = f"{phase.seconds:6.1f} s, {phase.cpu_s:6.1f} CPU-s" if name in ("scrape", "job") else ""
                print(f"    {name:<7} {sum(phase.counts.values()):>8,} requests  {timing}")
                for (service, operation, cls), n in sorted(phase.counts.items()):
                    print(f"             {service:<7} {operation:<24} {cls:<15} {n:>8,}")
        sizes = runs["bytes"]
        print(f"  {universe} lake after both runs: {sum(v for k, v in sizes.items() if k != 'compact') / 2**20:.1f} MB "
              f"stored, compact tables {sizes['compact'] / 2**20:.2f} MB")


def print_table(rows: list[Scenario], model_line: str) -> None:
    print(f"\non paper ({model_line}):")
    header = ("| universe | years | run | workers | S3 PUT | S3 LIST | S3 GET+HEAD | catalog | SQS | Athena "
              "| Glue min | $ us-east-1 | $ sa-east-1 |")
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for s in rows:
        r = s.requests
        print(f"| {s.universe} | {s.years} | {s.kind} | {s.workers} | {r.s3_put:,.0f} | {r.s3_list:,.0f} "
              f"| {r.s3_get:,.0f} | {r.catalog:,.0f} | {3 * s.queue_messages + r.sqs:,.0f} | {r.athena:,.0f} "
              f"| {s.glue_s / 60:.1f}{' *' if s.glue_s > JOB_TIMEOUT_MIN * 60 else ''} "
              f"| {sum(s.dollars['us-east-1'].values()):.3f} "
              f"| {sum(s.dollars['sa-east-1'].values()):.3f} |")


def print_lines(rows: list[Scenario]) -> None:
    print("\nthe bill's lines, us-east-1 (USD):")
    names = list(rows[0].dollars["us-east-1"])
    print("| universe | years | run | workers | " + " | ".join(names) + " |")
    print("|---|---|---|---|" + "---|" * len(names))
    for s in rows:
        print(f"| {s.universe} | {s.years} | {s.kind} | {s.workers} | "
              + " | ".join(f"{s.dollars['us-east-1'][n]:.4f}" for n in names) + " |")


def measure(args: argparse.Namespace) -> dict[str, dict]:
    """The IBOV lake and the market sample, each on a fresh account of one counting moto server."""
    sys.path.insert(0, str(REPO))
    from bench_history import IBOV_FILE, synthetic_quotes, universe  # pyright: ignore[reportMissingImports]
    from bench_market import market_codes  # pyright: ignore[reportMissingImports]

    def quotes(tickers: list[str]):
        frame = synthetic_quotes(args.years, args.seed, tickers)
        if args.sessions:
            frame = frame[frame["trade_date"].isin(sorted(set(frame["trade_date"]))[-args.sessions:])]
        return frame

    work = Path(tempfile.mkdtemp(prefix="bench-aws-cost-"))
    measured: dict[str, dict] = {}
    PATIENT_S3.mkdir(exist_ok=True)
    (PATIENT_S3 / "sitecustomize.py").write_text(SITE_CUSTOMIZE)
    try:
        with counting_moto() as endpoint:
            print(f"counting moto server at {endpoint}; the job's Spark local[{args.cores}]", flush=True)
            os.environ.update({k: v for k, v in aws_env(endpoint).items() if k.startswith("AWS_")})
            measured["IBOV"] = measure_lake(endpoint, work, "IBOV", quotes(universe()),
                                            ["--universe", "ibov", "--ibov-file", str(IBOV_FILE)], args.cores)
            measured["market"] = measured["IBOV"] if args.only_ibov else measure_lake(
                endpoint, work, "market", quotes(market_codes(args.market_instruments)), ["--universe", "all"],
                args.cores)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(PATIENT_S3, ignore_errors=True)
    return measured


def print_storage(measured: dict[str, dict]) -> None:
    """What the lake costs a month to keep, after the backfill: its bytes by key class, scaled like the counts."""
    print("\nS3 storage a month after the backfill (raw and refined, Standard):")
    for universe, tickers in (("IBOV", IBOV), ("market", WHOLE_MARKET)):
        runs = measured[universe]
        first, daily = runs["backfill"], runs["daily"]
        at = units("backfill", first.tickers, first.sessions + daily.sessions, first.months, first.years)
        for years in (1, 10):
            to = units("backfill", tickers, B3_SESSIONS_PER_YEAR * years, 12 * years, years)
            gb = sum(n * to[c] / at[c] for c, n in runs["bytes"].items() if c != "compact") / 2**30
            dollars = ", ".join(f"${gb * price('s3_storage_gb_month', r):.2f} {r}" for r in REGIONS)
            print(f"  {universe:<6} {years:>2} year(s): {gb:6.2f} GB: {dollars}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--market-instruments", type=int, default=60)
    parser.add_argument("--years", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cores", type=int, default=2, help="the job's Spark local[N]")
    parser.add_argument("--only-ibov", action="store_true", help="measure the IBOV lake only (a quick check)")
    parser.add_argument("--sessions", type=int, help="keep only the last N sessions (a quick check)")
    parser.add_argument("--save", type=Path, help="write the measured figures to this JSON file")
    parser.add_argument("--from", dest="from_file", type=Path, help="price the figures --save wrote, measure nothing")
    parser.add_argument("--serve-moto", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--phase-job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_moto:
        serve_counting_moto(args.serve_moto)
        return 0
    if args.phase_job:
        phase_job(json.loads(args.phase_job))
        return 0

    measured = load_measured(args.from_file) if args.from_file else measure(args)
    if args.save:
        save_measured(measured, args.save)
    print_measured(measured)
    sql_queries = MODEL["athena_queries_per_day"] or len(list((REPO / "sql").glob("*.sql")))
    rows = scenarios(measured, sql_queries)
    base = measured["IBOV"]
    model_line = (f"Glue time = {base['daily'].phases['job'].cpu_s:.1f} s (the IBOV daily job's CPU, measured) + "
                  f"files x CPU per file / (4 vCPU x executors); crawl {MODEL['crawler_dpus']} DPU x 10 min; "
                  f"{sql_queries} Athena queries a day at >= 10 MB each; no free tier")
    print_table(rows, model_line)
    print(f"* past the job's own {JOB_TIMEOUT_MIN}-minute timeout (infra/glue-job.json): the Lambda sizes such a "
          "run's workers and timeout from its manifest (docs/aws-job.md)")
    print_lines(rows)
    print_storage(measured)
    missing = sorted(n for n, v in PRICES.items() if isinstance(v, dict) and v["sa-east-1"] is None)
    print(f"\nsa-east-1: us-east-1's price used for {', '.join(missing)} (not found in what was read)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
