"""Job stand-in: like awslabs/aws-glue-libs' Job, a wrapper over one per-process object.

Glue's `Job(glueContext)` wraps the JVM's single `Job` object, so a second init or commit in
one process (a second Job over the same JVM) is a mistake: the stand-in raises on it. Each
init and commit is recorded in `Job.runs`, and appended to the file named by
AWSGLUE_STANDIN_RECORD when set, so a test can count them in a child process.
"""

from __future__ import annotations

import json
import os

# The process's one job, as the JVM holds it: shared by every Job instance.
_PROCESS_JOB = {"initialized": False, "committed": False}


class JobStateError(RuntimeError):
    pass


def _record(event: str, **fields) -> None:
    path = os.environ.get("AWSGLUE_STANDIN_RECORD")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"event": event, **fields}) + "\n")


class Job:
    runs: list[dict] = []

    def __init__(self, glue_context) -> None:
        self.glue_context = glue_context

    def init(self, name: str, args: dict | None = None) -> None:
        if _PROCESS_JOB["initialized"]:
            raise JobStateError("Job.init called a second time in this process")
        _PROCESS_JOB["initialized"] = True
        self.record = {"name": name, "args": dict(args or {}), "committed": False}
        Job.runs.append(self.record)
        _record("init", name=name)

    def isInitialized(self) -> bool:  # noqa: N802 - Glue's name
        return _PROCESS_JOB["initialized"]

    def commit(self) -> None:
        if not _PROCESS_JOB["initialized"]:
            raise JobStateError("Job.commit called before Job.init")
        if _PROCESS_JOB["committed"]:
            raise JobStateError("Job.commit called a second time in this process")
        _PROCESS_JOB["committed"] = True
        Job.runs[-1]["committed"] = True
        _record("commit")
