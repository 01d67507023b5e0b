"""The import rules docs/design.md's Architecture section states, checked on the source (no import is run)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The layers: scraper/, etl/ and lambdas/ at the top (their paths are what users and AWS are given),
# the rest inside the one package b3_quotes/ (docs/design.md, "The names the install puts in
# site-packages"). b3_quotes itself is only their namespace: its __init__ imports nothing.
B3 = "b3_quotes"
LAYERS = (f"{B3}.contract", f"{B3}.storage", f"{B3}.config", "scraper", "etl", "lambdas", f"{B3}.local_mode",
          f"{B3}.runtime", f"{B3}.catalog", f"{B3}.charts", f"{B3}.deploy")
CONTRACT, STORAGE, CONFIG, LOCAL_MODE, RUNTIME, CATALOG = (f"{B3}.{name}" for name in (
    "contract", "storage", "config", "local_mode", "runtime", "catalog"))
# Layer -> the project layers (or modules) it may import. The contract is the floor; local_mode
# sits on top of what AWS runs (etl, lambdas) and only command lines import it.
ALLOWED = {
    B3: set(),
    CONTRACT: set(),
    STORAGE: set(),
    CONFIG: {CONTRACT, STORAGE},
    "etl": {CONTRACT, STORAGE},
    "lambdas": {CONTRACT},
    "scraper": {CONTRACT, STORAGE, CONFIG},
    LOCAL_MODE: {CONTRACT, STORAGE, CONFIG, "etl", "lambdas"},
    # The runtime (local or AWS) is built once from the settings; only command lines take it.
    RUNTIME: {CONTRACT, STORAGE, CONFIG, LOCAL_MODE},
    CATALOG: {CONTRACT, STORAGE, CONFIG},
    f"{B3}.charts": {CONTRACT, STORAGE, CONFIG, CATALOG},
    # deploy builds what runs: the zips for AWS, and the local JVM's class archive, trained on the
    # demo's scrape (its command line).
    f"{B3}.deploy": {CONTRACT, STORAGE, CONFIG, CATALOG, RUNTIME, LOCAL_MODE, "scraper.scraper_upload"},
}
# Command lines: the only modules outside local_mode and runtime that may import them.
COMMAND_LINES = {"scraper.scraper_upload", f"{CATALOG}.query", f"{CATALOG}.verify", f"{CATALOG}.health",
                 f"{B3}.charts.command", f"{B3}.deploy.aws_check"}
# What ships to AWS (b3_quotes/deploy/package.py), from its entry module, may reach only the standard
# library and what that runtime has.
RUNTIMES = {
    "lambdas.start_glue_job": {"boto3", "botocore"},
    "etl.glue_job": {"boto3", "pyarrow", "pyspark", "awsglue"},
}
# The project layers each entry's zip carries besides its own (and b3_quotes' empty __init__).
SHIPPED = {"lambdas.start_glue_job": {CONTRACT}, "etl.glue_job": {CONTRACT, STORAGE}}


def layer_of(name: str) -> str | None:
    """The layer a module or import belongs to (b3_quotes for the namespace's own __init__), or None."""
    found = [layer for layer in (*LAYERS, B3) if name == layer or name.startswith(f"{layer}.")]
    return max(found, key=len) if found else None


def modules(repo: Path = REPO) -> dict[str, Path]:
    found = {}
    for path in [repo / B3 / "__init__.py", *(p for layer in LAYERS for p in (repo / layer.replace(".", "/")).rglob("*.py"))]:
        if path.is_file():
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
        layer = layer_of(name)
        assert layer is not None, name
        for imported in imports(path):
            target = layer_of(imported)
            allowed = any(imported == a or imported.startswith(f"{a}.") for a in ALLOWED[layer])
            if target is not None and target not in (layer, B3) and not allowed:
                if not (target in (LOCAL_MODE, RUNTIME) and name in COMMAND_LINES):
                    wrong.append(f"{name} imports {imported}")
            elif target == B3 and layer != B3:  # `from b3_quotes import x`: the namespace holds nothing
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
        carried = {*SHIPPED[entry], layer_of(entry), B3}
        outside = sorted(f"{name} imports {imported}" for name in reached for imported in imports(known[name])
                         if layer_of(imported) not in carried
                         and imported.split(".")[0] not in {"__future__", *runtime, *sys.stdlib_module_names})
        assert outside == [], entry
        assert {layer_of(name) for name in reached} <= carried, entry


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
    (tmp_path / "b3_quotes" / "contract").mkdir(parents=True)
    (tmp_path / "b3_quotes" / "__init__.py").write_text("")
    (tmp_path / "b3_quotes" / "contract" / "__init__.py").write_text("")
    (tmp_path / "b3_quotes" / "contract" / "bad.py").write_text("def f():\n    from etl.glue_job import main\n")
    assert layer_violations(tmp_path) == ["b3_quotes.contract.bad imports etl.glue_job", "b3_quotes.contract.bad imports etl.glue_job.main"]
