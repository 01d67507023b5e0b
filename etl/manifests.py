"""The run manifests the job refines, and its records of each: processed, refined in part, or set aside."""

from __future__ import annotations

import datetime as dt
import json

from b3_quotes.contract.layout import (
    MANIFEST_SUFFIX,
    MANIFESTS,
    PARTIAL_RUNS,
    PROCESSED_RUNS,
    SET_ASIDE_MANIFESTS,
    RunManifest,
)
from b3_quotes.storage import Lake


def read_manifest(lake: Lake, key: str) -> RunManifest:
    """One run manifest (a small JSON object); ManifestError when it is not one."""
    return RunManifest.parse(lake.read_bytes(key), key)


def _names(lake: Lake, folder: str) -> list[str]:
    return [key.rsplit("/", 1)[-1] for key in lake.list_files(folder)]


def pending_manifest_keys(lake: Lake) -> list[str]:
    """Manifests no job run has refined or set aside yet: a refused or lost trigger is caught up here."""
    done = {name for folder in (PROCESSED_RUNS, SET_ASIDE_MANIFESTS)
            for name in _names(lake, folder)}
    return [f"{MANIFESTS}/{name}" for name in _names(lake, MANIFESTS)
            if name.endswith(MANIFEST_SUFFIX) and name not in done]


def mark_processed(lake: Lake, manifest_keys: list[str]) -> None:
    """One empty record per manifest refined: the next run no longer finds it pending."""
    for key in manifest_keys:
        lake.write_bytes(f"{PROCESSED_RUNS}/{key.rsplit('/', 1)[-1]}", b"")


def _name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def refined_through(lake: Lake, manifest_keys: list[str]) -> dict[str, str]:
    """Of these manifests, those refined in part: the last day of the steps already committed.

    One listing, then one small read per record there. A record that cannot be read counts as
    none: that manifest is refined whole again, which is safe, only longer.
    """
    present = set(_names(lake, PARTIAL_RUNS))
    found = {}
    for key in manifest_keys:
        if _name(key) in present:
            try:
                found[key] = str(json.loads(lake.read_bytes(f"{PARTIAL_RUNS}/{_name(key)}"))["refined_through"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return found


def commit_step(lake: Lake, finished: list[str], continuing: list[str], through: str,
                partial: set[str]) -> None:
    """What one committed refine step leaves: `finished` manifests marked processed (their records of
    progress, the keys in `partial`, deleted), the `continuing` ones refined through `through`."""
    mark_processed(lake, finished)
    forget_progress(lake, [key for key in finished if key in partial])
    at = dt.datetime.now(dt.UTC).isoformat()
    for key in continuing:
        body = {"manifest_key": key, "refined_through": through, "at": at}
        lake.write_bytes(f"{PARTIAL_RUNS}/{_name(key)}", json.dumps(body).encode())
        partial.add(key)


def forget_progress(lake: Lake, manifest_keys: list[str]) -> None:
    """Delete the records of progress of these manifests, once they are marked processed."""
    if manifest_keys:
        lake.delete([f"{PARTIAL_RUNS}/{_name(key)}" for key in manifest_keys])


def set_aside_manifest(lake: Lake, key: str, reason: str) -> str:
    """Record a manifest the job cannot refine, so that no later run retries it; return the record's key.

    The manifest itself stays where it is (nothing is lost, and the job may not delete raw
    data); deleting the record makes the next run try it again.
    """
    record = f"{SET_ASIDE_MANIFESTS}/{key.rsplit('/', 1)[-1]}"
    body = {"manifest_key": key, "reason": reason, "set_aside_at": dt.datetime.now(dt.UTC).isoformat()}
    lake.write_bytes(record, json.dumps(body).encode())
    return record
