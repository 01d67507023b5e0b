"""Where things live in the lake, and the run manifest that commits a scrape run.

The scraper writes by this layout, the job reads and writes by it, the Lambda trigger
recognises manifests by it and the catalog finds the tables by it (b3_quotes.contract.tables says
which folder holds each table). Standard library only: it ships in the Glue job's zip and
in the Lambda's zip.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

RAW_PREFIX = "raw/"
# Run manifests: one JSON object per scrape run, written last (what commits it); the S3 notification
# fires on these only (prefix and suffix below).
MANIFESTS = "raw/_manifests"
MANIFEST_SUFFIX = ".json"
# One empty object per manifest the job has refined: the others are still pending.
PROCESSED_RUNS = "refined/_processed_runs"
# One small JSON record per manifest refined in part: a long backfill is refined a year at a time,
# and its record names the last day of the years done, so a stopped run's successor goes on from there.
PARTIAL_RUNS = "refined/_partial_runs"
# One small JSON record per manifest set aside as unreadable or foreign (with the reason).
SET_ASIDE_MANIFESTS = "refined/_set_aside_manifests"
# One empty object per crawled table's partition a crawl was started for (`quotes_daily_compact=2024`):
# the job starts the crawler only when a partition has none, since each crawl bills its minimum.
CRAWLED_PARTITIONS = "refined/_crawled_partitions"


def lake_root(bucket: str = "", lake_dir: str | Path = "lake") -> str:
    """Where the lake is, as every part of the pipeline takes it: `s3://bucket`, or a local folder's absolute path.

    Never a `file://` URI: Path.as_uri() percent-encodes (`S%C3%A3o%20Paulo`) and Spark
    reads that text literally, while a plain absolute path means the same folder to Spark
    and pyarrow whatever it holds (spaces, commas, `%`, `#`, non-ASCII letters).
    """
    if bucket:
        return f"s3://{bucket}"
    return str(Path(lake_dir).expanduser().resolve())


def day_file_key(folder: str, day: str, file_name: str) -> str:
    """`raw/quotes/dt=2024-01-02/<file_name>`: the object key of one day's file of a table partitioned by day."""
    return f"{folder}/dt={day}/{file_name}"


def manifest_key(run_id: str) -> str:
    return f"{MANIFESTS}/{run_id}{MANIFEST_SUFFIX}"


def is_manifest_key(key: str) -> bool:
    return key.startswith(f"{MANIFESTS}/") and key.endswith(MANIFEST_SUFFIX)


# The manifest's fields whose JSON name differs (every manifest written so far says `partitions`).
JSON_NAMES = {"days": "partitions"}


class ManifestError(ValueError):
    """A file under raw/_manifests/ that is not a run manifest the job can refine."""


@dataclass(frozen=True)
class RunManifest:
    """What one scrape run wrote: the job refines exactly these days and tickers.

    The job needs `days` and `tickers`; the other fields tell a person what the run did. `days`
    are the raw day folders (`dt=` partitions) the run wrote, named `partitions` in the JSON.
    """

    run_id: str
    days: list[str]
    tickers: list[str]
    key: str = ""
    dataset: str = ""
    source: str = ""
    created_at: str = ""
    rows: int = 0
    files: list[str] = field(default_factory=list)
    rejected_rows: int = 0
    issue_files: list[str] = field(default_factory=list)  # the run's quote_issues files (kept and rejected rows)

    def to_json(self) -> bytes:
        body = {JSON_NAMES.get(name, name): value for name, value in asdict(self).items()
                if name != "key"}  # the key is its name
        return json.dumps(body, indent=1).encode()

    @classmethod
    def parse(cls, data: bytes, key: str) -> RunManifest:
        """A run manifest from its bytes; ManifestError says why it is not one."""
        try:
            body = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"not UTF-8 JSON ({exc})") from exc
        if not isinstance(body, dict):
            raise ManifestError(f"expected a JSON object, found {type(body).__name__}")
        partitions, tickers = body.get("partitions"), body.get("tickers")
        if not isinstance(partitions, list) or not partitions or not all(_is_iso_day(p) for p in partitions):
            raise ManifestError("`partitions` must be a non-empty list of YYYY-MM-DD days")
        if not isinstance(tickers, list) or not tickers or not all(isinstance(t, str) and t for t in tickers):
            raise ManifestError("`tickers` must be a non-empty list of ticker codes")
        files = body.get("files", [])
        if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
            raise ManifestError("`files` must be a list of the run's file keys")
        run_id = body.get("run_id") or key.rsplit("/", 1)[-1].removesuffix(MANIFEST_SUFFIX)
        return cls(str(run_id), sorted(set(partitions)), sorted(set(tickers)), key, files=sorted(set(files)))


def _is_iso_day(value: object) -> bool:
    try:
        return isinstance(value, str) and dt.date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False
