"""Run SQL on the pipeline's catalog: DuckDB over the local lake, or Athena on AWS.

    python -m b3_quotes.catalog.query --file sql/latest_sessions.sql
    python -m b3_quotes.catalog.query --sql "SELECT count(*) FROM quotes_daily"

Queries only read the lake's tables: a statement that writes (COPY, INSERT, CREATE, ...) or a
file outside the lake's tables is refused with one line. Several statements run in order and
each result is shown. Exit codes: 0 done, 1 the query failed, 2 usage, 3 refused.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from b3_quotes.config.settings import ConfigError, load_settings
from b3_quotes.contract.logs import configure_console
from b3_quotes.local_mode.duckdb_views import QueryRefused
from b3_quotes.runtime import build_runtime

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a program SIGPIPE ended


def format_table(columns: list[str], rows: list[tuple], float_digits: int = 4) -> str:
    def cell(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.{float_digits}f}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def read_sql_file(path: Path) -> str:
    """The SQL of `--file`, a path from the current folder; one clear line when it is not there."""
    try:
        sql = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"--file {path}: no such file (from {Path.cwd()}); sql/*.sql are in the repository "
                          "folder") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--file {path}: cannot be read ({exc})") from exc
    if not sql.strip():
        raise ConfigError(f"--file {path} is empty")
    return sql


# `-- param ticker = PETR4` in a .sql file declares ${ticker} and its default; --param ticker=VALE3 sets it.
PARAM_DECLARATION = re.compile(r"^--\s*param\s+([A-Za-z_]\w*)\s*=\s*(.*?)\s*$", re.MULTILINE)
PARAM_USE = re.compile(r"\$\{([A-Za-z_]\w*)\}")


def bind_params(sql: str, given: dict[str, str] | None = None) -> str:
    """The SQL with each ${name} replaced by its value as a quoted SQL string (quotes doubled, so a
    value cannot end the literal), the same text for DuckDB and Athena. A value comes from --param,
    else from the file's `-- param name = default` line; ConfigError names what is missing or unknown."""
    values = {name: default for name, default in PARAM_DECLARATION.findall(sql)}
    unknown = sorted(set(given or {}) - set(PARAM_USE.findall(sql)))
    if unknown:
        raise ConfigError(f"--param {', '.join(unknown)}: the SQL uses no ${{{unknown[0]}}}")
    values.update(given or {})
    missing = sorted(set(PARAM_USE.findall(sql)) - set(values))
    if missing:
        raise ConfigError(f"the SQL uses ${{{missing[0]}}}: give it with --param {missing[0]}=VALUE")
    return PARAM_USE.sub(lambda m: "'" + values[m.group(1)].replace("'", "''") + "'", sql)


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_]\w*", name.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name.strip(), value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--sql", help="the SQL text to run")
    what.add_argument("--file", type=Path, help="a .sql file to run")
    parser.add_argument("--lake-dir", type=Path, help="local lake folder (default LAKE_DIR or ./lake)")
    parser.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE",
                        help="a value for ${NAME} in the SQL, as a quoted string (repeatable)")
    args = parser.parse_args(argv)
    configure_console("stderr")  # stdout holds the result; the library's lines (a catalog rebuilt) go beside it
    if args.sql is not None and not args.sql.strip():
        parser.error("--sql is empty: give the SQL text to run, or --file a .sql file")
    try:
        settings = load_settings().with_overrides(lake_dir=args.lake_dir)
        sql = bind_params(args.sql if args.sql is not None else read_sql_file(args.file), dict(args.param))
        results = build_runtime(settings).query_all(sql)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except QueryRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:  # duckdb / Athena errors: one clear line, not a traceback
        print(f"error: query failed: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_FAILED
    return print_results(results)


def print_results(results: list[tuple[list[str], list[tuple]]]) -> int:
    """Each statement's result, a blank line between; a reader that stops early (`| head`) ends it quietly."""
    try:
        for number, (columns, rows) in enumerate(results, 1):
            if len(results) > 1:
                print(f"{'' if number == 1 else chr(10)}-- statement {number} of {len(results)}")
            print(format_table(columns, rows))
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's own advice (docs: signal, "Note on SIGPIPE"): point stdout at devnull so the
        # flush at exit does not raise again, and exit as a program killed by SIGPIPE would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
