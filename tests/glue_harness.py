"""Run the Glue job as Glue starts it: the real job definition, Glue's argument merge, Glue Studio's
generated script, a child process with only the job's zip on its path, a stand-in awsglue."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, SAMPLE_DIR

GLUE_STANDIN = Path(__file__).resolve().parent / "glue_standin"
JOB_DEFINITION = REPO / "infra" / "glue-job.json"
JOB = "b3-quotes-refine"
# The values bootstrap renders into the job definition, for the tests.
JOB_VALUES = {"BUCKET": "b3-test-lake", "CRAWLER_NAME": "b3-quotes-crawler", "REGION": "sa-east-1",
              "GLUE_ROLE_ARN": "arn:aws:iam::123456789012:role/b3-quotes-glue", "GLUE_DATABASE": "b3_quotes",
              "GLUE_LOG_GROUP": "/aws-glue/jobs/b3-quotes-refine"}


def render_job_definition(values: dict[str, str]) -> dict:
    """infra/glue-job.json with its ${NAME} placeholders filled, as bootstrap renders it."""
    text = JOB_DEFINITION.read_text()
    missing = sorted(set(re.findall(r"\$\{(\w+)\}", text)) - set(values))
    assert not missing, f"placeholders the test does not fill: {missing}"
    return json.loads(re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text))


def glue_argv(job_name: str, default_arguments: dict[str, str], run_arguments: dict[str, str]) -> list[str]:
    """sys.argv as Glue builds it: run Arguments merged over DefaultArguments, plus Glue's own options.

    A key whose value is empty is passed bare, as a flag (how AWS documents `--enable-metrics ""`).
    """
    merged = {**default_arguments, **run_arguments}
    argv = ["glue_job.py", "--JOB_ID", "j_0123", "--JOB_RUN_ID", "jr_0123", "--JOB_NAME", job_name,
            "--job-bookmark-option", "job-bookmark-disable"]
    for name, value in merged.items():
        argv += [name] if value == "" else [name, value]
    return argv


def use_awsglue_standin(monkeypatch) -> None:
    """Make `import awsglue` find the stand-in (tests/glue_standin) for this test only."""
    monkeypatch.syspath_prepend(str(GLUE_STANDIN))
    for name in [m for m in sys.modules if m == "awsglue" or m.startswith("awsglue.")]:
        monkeypatch.delitem(sys.modules, name)


# What Glue Studio writes for a graph of S3ParquetSource and CustomCode nodes, line for line as
# in the scripts it generates (imports, the custom node's function, the job's init, the nodes
# in graph order, the commit).
GENERATED_IMPORTS = """\
import sys
from awsglue.transforms import *
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.dynamicframe import DynamicFrameCollection
from awsglue.dynamicframe import DynamicFrame
"""
GENERATED_JOB_INIT = """\
args = getResolvedOptions(sys.argv, ["JOB_NAME"])
sc = SparkContext()
glueContext = GlueContext(sc)
spark = glueContext.spark_session
job = Job(glueContext)
job.init(args["JOB_NAME"], args)
"""


def node_variable(node_id: str, node: dict) -> str:
    """Glue Studio's name for a node's frame: its Name without non-word characters, then its id."""
    return f"{re.sub(r'[^A-Za-z0-9_]', '', node['Name'])}_{node_id}"


def generate_visual_script(definition: dict) -> str:
    """The script Glue generates from the definition's CodeGenConfigurationNodes."""
    nodes = {node_id: next(iter(spec.items())) for node_id, spec in definition["CodeGenConfigurationNodes"].items()}
    unknown = {kind for kind, _ in nodes.values()} - {"S3ParquetSource", "CustomCode"}
    assert not unknown, f"node types this generator does not write: {unknown}"
    functions, body = [], []
    for kind, node in nodes.values():
        if kind == "CustomCode":
            code = "\n".join(f"    {line}" if line.strip() else "" for line in node["Code"].rstrip("\n").split("\n"))
            functions.append(f"# Script generated for node {node['Name']}\n"
                             f"def {node['ClassName']}(glueContext, dfc) -> DynamicFrameCollection:\n{code}\n")
    for node_id, (kind, node) in nodes.items():  # sources first: the graph's order
        if kind == "S3ParquetSource":
            var = node_variable(node_id, node)
            recurse = '\n        "recurse": True,' if node.get("Recurse") else ""
            paths = ", ".join(json.dumps(p) for p in node["Paths"])
            body.append(f"# Script generated for node {node['Name']}\n"
                        f"{var} = glueContext.create_dynamic_frame.from_options(\n"
                        f"    format_options={{}},\n"
                        f'    connection_type="s3",\n'
                        f'    format="parquet",\n'
                        f"    connection_options={{\n"
                        f'        "paths": [{paths}],{recurse}\n'
                        f"    }},\n"
                        f'    transformation_ctx="{var}",\n'
                        f")\n")
    for node_id, (kind, node) in nodes.items():
        if kind == "CustomCode":
            inputs = ", ".join(f'"{node_variable(i, nodes[i][1])}": {node_variable(i, nodes[i][1])}'
                               for i in node["Inputs"])
            body.append(f"# Script generated for node {node['Name']}\n"
                        f"{node_variable(node_id, node)} = {node['ClassName']}(\n"
                        f"    glueContext, DynamicFrameCollection({{{inputs}}}, glueContext)\n"
                        f")\n")
    return "\n".join([GENERATED_IMPORTS, *functions, "", GENERATED_JOB_INIT, *body, "job.commit()\n"])


