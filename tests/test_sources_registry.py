"""The source registry: every name builds, an unknown one is one clear error, nothing below imports it."""

from __future__ import annotations

import ast

import pytest

from scraper import scraper_upload
from scraper.errors import SourceDataError
from scraper.sources.b3_cotahist import B3Source
from scraper.sources.csv_files import CsvSource
from scraper.sources.registry import SOURCES, file_source_names, make_source
from scraper.sources.yfinance_source import YFinanceSource
from tests.conftest import REPO, SAMPLE_DIR

SOURCES_DIR = REPO / "scraper" / "sources"


# The four sources, written here: a source added to or dropped from the registry fails this list.
SOURCE_CLASSES = {"yfinance": YFinanceSource, "b3": B3Source, "sample": CsvSource, "csv": CsvSource}


def test_the_registry_holds_exactly_the_four_sources():
    assert set(SOURCES) == set(SOURCE_CLASSES)


@pytest.mark.parametrize("name", list(SOURCE_CLASSES))
def test_every_registered_source_builds_under_its_name(name):
    source = make_source(name, csv_dir=SAMPLE_DIR)
    assert source.name == name
    assert type(source) is SOURCE_CLASSES[name]


def test_an_unknown_source_is_one_error_naming_every_registered_source():
    with pytest.raises(SourceDataError) as caught:
        make_source("bloomberg")
    message = str(caught.value)
    assert "'bloomberg'" in message
    assert all(name in message for name in SOURCE_CLASSES)


def test_the_command_line_takes_its_source_names_from_the_registry():
    (action,) = [a for a in scraper_upload.build_parser()._actions if a.dest == "source"]
    assert tuple(action.choices or ()) == ("yfinance", "b3", "sample", "csv")
    assert file_source_names() == ("sample", "csv")  # the sources that read everything their files hold


def imported_modules(path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(f"relative:{'.' * node.level}{node.module or ''}")
    return names


def test_no_source_module_imports_the_registry():
    modules = sorted(p for p in SOURCES_DIR.glob("*.py") if p.name not in ("__init__.py", "registry.py"))
    assert {p.stem for p in modules} >= {"base", "csv_files", "yfinance_source", "b3_cotahist"}
    modules.append(REPO / "scraper" / "http_client.py")  # the helpers the sources share
    for path in modules:
        imported = imported_modules(path)
        assert "scraper.sources.registry" not in imported, f"{path.name} imports the registry"
        assert not [n for n in imported if n.startswith("relative:")], f"{path.name}: use absolute imports"
        siblings = {n.split(".")[2] for n in imported if n.startswith("scraper.sources.")}
        assert siblings <= {"base"}, f"{path.name} imports {siblings - {'base'}}: only base is shared"


def test_only_b3_lists_a_market_and_every_other_source_says_why_not():
    from scraper.sources.registry import market_list_refusal, market_source_names

    assert market_source_names() == ("b3",)
    assert market_list_refusal("b3") == ""
    assert "Yahoo has no market list" in market_list_refusal("yfinance")
    assert all(market_list_refusal(name) for name in ("yfinance", "sample", "csv"))
    (action,) = [a for a in scraper_upload.build_parser()._actions if a.dest == "universe"]
    assert tuple(action.choices or ()) == ("ibov", "all")
