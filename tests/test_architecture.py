"""The import rules docs/design.md's Architecture section states, checked on the source (no import is run)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("contract", "storage", "pipeline", "scraper", "etl", "lambdas", "local_mode", "runtime", "catalog",
            "charts", "deploy")
# Package -> the project packages (or modules) it may import. contract is the floor; local_mode
# sits on top of what AWS runs (etl, lambdas) and only command lines import it.
ALLOWED = {
    "contract": set(),
    "storage": set(),
    "pipeline": {"contract", "storage"},
    "etl": {"contract", "storage"},
    "lambdas": {"contract"},
    "scraper": {"contract", "storage", "pipeline"},
    "local_mode": {"contract", "storage", "pipeline", "etl", "lambdas"},
    # The runtime (local or AWS) is built once from the settings; only command lines take it.
    "runtime": {"contract", "storage", "pipeline", "local_mode"},
    "catalog": {"contract", "storage", "pipeline"},
    "charts": {"contract", "storage", "pipeline", "catalog"},
    # deploy builds what runs: the zips for AWS, and the local JVM's class archive, trained on the
    # demo's scrape (its command line).
    "deploy": {"contract", "storage", "pipeline", "catalog", "runtime", "local_mode", "scraper.scraper_upload"},
}
# Command lines: the only modules outside local_mode and runtime that may import them.
COMMAND_LINES = {"scraper.scraper_upload", "catalog.query", "catalog.verify", "catalog.health", "charts.command",
                 "deploy.aws_check"}
# What ships to AWS (deploy/package.py), from its entry module, may reach only the standard
# library and what that runtime has.
RUNTIMES = {
    "lambdas.start_glue_job": {"boto3", "botocore"},
    "etl.glue_job": {"boto3", "pyarrow", "pyspark", "awsglue"},
}
# The project packages each entry's zip carries besides its own.
SHIPPED = {"lambdas.start_glue_job": {"contract"}, "etl.glue_job": {"contract", "storage"}}


def modules(repo: Path = REPO) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (repo / package).rglob("*.py"):
            parts = path.relative_to(repo).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path) -> set[str]:
    """Every absolute import in the file, at any depth (imports inside functions count)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def project_graph(repo: Path = REPO) -> dict[str, set[str]]:
    """Module -> the project modules it imports, at any depth: importing `a.b.c` runs `a` and `a.b`
    (their `__init__`) first, so those count too, except a module's own packages, which are
    already loading when it runs."""
    known = modules(repo)
    graph = {}
    for name, path in known.items():
        own = set(_parents(name))
        reached = {i for i in imports(path) if i in known}
        reached |= {p for i in reached for p in _parents(i) if p in known and p not in own}
        graph[name] = reached - {name}
    return graph


def arrows_up(repo: Path = REPO) -> list[str]:
    """A module taking a name from the package it belongs to: the package's `__init__` sits above its
    modules (`from pkg import sibling_module` is no arrow up; `from pkg import name` is)."""
    known, wrong = modules(repo), []
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in _parents(name):
                wrong += [f"{name} imports {node.module}.{a.name}" for a in node.names
                          if f"{node.module}.{a.name}" not in known]
            elif isinstance(node, ast.Import):
                wrong += [f"{name} imports {a.name}" for a in node.names if a.name in _parents(name)]
    return sorted(wrong)


def layer_violations(repo: Path = REPO) -> list[str]:
    wrong = []
    for name, path in modules(repo).items():
        package = name.split(".")[0]
        for imported in imports(path):
            target = imported.split(".")[0]
            allowed = any(imported == a or imported.startswith(f"{a}.") for a in ALLOWED[package])
            if target in PACKAGES and target != package and not allowed:
                if not (target in ("local_mode", "runtime") and name in COMMAND_LINES):
                    wrong.append(f"{name} imports {imported}")
    return sorted(wrong)


def test_packages_import_only_what_the_layers_allow():
    assert layer_violations() == []


def test_code_shipped_to_aws_reaches_only_its_runtime():
    import sys

    graph, known = project_graph(), modules()
    for entry, runtime in RUNTIMES.items():
        reached, todo = set(), [entry]
        while todo:
            name = todo.pop()
            if name not in reached:
                reached.add(name)
                todo += graph[name]
                todo += [parent for parent in _parents(name) if parent in known]  # packages' __init__
        outside = sorted(f"{name} imports {imported}" for name in reached for imported in imports(known[name])
                         if imported.split(".")[0] not in {"__future__", *SHIPPED[entry], entry.split(".")[0], *runtime}
                         and imported.split(".")[0] not in sys.stdlib_module_names)
        assert outside == [], entry
        assert {name.split(".")[0] for name in reached} <= {*SHIPPED[entry], entry.split(".")[0]}, entry


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def test_no_module_imports_its_own_package():
    assert arrows_up() == []


def import_cycles(repo: Path = REPO) -> list[list[str]]:
    """Every circle of imports, imports inside functions included: an import moved into a function
    to dodge a circle still closes it (one that only defers a heavy import closes none)."""
    graph = project_graph(repo)
    cycles: list[list[str]] = []
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state[nxt] == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif state[nxt] == 0:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if state[start] == 0:
            visit(start, [start])
    return cycles


def test_no_import_cycle_between_modules():
    assert import_cycles() == []


def test_the_rules_catch_a_circle_dodged_inside_a_function_and_an_arrow_up(tmp_path):
    # errors.py in a package whose __init__ loads a source that imports the errors, the source's import
    # moved into a function: importing pkg.errors runs pkg/__init__ first, so the circle is there.
    package = tmp_path / "scraper"
    package.mkdir()
    (package / "__init__.py").write_text("def make():\n    from scraper.source import Source\n")
    (package / "errors.py").write_text("class SourceError(Exception): ...\n")
    (package / "source.py").write_text("from scraper.errors import SourceError\nfrom scraper import make\n")
    (package / "helper.py").write_text("from scraper.errors import SourceError\n")
    assert import_cycles(tmp_path) == [["scraper", "scraper.source", "scraper"]]
    assert arrows_up(tmp_path) == ["scraper.source imports scraper.make"]


def test_the_rules_catch_a_forbidden_import(tmp_path):
    # The check itself can fail: a contract module importing the job, even inside a function.
    (tmp_path / "contract").mkdir()
    (tmp_path / "contract" / "__init__.py").write_text("")
    (tmp_path / "contract" / "bad.py").write_text("def f():\n    from etl.glue_job import main\n")
    assert layer_violations(tmp_path) == ["contract.bad imports etl.glue_job", "contract.bad imports etl.glue_job.main"]