# Runs a script as Glue does: its --extra-py-files and the stand-in first on the path, nothing
# of the repository (-I: no current folder, no PYTHONPATH), argv as Glue passes it.
_BOOT = ("import runpy, sys\n"
         f"sys.path[:0] = sys.argv[1].split({os.pathsep!r})\n"
         "sys.argv = sys.argv[2:]\n"
         "runpy.run_path(sys.argv[0], run_name='__main__')\n")


def run_glue_script(script: Path, argv: list[str], extra_py_files: Path, env: dict[str, str],
                    cwd: Path) -> subprocess.CompletedProcess:
    """`script` in a child Python with `argv[1:]` as its arguments; returns the finished process."""
    from b3_quotes.local_mode.spark import jvm_options  # errors-only logging, the class archive: as a local run's JVM

    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYSPARK", "AWS_"))}
    child_env.update({"PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1",
                      # Glue hands --extra-py-files to its executors too: their tasks import the job from it.
                      "PYSPARK_SUBMIT_ARGS": f"--master local[1] --py-files {shlex.quote(str(extra_py_files))} "
                                             f"--driver-java-options {shlex.quote(jvm_options())} "
                                             "--conf spark.ui.enabled=false "
                                             "--conf spark.sql.shuffle.partitions=1 pyspark-shell",
                      **env})
    path = os.pathsep.join([str(extra_py_files), str(GLUE_STANDIN)])
    return subprocess.run([sys.executable, "-I", "-c", _BOOT, path, str(script), *argv[1:]],
                          env=child_env, cwd=cwd, capture_output=True, text=True, timeout=600)


def scrape_without_trigger(lake: Path, ticker: str, start: str, end: str, run_id: str) -> None:
    """What a scrape run leaves in the lake (raw files, then its manifest), no trigger."""
    from b3_quotes.contract.tables import RAW_QUOTES
    from b3_quotes.storage import Lake
    from scraper.raw_writer import RunStamp, write_raw_run
    from scraper.sources.csv_files import CsvSource

    quotes = CsvSource(SAMPLE_DIR).fetch([ticker], dt.date.fromisoformat(start), dt.date.fromisoformat(end)).quotes
    write_raw_run(Lake.local(lake), {RAW_QUOTES: quotes}, RunStamp("csv", {}, dt.datetime(2020, 3, 14, tzinfo=dt.UTC), run_id))
