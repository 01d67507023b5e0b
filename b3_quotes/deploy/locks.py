"""The lock files: every environment installs exact, hash-checked versions.

    python -m b3_quotes.deploy.locks            regenerate every lock from its requirement file (make lock)
    python -m b3_quotes.deploy.locks --check    exit 1, one line a problem, when a lock is stale

The requirement files (`requirements*.txt`) are what people edit: ranges, and pins with the reason
beside them. Each has a lock (`requirements*.lock`) written by uv's `pip compile --universal
--generate-hashes` for the Python its environment runs, so a lock installs the same versions on
Linux, macOS and Windows. A lock's first line is the digest of the requirement files it was
compiled from (the file and every file it includes with `-r`): a requirement file edited after its
lock was made is found by the digest, even where the lock still happens to satisfy it.

The project's own venv has two locks: the dev lock (runtime + tests and tools) is compiled first,
then the runtime lock with the dev lock as its constraints, so `make demo` and `make test` get the
very same version of every package they share.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DIGEST_PREFIX = "# requirements-digest: sha256:"


@dataclass(frozen=True)
class Lock:
    requirements: str  # the human-edited file, relative to the repository
    python: str  # the Python its environment runs
    constraints: str | None = None  # a lock whose versions this one must reuse

    @property
    def lock(self) -> str:
        return self.requirements.removesuffix(".txt") + ".lock"


# In compile order: a lock used as constraints comes before the lock that uses it.
LOCKS = (
    Lock("requirements-uv.txt", "3.11"),  # the installer itself, installed by pip with --require-hashes
    Lock("requirements-dev.txt", "3.11"),  # the project's venv for make test (runtime + dev)
    Lock("requirements.txt", "3.11", constraints="requirements-dev.lock"),  # make demo
    Lock("requirements-glue.txt", "3.11"),  # AWS Glue 5.0's versions, for the job's tests (.ci/run)
    Lock("requirements-lambda.txt", "3.12"),  # the Lambda's python3.12 and boto3, for the handler's tests
)

_INCLUDE = re.compile(r"^\s*-r\s+(\S+)")


def requirement_files(name: str, root: Path = REPO_ROOT) -> list[Path]:
    """The file and every file it includes with `-r`, depth first, each once."""
    found: list[Path] = []

    def visit(path: Path) -> None:
        if path in found:
            return
        found.append(path)
        for line in path.read_text().splitlines():
            if match := _INCLUDE.match(line):
                visit(path.parent / match.group(1))

    visit(root / name)
    return found


def requirements_digest(name: str, root: Path = REPO_ROOT) -> str:
    """sha256 over the file names and contents a lock is compiled from."""
    digest = hashlib.sha256()
    for path in requirement_files(name, root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def requirements(name: str, root: Path = REPO_ROOT) -> list[str]:
    """Every requirement line of the file and its includes (no comments, options or includes)."""
    lines = []
    for path in requirement_files(name, root):
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                lines.append(line)
    return lines


def pinned(lock_text: str) -> dict[str, tuple[str, bool]]:
    """Normalised package name -> (the exact version a lock installs, whether it has hashes)."""
    pins = {}
    for line in lock_text.replace("\\\n", " ").splitlines():  # an entry's continued lines as one
        if match := re.match(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;]+)", line):
            pins[normalise(match.group(1))] = (match.group(2), "--hash=sha256:" in line)
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def problems(root: Path = REPO_ROOT) -> list[str]:
    """What is stale: a lock missing, older than its requirement files, not satisfying them, or
    with a package unhashed; and the runtime and dev locks disagreeing on a shared package."""
    from packaging.requirements import Requirement

    found = []
    all_pins = {}
    for lock in LOCKS:
        path = root / lock.lock
        if not path.exists():
            found.append(f"{lock.lock}: missing; run: make lock")
            continue
        text = path.read_text()
        if not text.startswith(DIGEST_PREFIX + requirements_digest(lock.requirements, root)):
            found.append(f"{lock.lock}: {lock.requirements} changed since the lock was made; run: make lock")
        pins = pinned(text)
        all_pins[lock.lock] = {name: version for name, (version, _) in pins.items()}
        for line in requirements(lock.requirements, root):
            requirement = Requirement(line)
            version = all_pins[lock.lock].get(normalise(requirement.name))
            if version is None:
                found.append(f"{lock.lock}: has no {requirement.name} ({lock.requirements} asks for it)")
            elif not requirement.specifier.contains(version, prereleases=True):
                found.append(f"{lock.lock}: {requirement.name}=={version} does not satisfy '{line}'")
        unhashed = sorted(name for name, (_, hashed) in pins.items() if not hashed)
        if unhashed:
            found.append(f"{lock.lock}: no hash for {', '.join(unhashed)}; run: make lock")
    runtime, dev = all_pins.get("requirements.lock", {}), all_pins.get("requirements-dev.lock", {})
    for name in sorted(set(runtime) & set(dev)):
        if runtime[name] != dev[name]:
            found.append(f"requirements.lock: {name}=={runtime[name]} but requirements-dev.lock has {dev[name]}")
    return found


def compile_lock(lock: Lock, root: Path = REPO_ROOT, uv: str = "uv") -> None:
    """Write `lock.lock` from its requirement file, with every version's hashes."""
    command = [uv, "pip", "compile", "--quiet", "--universal", "--generate-hashes", "--no-header",
               "--python-version", lock.python, lock.requirements]
    if lock.constraints:
        command += ["--constraint", lock.constraints]
    compiled = subprocess.run(command, cwd=root, check=True, capture_output=True, text=True).stdout
    header = (f"{DIGEST_PREFIX}{requirements_digest(lock.requirements, root)}\n"
              f"# Generated from {lock.requirements} for Python {lock.python} by `make lock`"
              " (python -m b3_quotes.deploy.locks); do not edit.\n")
    (root / lock.lock).write_text(header + compiled)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m b3_quotes.deploy.locks", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say which locks are stale (exit 1 if any)")
    if parser.parse_args(argv).check:
        found = problems()
        for line in found:
            print(line, file=sys.stderr)
        return 1 if found else 0
    uv = str(Path(sys.executable).with_name("uv"))
    for lock in LOCKS:
        print(f"locking {lock.requirements} -> {lock.lock} (Python {lock.python})")
        compile_lock(lock, uv=uv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
