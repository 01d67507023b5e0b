"""How a command line shows the library's log lines (b3_quotes/contract/logs.py)."""

from __future__ import annotations

import logging
import re

from b3_quotes.contract.logs import PACKAGES, ConsoleHandler, configure_console
from tests.conftest import REPO


def test_the_console_shows_info_plain_and_warnings_and_errors_prefixed_on_the_stream_chosen(capsys):
    configure_console("stdout")
    logging.getLogger("etl.refine").info("step 1 of 2: 2019")
    logging.getLogger("b3_quotes.storage.lock").warning("waiting for another run")
    logging.getLogger("b3_quotes.catalog.verify").error("raw lacks 1 session")
    logging.getLogger("pyspark").warning("not ours")  # another library's logger: not shown by this handler
    assert capsys.readouterr() == ("step 1 of 2: 2019\nwarning: waiting for another run\n"
                                   "error: raw lacks 1 session\n", "")

    configure_console("stderr")  # a query's stdout is its result
    logging.getLogger("b3_quotes.local_mode.duckdb_views").warning("catalog rebuilt")
    assert capsys.readouterr() == ("", "warning: catalog rebuilt\n")


def test_quiet_keeps_warnings_only_and_a_second_configuration_replaces_the_first(capsys):
    configure_console("stdout", quiet=True)
    configure_console("stdout", quiet=True)
    logging.getLogger("scraper.command").info("committed 44 rows")
    logging.getLogger("etl.glue_job").warning("manifest set aside")
    assert capsys.readouterr().out == "warning: manifest set aside\n"  # once: one handler per package
    for name in PACKAGES:
        assert sum(isinstance(h, ConsoleHandler) for h in logging.getLogger(name).handlers) == 1
    configure_console("stdout")
    logging.getLogger("scraper.command").info("committed 44 rows")
    assert capsys.readouterr().out == "committed 44 rows\n"


def test_a_module_run_as_a_command_names_its_logger_for_its_package():
    """`python -m b3_quotes.catalog.verify` or `python scraper/scraper_upload.py` runs the module as __main__:
    a logger named __name__ would be "__main__", outside the packages the console shows."""
    runnable = [path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))
                if 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")]
    assert REPO / "b3_quotes" / "catalog" / "verify.py" in runnable and REPO / "scraper" / "scraper_upload.py" in runnable
    for path in runnable:
        for name in re.findall(r"logging\.getLogger\(([^)]*)\)", path.read_text(encoding="utf-8")):
            assert name.strip("\"'").split(".")[0] in PACKAGES, f"{path.relative_to(REPO)}: getLogger({name})"
