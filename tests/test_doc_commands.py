"""Every command in the ```bash blocks of README.md and docs/*.md works as written.

Each local command runs as Python runs it, in this process (run_as_written), from the repository,
with LAKE_DIR (and any --lake-dir) and CHART_DIR pointing at a temporary folder, so nothing is
written into the repository; each entry point also starts in a fresh process. A rule sets aside
what cannot run here: AWS calls, make targets (they install the venv first), commands that
need the network, and commands on files of the reader's own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import itertools
import os
import re
import runpy
import shlex
import subprocess
import sys
import tomllib
import traceback
import warnings
from pathlib import Path

import pytest

from tests.conftest import REPO, SETTINGS_VARIABLES

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
    "python -m b3_quotes.catalog.query --file sql/latest_sessions.sql",
    "python -m b3_quotes.catalog.query --file sql/quote_issues_by_reason.sql",
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


@functools.cache
def console_scripts() -> dict[str, str]:
    """pyproject's commands (`b3-query`) -> how Python runs the same code: `-m module`, or the script
    itself for the scraper, whose path every guide gives."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    run = {}
    for name, target in scripts.items():
        module = target.split(":")[0]
        path = REPO / (module.replace(".", "/") + ".py")
        if module == "scraper.scraper_upload":
            run[name] = "python scraper/scraper_upload.py"
        elif 'if __name__ == "__main__":' in path.read_text():
            run[name] = f"python -m {module}"
        else:  # a package's command module, run through the package's __main__
            package = module.rsplit(".", 1)[0]
            assert (REPO / package.replace(".", "/") / "__main__.py").is_file(), name
            run[name] = f"python -m {package}"
    return run


def as_python(command: str) -> str:
    """A `b3-*` command as the Python command it is (the same code, the same arguments)."""
    program, _, rest = command.partition(" ")
    return f"{console_scripts()[program]} {rest}".strip() if program in console_scripts() else command


def all_commands() -> list[tuple[str, str]]:
    return [(doc.relative_to(REPO).as_posix(), as_python(c)) for doc in DOCS for c in bash_commands(doc.read_text())]


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
    assert as_python("b3-query --file x.sql") == "python -m b3_quotes.catalog.query --file x.sql"
    assert as_python("b3-chart") == "python -m b3_quotes.charts"
    assert as_python("b3-scrape --source sample") == "python scraper/scraper_upload.py --source sample"
    with capsys.disabled():
        for doc, command in all_commands():
            if reason := why_not_run(command):
                print(f"\nnot run ({reason}): {doc}: {command}", end="")


def in_temp_lake(command: str, lake: Path) -> str:
    """The command with any --lake-dir value pointed at the temporary lake."""
    return re.sub(r"--lake-dir\s+\S+", f"--lake-dir {shlex.quote(str(lake))}", command)


# What the interpreter writes for itself is left out: bytecode caches (another xdist worker importing a module
# for the first time writes one mid-run) and the virtual environments.
NOT_THE_COMMANDS = [":(exclude).venv", ":(glob,exclude).ci/venv-*/**", ":(glob,exclude)**/__pycache__/**"]


def repo_state() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all", "--", ".",
                           *NOT_THE_COMMANDS], cwd=REPO, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("doc_lake") / "lake"


