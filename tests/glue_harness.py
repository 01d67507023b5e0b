"""Run the Glue job as Glue starts it: the real job definition, Glue's argument merge, a stand-in awsglue."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from tests.conftest import REPO

GLUE_STANDIN = Path(__file__).resolve().parent / "glue_standin"
JOB_DEFINITION = REPO / "infra" / "glue-job.json"


def render_job_definition(values: dict[str, str]) -> dict:
    """infra/glue-job.json with its ${NAME} placeholders filled, as bootstrap renders it."""
    text = JOB_DEFINITION.read_text()
    missing = sorted(set(re.findall(r"\$\{(\w+)\}", text)) - set(values))
    assert not missing, f"placeholders the test does not fill: {missing}"
    return json.loads(re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text))


def glue_argv(job_name: str, default_arguments: dict[str, str], run_arguments: dict[str, str]) -> list[str]:
    """sys.argv as Glue builds it: run Arguments merged over DefaultArguments, plus Glue's own options."""
    merged = {**default_arguments, **run_arguments}
    argv = ["glue_job.py", "--JOB_ID", "j_0123", "--JOB_RUN_ID", "jr_0123", "--JOB_NAME", job_name,
            "--job-bookmark-option", "job-bookmark-disable"]
    for name, value in merged.items():
        argv += [name, value]
    return argv


def use_awsglue_standin(monkeypatch) -> None:
    """Make `import awsglue` find the stand-in (tests/glue_standin) for this test only."""
    monkeypatch.syspath_prepend(str(GLUE_STANDIN))
    for name in [m for m in sys.modules if m == "awsglue" or m.startswith("awsglue.")]:
        monkeypatch.delitem(sys.modules, name)
