"""The zips AWS runs: each carries b3_quotes/contract/ and imports on its own, with nothing else of the repository."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from b3_quotes.deploy.package import REPO_ROOT, build


def run_isolated(code: str, archive, cwd) -> subprocess.CompletedProcess:
    """Python with only the zip and site-packages importable (-I: no current folder, no PYTHONPATH)."""
    return subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(archive)!r})\n{code}"],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_lambda_zip_has_the_handler_at_its_root_and_the_contract(tmp_path):
    archive = tmp_path / "lambda.zip"
    names = build("lambda", archive)
    assert names == zipfile.ZipFile(archive).namelist()
    assert "start_glue_job.py" in names and "b3_quotes/contract/layout.py" in names and "b3_quotes/contract/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith(("etl/", "b3_quotes/config/"))]
    # The handler, loaded from the zip alone, knows a manifest by the contract's layout.
    out = run_isolated(
        "import start_glue_job as h\n"
        "print(h.__file__)\n"
        "event = {'Records': [{'s3': {'bucket': {'name': 'b'}, 'object': {'key': k}}}\n"
        "          for k in ('raw/_manifests/r%3D1.json', 'raw/quotes/dt%3D2024-01-02/x.parquet')]}\n"
        "print(h.manifest_keys(event))", archive, tmp_path)
    assert out.returncode == 0, out.stderr
    origin, keys = out.stdout.splitlines()
    assert origin == f"{archive}/start_glue_job.py"
    assert keys == "[('b', 'raw/_manifests/r=1.json')]"


def test_job_zip_imports_the_job_with_its_contract(tmp_path):
    archive = tmp_path / "etl.zip"
    names = build("job", archive)
    assert {"etl/glue_job.py", "etl/refine.py", "etl/raw_reader.py", "b3_quotes/storage/lake.py", "b3_quotes/contract/tables.py", "b3_quotes/contract/arrow.py"} <= set(names)
    assert not [n for n in names if n.startswith(("b3_quotes/config/", "b3_quotes/local_mode/", "scraper/", "lambdas/"))]
    # Of the library, its namespace's empty __init__ and the two packages the job imports, nothing else.
    assert {n.split("/")[1] for n in names if n.startswith("b3_quotes/")} == {"__init__.py", "storage", "contract"}
    out = run_isolated("import etl.glue_job, b3_quotes.contract.layout\n"
                       "print(etl.glue_job.__file__); print(b3_quotes.contract.layout.__file__)", archive, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"{archive}/etl/glue_job.py", f"{archive}/b3_quotes/contract/layout.py"]


def test_visual_source_is_a_zero_row_file_with_raw_quotes_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "raw_quotes.parquet"
    done = subprocess.run([sys.executable, "-m", "b3_quotes.deploy.package", "visual-source", str(out)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out)
    assert table.num_rows == 0
    # Raw quotes as the scraper writes them (b3_quotes/contract/tables.py RAW_QUOTES), partition key dt excluded.
    assert table.schema.names == ["trade_date", "ticker", "open", "high", "low", "close", "adj_close", "volume",
                                  "traded_value", "trades", "source", "source_symbol", "ingested_at", "run_id",
                                  "dismes", "prev_b3_session"]
    assert table.schema.field("trade_date").type == pa.date32()
    assert table.schema.field("ingested_at").type == pa.timestamp("us", tz="UTC")


def test_package_refuses_an_unknown_kind_with_its_usage(tmp_path):
    done = subprocess.run([sys.executable, "-m", "b3_quotes.deploy.package", "visual", str(tmp_path / "x")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr == "usage: python3 -m b3_quotes.deploy.package {job,lambda,visual-source} OUT\n"
    assert list(tmp_path.iterdir()) == []


def test_zip_entries_are_readable_regular_files_whatever_the_checkouts_modes(tmp_path, monkeypatch):
    """A checkout cloned under umask 077 has 0600 files: Lambda, running the code as another user,
    then fails with "Unable to import module". Every entry must be a regular file, rw-r--r--."""
    import os
    import stat

    import b3_quotes.deploy.package

    source = tmp_path / "checkout" / "pkg"
    (source / "sub").mkdir(parents=True)
    for path in (source / "__init__.py", source / "sub" / "mod.py"):
        path.write_text("X = 1\n")
        path.chmod(0o600)
    (tmp_path / "checkout" / "handler.py").write_text("def h(e, c): return 1\n")
    (tmp_path / "checkout" / "handler.py").chmod(0o700)
    monkeypatch.setitem(b3_quotes.deploy.package.PACKAGES, "lambda", {"handler.py": tmp_path / "checkout" / "handler.py",
                                                            "pkg": source})
    old = os.umask(0o077)
    try:
        names = build("lambda", tmp_path / "lambda.zip")
    finally:
        os.umask(old)
    assert names == ["handler.py", "pkg/__init__.py", "pkg/sub/mod.py"]
    with zipfile.ZipFile(tmp_path / "lambda.zip") as archive:
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        assert archive.read("pkg/sub/mod.py") == b"X = 1\n"
    assert modes == {name: stat.S_IFREG | 0o644 for name in names}
