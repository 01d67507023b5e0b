"""Lambda: on a raw run's manifest (its commit record, written last), start the Glue job that refines exactly that run."""

from __future__ import annotations

import logging
import os
import time
from typing import Any
from urllib.parse import unquote_plus

import boto3

from contract.layout import is_manifest_key

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)
CONCURRENCY_RETRY_DELAYS_S = (5, 15, 30)
# StartJobRun's opt-in to job run queuing: a run refused by the job's MaxConcurrentRuns waits
# (WAITING) instead of failing. Older botocore models (1.34.22 lacks it; the Lambda runtime
# bundles a boto3 1.34) would reject the call, so it is sent only when the client's model
# has it; the job definition opts in too (infra/glue-job.json).
QUEUING_PARAMETER = "JobRunQueuingEnabled"


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


def start_job_runs(glue: Any, job_name: str, event: dict[str, Any],
                  sleep=time.sleep, retry_delays_s=CONCURRENCY_RETRY_DELAYS_S) -> list[dict[str, str]]:
    """Start one job run per manifest, passing its key (the manifest lists the run's days and files).

    The job allows one run at a time. With job run queuing (the job's setting, and the run's
    when this SDK knows it) a second scrape landing while a run is under way queues its run.
    Without it the run is refused with ConcurrentRunsExceededException: wait and retry, then
    raise so the asynchronous invocation is retried by Lambda. Should that fail too, the
    manifest stays pending and the next job run refines it (see etl.glue_job.refine_run).
    """
    started = []
    queuing = queuing_arguments(glue)
    for bucket, key in manifest_keys(event):
        arguments = {"--manifest_key": key}
        for attempt in range(len(retry_delays_s) + 1):
            try:
                run_id = glue.start_job_run(JobName=job_name, Arguments=arguments, **queuing)["JobRunId"]
                break
            except glue.exceptions.ConcurrentRunsExceededException:
                if attempt == len(retry_delays_s):
                    raise
                LOG.warning("job %s busy, retrying in %s s", job_name, retry_delays_s[attempt])
                sleep(retry_delays_s[attempt])
        LOG.info("started %s run %s for s3://%s/%s", job_name, run_id, bucket, key)
        started.append({"bucket": bucket, "manifest_key": key, "job_run_id": run_id})
    return started


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job_name = os.environ["GLUE_JOB_NAME"]
    glue = boto3.client("glue")
    return {"job_runs": start_job_runs(glue, job_name, event)}