@dataclasses.dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def plain_words(command: str) -> list[str]:
    """The command's words; it must need no shell (no pipe, redirection, list or expansion)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    assert not any(set(t) <= set("|&;<>()") for t in tokens) and not any(c in t for t in tokens for c in "$`"), command
    return shlex.split(command)


def run_as_written(command: str, env: dict[str, str]) -> Ran:
    """`command` (`[NAME=value ...] python script.py ...` or `python -m module ...`) run as Python runs
    it, in this process: the variables set, the repository as the current folder, argv as given, the
    script's folder first on sys.path, its exit code from SystemExit (an uncaught exception: its
    traceback and 1). The JVM is this session's: a run costs no JVM start (a fresh process's start is
    test_every_entry_point_starts_in_a_fresh_process's)."""
    words = plain_words(command)
    assignments = dict(w.split("=", 1) for w in itertools.takewhile(lambda w: "=" in w, words))
    python_args = words[len(assignments) + 1:]
    out, err = io.StringIO(), io.StringIO()
    with (pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
          warnings.catch_warnings()):
        # runpy's note that an earlier test imported the module: python -m runs its code afresh all the same.
        warnings.filterwarnings("ignore", r".* found in sys\.modules after import of package", RuntimeWarning)
        for name in SETTINGS_VARIABLES:
            patch.delenv(name, raising=False)
        for name, value in {**env, **assignments}.items():
            patch.setenv(name, value)
        patch.chdir(REPO)
        try:
            if python_args[0] == "-m":
                patch.setattr(sys, "argv", [python_args[1], *python_args[2:]])
                runpy.run_module(python_args[1], run_name="__main__", alter_sys=True)
            else:
                patch.setattr(sys, "argv", python_args)
                patch.syspath_prepend(str((REPO / python_args[0]).parent))
                runpy.run_path(python_args[0], run_name="__main__")
            code = 0
        except SystemExit as exited:
            code = exited.code if isinstance(exited.code, int) else 0 if exited.code is None else 1
            if isinstance(exited.code, str):
                print(exited.code, file=sys.stderr)
        except Exception:  # noqa: BLE001 - what Python prints and exits with
            traceback.print_exc()
            code = 1
    return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def doc_env(lake) -> dict[str, str]:
    return {"LAKE_DIR": str(lake), "CHART_DIR": str(lake.parent / "out"), "ENV_FILE": str(lake.parent / "no.env"),
            "BUCKET": ""}


# A command that lands every instrument of a COTAHIST day (7,074) runs into a lake of its own: the
# commands after it would read thousands of partitions more and show nothing the others do not.
OWN_LAKE = "--all-instruments"


@pytest.fixture(scope="module")
def results(spark, lake, doc_env) -> dict[str, Ran]:
    """Every local command run once, in order, into one temporary lake (OWN_LAKE's into another)."""
    before, partitions = repo_state(), spark.conf.get("spark.sql.shuffle.partitions")
    done = {}
    for command in local_commands():
        own = lake.with_name("own_lake") if OWN_LAKE in command else None
        env = {**doc_env, "LAKE_DIR": str(own)} if own else doc_env
        done[command] = run_as_written(in_temp_lake(command, own or lake), env)
    spark.conf.set("spark.sql.shuffle.partitions", partitions)  # a scrape set it to its own: the tests get theirs back
    assert repo_state() == before, "a documented command wrote into the repository"
    return done


@pytest.mark.parametrize("command", local_commands())
def test_documented_command_works_as_written(results, command):
    out = results[command]
    code, says = next(((c, s) for key, (c, s) in KNOWN_EXITS.items() if key in command), (0, ""))
    assert out.returncode == code, f"{command}\nexit {out.returncode}\n{out.stderr[-2000:]}"
    assert "Traceback" not in out.stderr
    assert says in out.stderr


def entry_points() -> list[list[str]]:
    """How the local commands start Python: `script.py` or `-m module`, each once."""
    commands = [list(itertools.dropwhile(lambda w: "=" in w, shlex.split(c))) for c in local_commands()]  # NAME=value
    starts = (words[1:3] if words[1] == "-m" else words[1:2] for words in commands)
    return [list(start) for start in dict.fromkeys(tuple(s) for s in starts)]


def test_every_entry_point_starts_in_a_fresh_process(doc_env):
    """What running in this process cannot show: each entry point imports in a new `python` from the
    repository, with the documented environment, and answers --help."""
    assert len(entry_points()) >= 4, entry_points()
    env = {**{k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES and not k.startswith("PYTHON")},
           **doc_env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for start in entry_points():
        ran = subprocess.run(["python", *start, "--help"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0 and ran.stdout.startswith("usage:"), (start, ran.stderr[-2000:])
