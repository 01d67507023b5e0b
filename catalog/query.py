"""Run SQL on the pipeline's catalog: DuckDB over the local lake, or Athena on AWS.

    python -m catalog.query --file sql/latest_sessions.sql
    python -m catalog.query --sql "SELECT count(*) FROM quotes_daily"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.settings import ConfigError, load_settings
from runtime import build_runtime


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--sql", help="the SQL text to run")
    what.add_argument("--file", type=Path, help="a .sql file to run")
    parser.add_argument("--lake-dir", type=Path, help="local lake folder (default LAKE_DIR or ./lake)")
    args = parser.parse_args(argv)
    if args.sql is not None and not args.sql.strip():
        parser.error("--sql is empty: give the SQL text to run, or --file a .sql file")
    try:
        settings = load_settings().with_overrides(lake_dir=args.lake_dir)
        sql = args.sql if args.sql is not None else read_sql_file(args.file)
        columns, rows = build_runtime(settings).query(sql)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # duckdb / Athena errors: one clear line, not a traceback
        print(f"error: query failed: {exc}", file=sys.stderr)
        return 1
    print(format_table(columns, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
