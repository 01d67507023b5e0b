"""Lambda: on a raw run's manifest (its commit record, written last), start the Glue job that refines exactly that run."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

import boto3

from b3_quotes.contract.layout import ManifestError, RunManifest, is_manifest_key

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)
CONCURRENCY_RETRY_DELAYS_S = (5, 15, 30)
# StartJobRun's opt-in to job run queuing: a run refused by the job's MaxConcurrentRuns waits
# (WAITING) instead of failing. Older botocore models (1.34.22 lacks it; the Lambda runtime
# bundles a boto3 1.34) would reject the call, so it is sent only when the client's model
# has it; the job definition opts in too (infra/glue-job.json).
QUEUING_PARAMETER = "JobRunQueuingEnabled"


# A run's resources follow its size (StartJobRun takes WorkerType, NumberOfWorkers and Timeout per
# run), within the deployment's limits (.env GLUE_MAX_WORKERS, GLUE_MAX_TIMEOUT_MIN, passed by
# bootstrap in the function's environment). A daily run gets the job's own 2 x G.1X, 30 minutes.
WORKER_TYPE = "G.1X"
MIN_WORKERS, MIN_TIMEOUT_MIN = 2, 30
DEFAULT_MAX_WORKERS, DEFAULT_MAX_TIMEOUT_MIN = 10, 120
# Refined files one G.1X executor writes a minute, on paper: docs/design.md puts an executor at
# ~2-4 k PUTs a second (4 tasks x 32 threads, 30-60 ms a PUT); a quarter of its lower bound.
FILES_PER_EXECUTOR_MINUTE = 30_000
# Executors are added until the writes would take this long; a run's start and reads cost about
# OVERHEAD_MIN; the timeout allows twice the writes' estimate.
TARGET_WRITE_MIN, OVERHEAD_MIN = 10, 10


def run_resources(days: int, tickers: int, max_workers: int, max_timeout_min: int) -> dict[str, Any]:
    """WorkerType, NumberOfWorkers and Timeout (minutes) for a run of `days` x `tickers` partitions.

    Its files are at most days x tickers (one per ticker and session, a ticker need not trade every
    day); a worker is the driver, the others executors.
    """
    files = days * tickers
    executors = max(1, math.ceil(files / (FILES_PER_EXECUTOR_MINUTE * TARGET_WRITE_MIN)))
    workers = max(MIN_WORKERS, min(executors + 1, max_workers))
    minutes = OVERHEAD_MIN + 2 * math.ceil(files / (FILES_PER_EXECUTOR_MINUTE * (workers - 1)))
    return {"WorkerType": WORKER_TYPE, "NumberOfWorkers": workers,
            "Timeout": max(MIN_TIMEOUT_MIN, min(minutes, max_timeout_min))}


def sized_from_manifest(s3: Any, max_workers: int, max_timeout_min: int) -> Callable[[str, str], dict[str, Any]]:
    """(bucket, key) -> the run's resources, read from its manifest (a small JSON object). A manifest
    that cannot be read starts the run with the job's own resources: sizing never stops a run."""
    def resources(bucket: str, key: str) -> dict[str, Any]:
        try:
            manifest = RunManifest.parse(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), key)
        except (ManifestError, s3.exceptions.ClientError) as exc:
            LOG.warning("cannot size the run of s3://%s/%s (%s): the job's own resources", bucket, key, exc)
            return {}
        return run_resources(len(manifest.days), len(manifest.tickers), max_workers, max_timeout_min)
    return resources


def queuing_arguments(glue: Any) -> dict[str, bool]:
    """{QUEUING_PARAMETER: True} when this Glue client's API model knows the parameter, else {}."""
    try:
        members = glue.meta.service_model.operation_model("StartJobRun").input_shape.members
    except AttributeError:  # a stand-in client (local mode) without botocore's model
        return {}
    return {QUEUING_PARAMETER: True} if QUEUING_PARAMETER in members else {}


def manifest_keys(event: dict[str, Any]) -> list[tuple[str, str]]:
    """(bucket, key) of every run manifest in an S3 event; other keys are ignored."""
    found = []
    for record in event.get("Records", []):
        s3 = record.get("s3", {})
        bucket = s3.get("bucket", {}).get("name", "")
        # S3 event keys are URL-encoded (`dt%3D2024-01-02`, spaces as `+`).
        key = unquote_plus(s3.get("object", {}).get("key", ""))
        if is_manifest_key(key):
            found.append((bucket, key))
        else:
            LOG.info("ignoring s3://%s/%s: not a raw run manifest", bucket, key)
    return list(dict.fromkeys(found))  # a record repeated in one event starts one run


def start_job_runs(glue: Any, job_name: str, event: dict[str, Any], sleep=time.sleep,
                   retry_delays_s=CONCURRENCY_RETRY_DELAYS_S,
                   resources: Callable[[str, str], dict[str, Any]] = lambda bucket, key: {}) -> list[dict[str, Any]]:
    """Start one job run per manifest, passing its key (the manifest lists the run's days and files).

    The job allows one run at a time. With job run queuing (the job's setting, and the run's
    when this SDK knows it) a second scrape landing while a run is under way queues its run.
    Without it the run is refused with ConcurrentRunsExceededException: wait and retry, then
    raise so the asynchronous invocation is retried by Lambda. Should that fail too, the
    manifest stays pending and the next job run refines it (see etl.glue_job.refine_run).
    `resources(bucket, key)` gives the run's WorkerType, NumberOfWorkers and Timeout ({}: the job's).
    """
    started = []
    queuing = queuing_arguments(glue)
    for bucket, key in manifest_keys(event):
        arguments = {"--manifest_key": key}
        sized = resources(bucket, key)
        for attempt in range(len(retry_delays_s) + 1):
            try:
                run_id = glue.start_job_run(JobName=job_name, Arguments=arguments, **queuing, **sized)["JobRunId"]
                break
            except glue.exceptions.ConcurrentRunsExceededException:
                if attempt == len(retry_delays_s):
                    raise
                LOG.warning("job %s busy, retrying in %s s", job_name, retry_delays_s[attempt])
                sleep(retry_delays_s[attempt])
        LOG.info("started %s run %s for s3://%s/%s %s", job_name, run_id, bucket, key, sized)
        started.append({"bucket": bucket, "manifest_key": key, "job_run_id": run_id, **sized})
    return started


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job_name = os.environ["GLUE_JOB_NAME"]
    glue = boto3.client("glue")
    resources = sized_from_manifest(boto3.client("s3"),
                                    int(os.environ.get("GLUE_MAX_WORKERS") or DEFAULT_MAX_WORKERS),
                                    int(os.environ.get("GLUE_MAX_TIMEOUT_MIN") or DEFAULT_MAX_TIMEOUT_MIN))
    return {"job_runs": start_job_runs(glue, job_name, event, resources=resources)}
