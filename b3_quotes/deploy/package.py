"""What AWS runs: the Glue job's `--extra-py-files` zip, the Lambda's zip, the visual job's source file.

    python3 -m b3_quotes.deploy.package job OUT.zip                etl/, b3_quotes/storage/ and b3_quotes/contract/
    python3 -m b3_quotes.deploy.package lambda OUT.zip             lambdas/start_glue_job.py at the root, and b3_quotes/contract/
    python3 -m b3_quotes.deploy.package visual-source OUT.parquet  zero rows with raw quotes' schema

Both zips carry b3_quotes/contract/ (the lake's layout, the run manifest, the tables), so no fact is copied
into the job or the handler. Sources only: no caches, no compiled files. Writing them uses
storage's atomic write (pyarrow: the project's venv has it).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# Archive name -> file or package folder in the repository.
# b3_quotes/__init__.py is the namespace alone (it imports nothing): each zip carries it beside its packages.
LIBRARY = REPO_ROOT / "b3_quotes"
PACKAGES = {
    "job": {"etl": REPO_ROOT / "etl", "b3_quotes/__init__.py": LIBRARY / "__init__.py",
            "b3_quotes/storage": LIBRARY / "storage", "b3_quotes/contract": LIBRARY / "contract"},
    "lambda": {"start_glue_job.py": REPO_ROOT / "lambdas" / "start_glue_job.py",
               "b3_quotes/__init__.py": LIBRARY / "__init__.py", "b3_quotes/contract": LIBRARY / "contract"},
}


def members(name: str, source: Path) -> list[tuple[str, Path]]:
    """(archive name, file) of a module, or of every source file under a package folder."""
    if source.is_file():
        return [(name, source)]
    return [(f"{name}/{path.relative_to(source).as_posix()}", path) for path in sorted(source.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"]


# Every entry is a regular file, 0644: Lambda runs the code as another user than the one who
# unzipped it, and an entry copied from a checkout made under umask 077 (0600) fails there with
# "Unable to import module". The checkout's modes and times never reach the zip.
ENTRY_MODE = 0o100644  # S_IFREG | rw-r--r--
ENTRY_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip holds: the same sources give the same zip


def zip_entry(name: str, path: Path) -> zipfile.ZipInfo:
    """The archive entry of one source file: its name, mode 0644 and a fixed time."""
    info = zipfile.ZipInfo(name, date_time=ENTRY_TIME)
    info.external_attr = ENTRY_MODE << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def build(kind: str, out: Path) -> list[str]:
    """Write the `kind` zip to `out`; return its member names."""
    from b3_quotes.storage.atomic import replace_atomically  # standard library only, as this module

    entries = [entry for name, source in PACKAGES[kind].items() for entry in members(name, source)]

    def zip_entries(temp: str) -> None:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, path in entries:
                archive.writestr(zip_entry(name, path), path.read_bytes())

    replace_atomically(str(out.resolve()), zip_entries)  # never half a zip uploaded
    return [name for name, _ in entries]


def build_visual_source(out: Path) -> None:
    """A zero-row Parquet file with raw quotes' schema: the visual job's source node reads this
    one small object, not raw/ (which it would list whole at every run, and which is empty,
    "Unable to infer schema", before the first scrape). The job reads raw itself."""
    from b3_quotes.contract.arrow import arrow_schema
    from b3_quotes.contract.tables import RAW_QUOTES
    from b3_quotes.storage import Lake

    Lake.local(out.parent).write_parquet(out.name, arrow_schema(RAW_QUOTES).empty_table())


def main(argv: list[str]) -> int:
    kinds = [*PACKAGES, "visual-source"]
    if len(argv) != 2 or argv[0] not in kinds:
        print(f"usage: python3 -m b3_quotes.deploy.package {{{','.join(kinds)}}} OUT", file=sys.stderr)
        return 2
    if argv[0] == "visual-source":
        build_visual_source(Path(argv[1]))
    else:
        build(argv[0], Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
