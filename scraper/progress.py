"""Progress of long loops: a tqdm bar on a terminal, plain lines elsewhere (CI and Glue logs stay readable).

The scraper's: B3 downloads and a backfill's raw days. Standard library only unless stderr is
a terminal (tqdm is imported then).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)
PLAIN_INTERVAL_S = 10.0  # off a terminal: at most one line per interval, besides the first and the last


class Progress:
    """Counts the finished items of one loop and shows them: `update` after each, `finish` at the end."""

    def __init__(self, total: int, description: str, unit: str, *, say: Callable[[str], None],
                 bar: Any = None, clock: Callable[[], float] = time.monotonic, quiet: bool = False) -> None:
        self.total, self.description, self.unit = total, description, unit
        self.done = 0
        self.say, self.bar, self.clock, self.quiet = say, bar, clock, quiet
        self.started = self.last_line = clock()
        if not quiet and bar is None:
            self.say(f"{description}: {total} {unit}s to go")

    def update(self, count: int = 1, detail: str = "") -> None:
        self.done += count
        if self.quiet:
            return
        if self.bar is not None:
            if detail:
                self.bar.set_postfix_str(detail, refresh=False)
            self.bar.update(count)
            return
        now = self.clock()
        if now - self.last_line >= PLAIN_INTERVAL_S and self.done < self.total:
            self.last_line = now
            self.say(f"{self.description}: {self.done}/{self.total} {self.unit}s "
                     f"({100 * self.done // self.total} %)" + (f", {detail}" if detail else ""))

    def track(self, items: Iterable[T]) -> Iterator[T]:
        """Each item of `items`, counted as done when the next one is asked for."""
        for item in items:
            yield item
            self.update()

    def write(self, message: str) -> None:
        """A message met during the loop, printed without breaking the bar."""
        if self.bar is not None:
            self.bar.write(message)
        else:
            self.say(message)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif not self.quiet:
            self.say(f"{self.description}: {self.done}/{self.total} {self.unit}s "
                     f"in {self.clock() - self.started:.1f} s")


def start_progress(total: int, description: str, *, unit: str = "item", min_total: int = 2,
                   say: Callable[[str], None] = logger.info, interactive: bool | None = None,
                   clock: Callable[[], float] = time.monotonic) -> Progress:
    """Show the progress of `total` items, silently below `min_total` (short work needs none).

    On a terminal (stderr is a TTY, and the command shows info lines: not --quiet) a tqdm bar on
    stderr; otherwise a line through `say` (this module's logger) at the start, at most every
    PLAIN_INTERVAL_S, and at `finish`.
    """
    quiet = total < min_total
    if interactive is None:
        interactive = sys.stderr.isatty() and logger.isEnabledFor(logging.INFO)
    bar = None
    if interactive and not quiet:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True)
    return Progress(total, description, unit, say=say, bar=bar, clock=clock, quiet=quiet)


@contextmanager
def progress(total: int, description: str, **options: Any) -> Iterator[Progress]:
    """`start_progress` for a block: a block that fails ends without a closing line (its error speaks)."""
    shown = start_progress(total, description, **options)
    try:
        yield shown
    except BaseException:
        if shown.bar is not None:
            shown.bar.close()
        raise
    shown.finish()


def tracked(items: Iterable[T], total: int, description: str, **options: Any) -> Iterator[T]:
    """`items` with their progress shown: `for day in tracked(days, len(days), "downloads")`."""
    with progress(total, description, **options) as shown:
        yield from shown.track(items)
