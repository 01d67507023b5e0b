"""The errors a source raises, in a module of their own: the HTTP helpers, validation and every
source raise them, and none of those need to load the sources to do it."""

from __future__ import annotations


class SourceError(Exception):
    """A source could not deliver data. Subclasses say why."""


class SourceUnavailable(SourceError):
    """Network failure, time-out or a service error: retry later."""


class SourceDataError(SourceError):
    """The source answered, but with data that cannot be parsed."""
