"""The locks (b3_quotes/deploy/locks.py): every environment installs them, and a stale one fails here."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from b3_quotes.deploy import locks

REPO = Path(__file__).resolve().parent.parent
FILES = ["requirements.txt", "requirements-dev.txt", "requirements-glue.txt", "requirements-lambda.txt",
         "requirements-uv.txt"]


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    for name in FILES:
        shutil.copy(REPO / name, tmp_path / name)
        shutil.copy(REPO / name.replace(".txt", ".lock"), tmp_path / name.replace(".txt", ".lock"))
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def test_locks_are_current_with_their_requirement_files():
    assert locks.problems(REPO) == []


def test_locks_every_requirement_file_has_one_lock_for_the_python_it_runs():
    assert {lock.requirements for lock in locks.LOCKS} == set(FILES)
    assert {lock.lock: lock.python for lock in locks.LOCKS}["requirements-lambda.lock"] == "3.12"


def test_locks_an_edited_requirement_file_is_stale_even_when_its_lock_still_satisfies_it(repo_copy):
    # duckdb==1.5.6 is locked; widening the pin to a range the lock satisfies is still a change.
    edit(repo_copy / "requirements.txt", "duckdb==1.5.6", "duckdb>=1.5,<1.6")
    assert locks.problems(repo_copy) == [
        "requirements-dev.lock: requirements-dev.txt changed since the lock was made; run: make lock",
        "requirements.lock: requirements.txt changed since the lock was made; run: make lock",
    ]


def test_locks_a_pin_outside_its_range_is_named_with_the_requirement(repo_copy):
    edit(repo_copy / "requirements.lock", "\nduckdb==1.5.6 ", "\nduckdb==2.0.0 ")
    assert locks.problems(repo_copy) == [
        "requirements.lock: duckdb==2.0.0 does not satisfy 'duckdb==1.5.6'",
        "requirements.lock: duckdb==2.0.0 but requirements-dev.lock has 1.5.6",
    ]


def test_locks_a_missing_package_or_hash_is_named(repo_copy):
    lambda_lock = repo_copy / "requirements-lambda.lock"
    text = lambda_lock.read_text()
    # Drop pytest's whole entry (its line and its hash lines) and requests' hashes.
    text = re.sub(r"\npytest==\S+ \\\n(?:\s+--hash=\S+(?: \\)?\n)+", "\n", text)
    text = re.sub(r"(\nrequests==\S+) \\\n(?:\s+--hash=\S+(?: \\)?\n)+", r"\1\n", text)
    lambda_lock.write_text(text)
    assert locks.problems(repo_copy) == [
        "requirements-lambda.lock: has no pytest (requirements-lambda.txt asks for it)",
        "requirements-lambda.lock: no hash for requests; run: make lock",
    ]


def test_locks_the_project_venv_and_the_tests_venv_share_every_version():
    runtime = locks.pinned((REPO / "requirements.lock").read_text())
    dev = locks.pinned((REPO / "requirements-dev.lock").read_text())
    assert set(runtime) <= set(dev)
    assert {name: runtime[name] for name in runtime} == {name: dev[name] for name in runtime}


def test_locks_the_tests_environment_holds_botocore_where_moto_routes_athena():
    # botocore 1.44.18 moved Athena to rest-json, which moto 5.2.6 does not route (requirements-dev.txt).
    version = locks.pinned((REPO / "requirements-dev.lock").read_text())["botocore"][0]
    assert tuple(int(part) for part in version.split(".")) < (1, 44, 18)


def test_locks_are_what_make_and_ci_install():
    makefile, ci = (REPO / "Makefile").read_text(), (REPO / ".ci" / "run").read_text()
    installs = [line for line in (makefile + ci).splitlines() if "install" in line or "sync" in line]
    assert not [line for line in installs if re.search(r"requirements[\w-]*\.txt", line)
                and "test-latest" not in line and "--upgrade -r requirements-dev.txt" not in line]
    uv_install = re.search(r"^UV_INSTALL := (.*)$", makefile, re.MULTILINE)
    assert uv_install
    hash_checked = makefile.replace("$(UV_INSTALL)", uv_install.group(1))
    for lock in ("requirements-uv.lock", "requirements.lock", "requirements-dev.lock"):
        assert re.search(rf"--require-hashes -r {lock}", hash_checked), lock
    assert "--require-hashes \"${lock}\"" in ci
    assert "requirements-glue.lock" in ci and "requirements-lambda.lock" in ci
