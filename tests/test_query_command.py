"""The query command from any folder: the lake the settings name, --file from the current folder."""

from __future__ import annotations

import pytest

from b3_quotes.catalog.query import main
from tests.helpers import put_local, raw_file


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A repository with a lake, and a current folder outside it."""
    repo = tmp_path / "repo"
    monkeypatch.setattr("b3_quotes.config.settings.REPO_ROOT", repo)
    for name in ("LAKE_DIR", "BUCKET", "ENV_FILE"):
        monkeypatch.delenv(name, raising=False)
    put_local(repo / "lake", "raw/quotes/dt=2024-01-02/f.parquet", raw_file("2024-01-02", {"PETR4": 30.0}))
    cwd = tmp_path / "home"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return repo, cwd


def test_query_outside_the_repository_reads_its_lake_and_creates_none(elsewhere, capsys):
    repo, cwd = elsewhere
    assert main(["--sql", "SELECT ticker FROM quotes"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].strip() == "PETR4"
    assert list(cwd.iterdir()) == []


def test_a_relative_lake_dir_in_dotenv_is_relative_to_that_file(elsewhere, capsys):
    repo, cwd = elsewhere
    (repo / "lake").rename(repo / "data-lake")
    (repo / ".env").write_text("LAKE_DIR=data-lake\n")
    assert main(["--sql", "SELECT count(*) FROM quotes"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].strip() == "1"
    assert list(cwd.iterdir()) == []


def test_no_lake_is_one_line_and_creates_nothing(elsewhere, capsys):
    repo, cwd = elsewhere
    assert main(["--lake-dir", "nowhere", "--sql", "SELECT 1"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: no lake at {cwd / 'nowhere'}: run the scraper first, or set LAKE_DIR / --lake-dir\n"
    assert list(cwd.iterdir()) == []


def test_file_paths_are_from_the_current_folder_with_a_clear_error(elsewhere, capsys):
    repo, cwd = elsewhere
    assert main(["--file", "sql/latest_sessions.sql"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --file sql/latest_sessions.sql: no such file (from {cwd})") and err.count("\n") == 1
    (cwd / "mine.sql").write_text("SELECT count(*) FROM quotes_daily")  # an empty table: no error
    assert main(["--file", "mine.sql"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].strip() == "0"


def test_empty_sql_is_a_usage_error(elsewhere, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--sql", " "])
    assert exit_.value.code == 2
    assert "--sql is empty" in capsys.readouterr().err
