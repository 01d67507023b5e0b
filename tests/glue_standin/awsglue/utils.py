"""getResolvedOptions as Glue's library applies it, written from its documented behaviour."""

from __future__ import annotations

import argparse

# Options Glue itself passes; a job may not request them (JOB_NAME is not among them).
GLUE_RESERVED_OPTIONS = (
    "--job-bookmark-option", "--continuation-option", "--job-bookmark-from", "--job-bookmark-to",
    "--JOB_ID", "--JOB_RUN_ID", "--SECURITY_CONFIGURATION", "--encryption-type",
)
# Accepted, never required, even when requested.
GLUE_OPTIONAL_OPTIONS = ("TempDir", "RedshiftTempDir")


class GlueArgumentError(Exception):
    pass


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise GlueArgumentError(message)


def getResolvedOptions(args: list[str], options: list[str]) -> dict[str, str]:  # noqa: N802 - Glue's name
    """Every option in `options` is required; unknown options in `args` are ignored; args[0] is the script."""
    parser = _RaisingParser()
    for option in GLUE_RESERVED_OPTIONS:
        if option[2:] in options:
            raise RuntimeError(f"Using reserved arguments {option}")
        parser.add_argument(option, required=False)
    for option in GLUE_OPTIONAL_OPTIONS:
        parser.add_argument("--" + option, required=False)
    for option in options:
        if option not in GLUE_OPTIONAL_OPTIONS:
            parser.add_argument("--" + option, required=True)
    parsed, _unknown = parser.parse_known_args(args[1:])
    return vars(parsed)
