"""Shared fixtures: one local Spark session, fake AWS credentials, moto, settings kept from any .env, the full lake."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "data" / "sample" / "yahoo"
TEST_DATA = Path(__file__).resolve().parent / "data"
EVENTS = Path(__file__).resolve().parent / "events"

# Variables a developer's shell may hold that choose the bucket, the source, the tickers or the lake.
SETTINGS_VARIABLES = ("BUCKET", "TICKERS", "ATIVO", "TICKER", "SOURCE", "LAKE_DIR", "UNIVERSE", "ENV_FILE",
                      "GLUE_DATABASE", "DOWNLOAD_TIMEOUT_S", "LAKE_LOCK_WAIT_S")


def isolate_settings(patch: pytest.MonkeyPatch, no_env_dir: Path) -> None:
    """Settings read no developer .env (the repository root is an empty folder) and no such variable."""
    for name in SETTINGS_VARIABLES:
        patch.delenv(name, raising=False)
    try:
        from b3_quotes.config import settings
    except ModuleNotFoundError as missing:
        if missing.name != "dotenv":  # only the Lambda's venv (.ci/run) lacks it, and nothing there reads settings
            raise
    else:
        patch.setattr(settings, "REPO_ROOT", no_env_dir)


@pytest.fixture(autouse=True)
def isolated_settings(monkeypatch, tmp_path_factory):
    """No developer .env or variable may send a test run to a real bucket, Athena or another lake."""
    isolate_settings(monkeypatch, tmp_path_factory.mktemp("no_env"))


# The modules that take longest (worker-seconds of `make test` on 2 cores, --durations=0, 2026-12-07),
# handed out first, longest first.
# `--dist loadfile` runs a module whole on one worker: a long one handed out last leaves the other
# worker idle at the end. `make test` passes --no-loadscope-reorder, so that xdist hands modules
# out in collection order (by default it orders them by their number of tests).
LONG_MODULES = ("test_faults.py", "test_corporate_events.py", "test_verify.py", "test_pipeline_local.py",
                "test_aws_scripts.py", "test_doc_commands.py", "test_glue_job.py", "test_query_safety.py",
                "test_transforms.py", "test_incremental.py", "test_health.py", "test_charts.py",
                "test_aws_end_to_end.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """LONG_MODULES first, longest first; the rest after, as collected (a module's tests stay in order)."""
    rank = {name: n for n, name in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_MODULES)))


# Spark's Python workers take the environment of the JVM, started once: fake credentials from the
# start, so that tasks reaching a moto S3 (its endpoint travels with storage.Lake) sign their
# requests with them, and nothing can reach a real account.
FAKE_AWS_ENVIRONMENT = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_EC2_METADATA_DISABLED": "true"}


# Set before any test starts a JVM (the spark fixture, or a pipeline run's own local Spark).
os.environ.update(FAKE_AWS_ENVIRONMENT)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def spark():
    from b3_quotes.local_mode.spark import local_spark

    session = local_spark("b3-quotes-tests", cores=1)
    yield session
    session.stop()


@pytest.fixture
def said(caplog):
    """The lines the library logged so far in the test, as a command line shows them ("warning: " before a warning)."""
    from b3_quotes.contract.logs import PACKAGES, LineFormatter

    caplog.set_level(logging.INFO)
    for name in PACKAGES:  # whatever an earlier command in this process configured (--quiet too)
        caplog.set_level(logging.INFO, logger=name)
    return lambda: [LineFormatter().format(record) for record in caplog.records]


@pytest.fixture
def aws_credentials(monkeypatch):
    """Fake credentials so nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """An in-process moto server on a free loopback port."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_session_server() -> Iterator[str]:
    """One moto server for the whole session: starting one per test cost more than most tests."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def moto_endpoint(moto_session_server) -> str:
    """The session's moto server, reset to an empty account for this test."""
    # The in-process server keeps moto's global state: every test starts from an empty account.
    requests.post(f"{moto_session_server}/moto-api/reset", timeout=10).raise_for_status()
    return moto_session_server


@pytest.fixture(scope="session")
def aws_cli(tmp_path_factory) -> Iterator[Path]:
    """A folder holding the real AWS CLI as `aws`, imported once for the session (tests/aws_cli_server.py):
    put it first on the PATH of the bash scripts under test."""
    from tests.aws_cli_server import aws_cli_folder

    with aws_cli_folder(tmp_path_factory.mktemp("aws_cli")) as folder:
        yield folder


@pytest.fixture
def s3_endpoint(moto_endpoint, monkeypatch):
    """A moto server as the S3 endpoint of every client (boto3 and pyarrow), fake credentials."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                        "AWS_ENDPOINT_URL": moto_endpoint}.items():
        monkeypatch.setenv(name, value)
    return moto_endpoint


def scraped_once(tmp_path_factory, name: str, end: str) -> Path:
    """A lake of tests/helpers.py's START to `end` of PETR4 and VALE3, scraped and refined in one run."""
    from tests.helpers import START, csv_run

    lake = tmp_path_factory.mktemp(name) / "lake"
    with pytest.MonkeyPatch.context() as patch:
        isolate_settings(patch, tmp_path_factory.mktemp(f"no_env_{name}"))
        assert csv_run(lake, START, end) == 0
    return lake


@pytest.fixture(scope="session")
def full_lake(tmp_path_factory) -> Path:
    """START to END in one run, once a session: the reference the whole-pipeline tests compare with.

    Read it, or copy it (tests/helpers.py `copy_lake`) before changing it.
    """
    from tests.helpers import END

    return scraped_once(tmp_path_factory, "full", END)


@pytest.fixture(scope="session")
def lake_to_march_30(tmp_path_factory) -> Path:
    """START to 2020-03-30 in one run, once a session: a history the next day's run (END) lands on. Copy it."""
    return scraped_once(tmp_path_factory, "to_march_30", "2020-03-30")
