"""scripts/*.sh keep to bash 3.2 (macOS /bin/bash; Amazon Linux 2 and CentOS 7 have 4.2).

No bash older than the one installed can be had here (Debian ships 5.2 only; no other source may
be downloaded), so the scripts are checked statically: every construct bash 3.2 lacks, or that
bash before 4.4 treats differently under `set -u`, is rejected, and each check is shown to catch
a planted case. The scripts' own version checks (bash, AWS CLI) run for real.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPTS = sorted((REPO / "scripts").glob("*.sh"))
BIN = Path(sys.executable).parent

# name -> pattern of a construct bash 3.2 does not have (or, for arrays, breaks before bash 4.4).
BASH4_ONLY = {
    "mapfile/readarray (bash 4.0)": re.compile(r"\b(mapfile|readarray)\b"),
    "associative array (bash 4.0)": re.compile(r"\b(declare|local|typeset)\s+-[a-zA-Z]*A"),
    "nameref (bash 4.3)": re.compile(r"\b(declare|local|typeset)\s+-[a-zA-Z]*n"),
    "case modification ${x,,} ${x^^} (bash 4.0)": re.compile(r"\$\{[#!]?\w+(\[[^]]*\])?(\^\^?|,,?)[^}]*\}"),
    "|& (bash 4.0)": re.compile(r"\|&"),
    "&>> (bash 4.0)": re.compile(r"&>>"),
    "[[ -v ]] (bash 4.2)": re.compile(r"\[\[\s+(!\s+)?-v\s"),
    "coproc (bash 4.0)": re.compile(r"\bcoproc\b"),
    "case fall-through ;& ;;& (bash 4.0)": re.compile(r";;?&"),
    "${x@Q} transformations (bash 4.4)": re.compile(r"\$\{\w+(\[[^]]*\])?@[QEPAaKkUuL]\}"),
    "negative array index (bash 4.3)": re.compile(r"\$\{\w+\[-\d+\]\}"),
    "wait -n (bash 4.3)": re.compile(r"\bwait\s+-n\b"),
    "shopt globstar/lastpipe (bash 4)": re.compile(r"\bshopt\s+-s\s+(globstar|lastpipe)\b"),
}
# "${a[@]}" of an empty array is an "unbound variable" under set -u before bash 4.4; the guard
# ${a[@]+"${a[@]}"} expands to nothing instead. ${#a[@]} (the count) is fine everywhere.
GUARDED = re.compile(r'\$\{(\w+)\[([@*])\]\+"\$\{\1\[\2\][^}"]*\}"\}')
ARRAY_EXPANSION = re.compile(r"\$\{!?(\w+)\[[@*]\]")
UNGUARDED = "unguarded array expansion under set -u (bash < 4.4)"


def bash4_constructs(text: str) -> list[tuple[int, str]]:
    """(line number, construct) of every construct in `text` that bash 3.2 lacks."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        found += [(number, name) for name, pattern in BASH4_ONLY.items() if pattern.search(line)]
        if ARRAY_EXPANSION.search(GUARDED.sub("", line)):
            found.append((number, UNGUARDED))
    return found


def test_scripts_use_only_what_bash_3_2_has():
    findings = {path.name: bash4_constructs(path.read_text()) for path in SCRIPTS}
    assert [p.name for p in SCRIPTS] == ["bootstrap_aws.sh", "lib.sh", "reset_aws.sh"]
    assert findings == {name: [] for name in findings}


PLANTED = {
    "mapfile/readarray (bash 4.0)": ["mapfile -t TABLES < <(list)", "readarray -t rows <file"],
    "associative array (bash 4.0)": ["declare -A seen=()", "local -A names"],
    "nameref (bash 4.3)": ["local -n ref=$1", "declare -n target=other"],
    "case modification ${x,,} ${x^^} (bash 4.0)": ['name="${BUCKET,,}"', 'echo "${region^^}"', 'x=${a[0]^}'],
    "|& (bash 4.0)": ["aws s3 ls |& grep x"],
    "&>> (bash 4.0)": ["aws s3 ls &>> log.txt"],
    "[[ -v ]] (bash 4.2)": ["[[ -v BUCKET ]] || exit 2", "if [[ ! -v X ]]; then :; fi"],
    "coproc (bash 4.0)": ["coproc aws s3 ls"],
    "case fall-through ;& ;;& (bash 4.0)": ["  a) x=1 ;&", "  b) y=2 ;;&"],
    "${x@Q} transformations (bash 4.4)": ['log "${value@Q}"'],
    "negative array index (bash 4.3)": ['last="${TABLES[-1]}"'],
    "wait -n (bash 4.3)": ["wait -n"],
    "shopt globstar/lastpipe (bash 4)": ["shopt -s globstar"],
    UNGUARDED: ['aws s3api create-bucket "${location_args[@]}"', 'for t in "${TABLES[@]}"; do :; done',
                'echo "${TABLES[*]}"', 'printf "%s" ${a[@]}', 'x=("${args[@]:1}")'],
}


