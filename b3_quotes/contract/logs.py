"""What the library says, and how a command line shows it: the standard logging module, one line each.

Library code logs through its module's logger (`logger = logging.getLogger(__name__)`):
`logger.info` for what a run did, `logger.warning` for what a user should act on. It never
prints and never configures logging. The command lines (the scraper, verify, query, charts,
health, the Glue job's entry) call `configure_console` once: INFO and up, one plain line per
message, "warning: " or "error: " before the others; `--quiet` keeps only warnings and errors.
A program that imports the packages configures logging as it likes (Python's default shows
warnings on stderr and drops the rest). Glue's logs read as before: the job's lines go to
stdout, which Glue sends to the run's output log.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

# The top-level packages whose loggers a command line shows. The Lambda handler (lambdas/) prints:
# its zip carries no more than boto3 and b3_quotes/contract/, and CloudWatch takes stdout as it is.
PACKAGES = ("b3_quotes", "etl", "scraper")
PREFIXES = {logging.WARNING: "warning: ", logging.ERROR: "error: ", logging.CRITICAL: "error: "}


class LineFormatter(logging.Formatter):
    """The message as it is; warnings and errors start with "warning: " and "error: "."""

    def format(self, record: logging.LogRecord) -> str:
        line = PREFIXES.get(record.levelno, "") + record.getMessage()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class ConsoleHandler(logging.StreamHandler):
    """A StreamHandler on sys.stdout or sys.stderr as they are at each message (pytest and
    `contextlib.redirect_stdout` replace them after the handler is made)."""

    def __init__(self, to: Literal["stdout", "stderr"]) -> None:
        self.to = to
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> TextIO:  # pyright: ignore[reportIncompatibleVariableOverride]
        return sys.stdout if self.to == "stdout" else sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """StreamHandler sets its stream; this one looks it up at each message instead."""


def configure_console(to: Literal["stdout", "stderr"] = "stdout", quiet: bool = False) -> None:
    """Show the packages' messages on `to`, one line each; `quiet` keeps warnings and errors only.

    Called again (another command in the same process, a test), it replaces its own handler.
    """
    for name in PACKAGES:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if isinstance(h, ConsoleHandler)]:
            logger.removeHandler(handler)
        handler = ConsoleHandler(to)
        handler.setFormatter(LineFormatter())
        logger.addHandler(handler)
        # On the logger, not the handler: code that asks `isEnabledFor(INFO)` (the progress bar) hears --quiet.
        logger.setLevel(logging.WARNING if quiet else logging.INFO)
