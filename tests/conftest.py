"""Shared fixtures: one local Spark session, fake AWS credentials, the bundled data."""

from __future__ import annotations

import contextlib
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
    from local_mode.spark import local_spark

    session = local_spark("b3-quotes-tests", cores=1)
    yield session
    session.stop()


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
    """An in-process moto server on a free loopback port, reset to an empty account."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        # The in-process server keeps moto's global state: start every test from an empty account.
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def s3_endpoint(monkeypatch):
    """A moto server as the S3 endpoint of every client (boto3 and pyarrow), fake credentials."""
    with moto_server() as endpoint:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                            "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(name, value)
        yield endpoint