@pytest.mark.parametrize("construct", sorted(PLANTED))
def test_each_bash4_construct_is_caught_when_planted(construct):
    for line in PLANTED[construct]:
        script = f"#!/usr/bin/env bash\nset -euo pipefail\n{line}\n"
        assert (3, construct) in bash4_constructs(script), line


def test_what_bash_3_2_has_is_not_rejected():
    allowed = "\n".join([
        'aws s3api create-bucket --bucket "${BUCKET}" ${location_args[@]+"${location_args[@]}"}',
        'printf "%s" ${missing[@]+"${missing[@]}"} >&2',
        '((${#TABLES[@]})) || die "no tables"',
        'echo "${BASH_SOURCE[0]}" "$@" "${1:-}" "${!1}" "${IAM_RETRY_DELAYS_S// /+}" "${problem##*: }"',
        '[[ "${arn}" =~ ^arn:aws ]] && echo "${BASH_REMATCH[2]}"',
        'while IFS= read -r t; do TABLES+=("${t}"); done < <(list)',
        '# a comment may name mapfile and "${a[@]}"',
        'case "$x" in a) : ;; esac',
    ])
    assert bash4_constructs(allowed) == []


def run_lib(command: str, extra: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f"source scripts/lib.sh; {command}"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(extra or {})})


def test_bash_older_than_3_2_gets_one_line_and_exit_2():
    too_old = run_lib("check_bash 3 1; echo went on")
    assert too_old.returncode == 2 and "went on" not in too_old.stdout
    assert too_old.stderr.splitlines() == [
        "error: bash 3.1 is too old: these scripts need bash 3.2 or later "
        "(install a newer bash and run 'bash scripts/bash')"]
    for major, minor in [(3, 2), (4, 2), (5, 2)]:
        ok = run_lib(f"check_bash {major} {minor}; echo went on")
        assert ok.returncode == 0 and ok.stdout == "went on\n", ok.stderr


def old_aws_cli(tmp_path: Path) -> Path:
    """An `aws` first on PATH that is AWS CLI 1.29: its create-job knows no JobMode (added in 1.32.115)."""
    folder = tmp_path / "old-aws"
    folder.mkdir()
    skeleton = '{"Name": "", "Role": "", "Command": {"Name": ""}, "CodeGenConfigurationNodes": {}}'
    (folder / "aws").write_text(f"""#!/usr/bin/env bash
if [[ "$1 $2 $3" == "glue create-job --generate-cli-skeleton" ]]; then echo '{skeleton}'; exit 0; fi
if [[ "$1" == "--version" ]]; then echo "aws-cli/1.29.0 Python/3.8.10 Linux/5.10 botocore/1.31.0" >&2; exit 0; fi
echo "unexpected call: aws $*" >&2; exit 99
""")
    (folder / "aws").chmod(0o755)
    return folder


def test_bootstrap_with_an_aws_cli_too_old_for_visual_jobs_says_what_to_install(tmp_path):
    env = {"PATH": f"{old_aws_cli(tmp_path)}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}", "BUCKET": "b3-lake",
           "ENV_FILE": str(tmp_path / "no.env"), "HOME": str(tmp_path), "AWS_REGION": "us-east-1"}
    result = subprocess.run(["bash", str(REPO / "scripts" / "bootstrap_aws.sh")], cwd=REPO, capture_output=True,
                            text=True, timeout=60, env={**os.environ, **env})
    assert result.returncode == 2, result.stderr
    # One line, before any AWS call (the fake refuses every other call with exit 99).
    assert result.stderr.splitlines() == [
        "error: the AWS CLI (aws-cli/1.29.0 Python/3.8.10 Linux/5.10 botocore/1.31.0) does not know glue create-job "
        "--job-mode / --code-gen-configuration-nodes: install AWS CLI v2, or pip install 'awscli>=1.32.115'"]


def test_the_installed_aws_cli_knows_visual_jobs():
    result = run_lib("check_aws_cli && echo fine", {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 0 and result.stdout == "fine\n", result.stderr
