"""Every command in the ```bash blocks of README.md and docs/*.md works as written.

Each local command runs from the repository with LAKE_DIR (and any --lake-dir) and CHART_DIR
pointing at a temporary folder, so nothing is written into the repository. A rule sets aside
what cannot run here: AWS calls, make targets (they install the venv first), commands that
need the network, and commands on files of the reader's own.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Commands a reader runs as written that exit with a documented code other than 0: the part of
# the command that identifies it -> (exit code, what its error line says).
KNOWN_EXITS = {
    # The bundled IBOV portfolio is of 2025-04-07, the bundled COTAHIST of 2021-06-25: nine of its
    # stocks (listed or renamed since) have no quote that day. No portfolio of 2021 nor COTAHIST of
    # 2025 is available to bundle.
    "--ibov-file data/b3/GetPortfolioDay_IBOV_2025-04-07.body.json": (3, "no data for"),
}
# The commands these docs must keep running locally (the rule must not set them aside).
KNOWN_LOCAL = [
    "python scraper/scraper_upload.py --source sample",
    "python -m catalog.query --file sql/latest_sessions.sql",
    "python -m catalog.query --file sql/quote_issues_by_reason.sql",
]


def bash_commands(text: str) -> list[str]:
    """The commands of the ```bash blocks: continuation lines joined, comments and blanks left out."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            command = strip_comment(line).strip()
            if command:
                commands.append(command)
    return commands


def strip_comment(line: str) -> str:
    """The line without a trailing `# comment` (a `#` inside quotes stays)."""
    quote = ""
    for n, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (n == 0 or line[n - 1].isspace()):
            return line[:n]
    return line


FILE_FLAGS = ("--cotahist-file", "--ibov-file", "--csv-dir")


def names_a_file_of_the_readers_own(words: list[str], flag: str) -> bool:
    """`flag`'s value names nothing in the repository, under that path or that name (an example of
    the reader's file, like COTAHIST_A2023.ZIP). A file the repository has elsewhere is run, and
    fails: the command must name it where it is."""
    if flag not in words[:-1]:
        return False
    value = words[words.index(flag) + 1]
    return not (REPO / value).exists() and Path(value).name not in tracked_file_names()


@functools.cache
def tracked_file_names() -> frozenset[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return frozenset(Path(line).name for line in listed.splitlines())


def why_not_run(command: str) -> str | None:
    """The reason a command is not run here, or None for a local one."""
    words = shlex.split(command)
    program = next((w for w in words if "=" not in w), "")
    flags = set(words)
    if program == "aws" or "aws" in words or "B3_AWS_CHECK=1" in words or "--bucket" in flags:
        return "AWS"
    if program == "make":
        return "make target (installs the venv first)"
    if program in ("pip", "git", "curl", "wget", "apt", "apt-get", "brew") or words[:3] == ["python", "-m", "pip"]:
        return "installs or downloads"
    if any(w.startswith("~") for w in words) or any(names_a_file_of_the_readers_own(words, flag) for flag in FILE_FLAGS):
        return "names files of the reader's own"
    if program != "python" or len(words) < 2:
        return f"not a project command ({program})"
    if words[1].endswith("scraper_upload.py") or words[1:3] == ["-m", "scraper.scraper_upload"]:
        source = words[words.index("--source") + 1] if "--source" in words else "yfinance"
        if source == "yfinance":
            return "network (Yahoo Finance)"
        if source == "b3" and "--cotahist-file" not in flags:
            return "network (B3 downloads)"
        universe = words[words.index("--universe") + 1] if "--universe" in words else ""
        if universe == "ibov" and "--ibov-file" not in flags:
            return "network (B3 index API)"
    if words[1].startswith("bench/"):
        return "benchmark (minutes)"
    return None


def all_commands() -> list[tuple[str, str]]:
    return [(doc.relative_to(REPO).as_posix(), c) for doc in DOCS for c in bash_commands(doc.read_text())]


def local_commands() -> list[str]:
    """The local commands, scrapes first (the queries and charts read what they wrote)."""
    local = list(dict.fromkeys(c for _, c in all_commands() if why_not_run(c) is None))
    return sorted(local, key=lambda c: "scraper_upload" not in c)


def test_the_rule_keeps_the_known_local_commands_and_lists_the_others(capsys):
    commands = [c for _, c in all_commands()]
    assert commands, "no ```bash block found"
    local = local_commands()
    for known in KNOWN_LOCAL:
        assert any(c == known or c.startswith(known + " ") for c in local), (known, local)
    assert why_not_run("aws s3 ls s3://b3-lake") == "AWS"
    assert why_not_run("make demo") is not None
    assert why_not_run("python scraper/scraper_upload.py --tickers PETR4,VALE3") == "network (Yahoo Finance)"
    with capsys.disabled():
        for doc, command in all_commands():
            if reason := why_not_run(command):
                print(f"\nnot run ({reason}): {doc}: {command}", end="")


def in_temp_lake(command: str, lake: Path) -> str:
    """The command with any --lake-dir value pointed at the temporary lake."""
    return re.sub(r"--lake-dir\s+\S+", f"--lake-dir {shlex.quote(str(lake))}", command)


def repo_state() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("doc_lake") / "lake"


@pytest.fixture(scope="module")
def results(lake) -> dict[str, subprocess.CompletedProcess]:
    """Every local command run once, in order, into one temporary lake."""
    before = repo_state()
    env = {**os.environ, "LAKE_DIR": str(lake), "CHART_DIR": str(lake.parent / "out"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "ENV_FILE": str(lake.parent / "no.env"), "BUCKET": ""}
    done = {}
    for command in local_commands():
        done[command] = subprocess.run(["bash", "-c", in_temp_lake(command, lake)], cwd=REPO, env=env,
                                       capture_output=True, text=True, timeout=300)
    assert repo_state() == before, "a documented command wrote into the repository"
    return done


@pytest.mark.parametrize("command", local_commands())
def test_documented_command_works_as_written(results, command):
    out = results[command]
    code, says = next(((c, s) for key, (c, s) in KNOWN_EXITS.items() if key in command), (0, ""))
    assert out.returncode == code, f"{command}\nexit {out.returncode}\n{out.stderr[-2000:]}"
    assert "Traceback" not in out.stderr
    assert says in out.stderr
    assert "Setting default log level" not in out.stderr + out.stdout
