"""Glue job entry point: refine the raw quotes that scrape runs delivered.

Runs unchanged on AWS Glue 5.0 (`awsglue` is imported inside the entry points) and on a
local SparkSession (b3_quotes.local_mode.glue). Glue runs it two ways, with one code path: as the
script job (`main`: Job.init, `run_in_glue`, Job.commit) and as the visual job, whose
generated script inits and commits the Job itself and calls `run_in_glue` from its custom node.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from b3_quotes.contract.layout import CRAWLED_PARTITIONS, ManifestError, RunManifest
from b3_quotes.contract.logs import configure_console
from b3_quotes.contract.tables import CRAWLED_TABLES
from b3_quotes.storage import Lake, release_filesystems
from etl.manifests import (
    commit_step,
    forget_progress,
    mark_processed,
    pending_manifest_keys,
    read_manifest,
    refined_through,
    set_aside_manifest,
)
from etl.refine import Counts, refine_changes

# Named, not __name__: the script job runs this file as __main__.
logger = logging.getLogger("etl.glue_job")

# getResolvedOptions makes every one of these required: each has a non-empty default in the
# job definition (infra/glue-job.json), except JOB_NAME, which Glue passes on every run.
JOB_ARGUMENTS = ["JOB_NAME", "lake_root", "manifest_key", "crawler_name", "aws_region"]
# --manifest_key's default: no particular manifest, refine whatever is pending. Glue passes a
# key whose value is empty as a bare flag, which getResolvedOptions refuses ("expected one
# argument"), so "none" needs a word. The Lambda always sends a real manifest key.
PENDING = "pending"
# Rounds over raw/_manifests/ after the first one, for manifests that land while a run is
# busy (their own trigger is refused); bounded so that a run always ends.
EXTRA_ROUNDS = 3


# What one step refines at most, in ticker-sessions (a refined file each), unless one year holds more:
# years are joined into a step while they fit. The whole market's year (~190 k) is a step of its
# own, ten years of the IBOV (~220 k) one step, a test's lake one. REFINE_STEP_SESSIONS overrides it.
STEP_TICKER_SESSIONS = 250_000


@dataclass(frozen=True)
class Step:
    """Whole years of the days pending manifests still need refined: the unit a run commits."""

    year: str  # the step's last year: its commit says the runs are refined through its end
    days: list[str]
    tickers: list[str]
    files: list[str]
    finished: list[str]    # manifests whose last remaining day is in this step
    continuing: list[str]  # manifests with days in this step and in later ones
    first_year: str = ""

    @property
    def years(self) -> str:
        return self.year if self.first_year in ("", self.year) else f"{self.first_year}-{self.year}"

    @property
    def ticker_sessions(self) -> int:
        return len(self.days) * len(self.tickers)


def step_ticker_sessions(environ: dict[str, str] | os._Environ = os.environ) -> int:
    """REFINE_STEP_SESSIONS, a whole number above 0; else STEP_TICKER_SESSIONS."""
    text = environ.get("REFINE_STEP_SESSIONS", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else STEP_TICKER_SESSIONS


def _joined(first: Step, then: Step) -> Step:
    """Two consecutive steps as one."""
    finished = sorted({*first.finished, *then.finished})
    return Step(then.year, [*first.days, *then.days], sorted({*first.tickers, *then.tickers}),
                sorted({*first.files, *then.files}), finished,
                sorted({*first.continuing, *then.continuing} - set(finished)), first.first_year or first.year)


def _year_of_file(key: str) -> str | None:
    """`2020` for `raw/quotes/dt=2020-03-02/...`; None for a key without a day folder."""
    return next((part[3:7] for part in key.split("/") if part.startswith("dt=")), None)


def plan_steps(manifests: list[RunManifest], through: dict[str, str], budget: int | None = None) -> list[Step]:
    """The days these manifests still need refined (after `through`, the day their committed steps
    reached), in steps of whole years of trade dates, oldest first: consecutive years are joined while
    the step holds at most `budget` ticker-sessions (default step_ticker_sessions()).

    A step refines its own days with the tickers of the manifests that have days in it, reading
    the sessions its windows need from the years before, which earlier steps have committed: so
    each step is an incremental run like a daily one, and a run stopped between steps (a Glue
    timeout) loses only the step under way.
    """
    remaining = {m.key: [d for d in m.days if d > through.get(m.key, "")] for m in manifests}
    steps = []
    for year in sorted({d[:4] for days in remaining.values() for d in days}):
        inside = [m for m in manifests if any(d[:4] == year for d in remaining[m.key])]
        steps.append(Step(
            year,
            sorted({d for m in inside for d in remaining[m.key] if d[:4] == year}),
            sorted({t for m in inside for t in m.tickers}),
            sorted({f for m in inside for f in m.files if _year_of_file(f) in (None, year)}),
            [m.key for m in inside if max(remaining[m.key])[:4] == year],
            [m.key for m in inside if max(remaining[m.key])[:4] > year]))
    budget = step_ticker_sessions() if budget is None else budget
    joined: list[Step] = []
    for step in steps:
        if joined and joined[-1].ticker_sessions + step.ticker_sessions <= budget:
            joined[-1] = _joined(joined[-1], step)
        else:
            joined.append(step)
    return joined


@dataclass
class StepsDone:
    """What refine_manifests did: its counts, the manifests it marked processed as their last step
    committed, and those it left refined in part (their records of progress)."""

    counts: Counts
    committed: list[str]
    partial: list[str]


@dataclass
class RunTotals:
    """What a job run did: the scrape runs it refined, their counts, the manifests it set aside."""

    counts: Counts = field(default_factory=Counts)
    runs: int = 0
    set_aside: int = 0


def refine_manifests(spark: SparkSession, lake: Lake, manifests: list[RunManifest]) -> StepsDone:
    """Recompute and overwrite every refined partition these scrape runs can have changed, in steps of whole years.

    The windows need each ticker's earlier sessions: etl.refine reads what they need and
    rewrites only the rows that can change, so an incremental run equals a full recompute.
    Each step but the last is committed when it ends: the manifests it finished are marked
    processed, the others record the day they are refined through (`refined/_partial_runs/`), so
    the next run, whichever manifest starts it, refines only the years left, and its own. The
    caller marks the rest processed (refine_run), then deletes their records (under `partial`);
    `committed` lists the manifests marked here.
    """
    through = refined_through(lake, [m.key for m in manifests])
    steps = plan_steps(manifests, through)
    partial, committed, totals = set(through), [], Counts()
    for number, step in enumerate(steps, 1):
        if len(steps) > 1:
            logger.info(f"  step {number} of {len(steps)}: {step.years}, {len(step.days)} day(s) of {len(step.tickers)} ticker(s)")
        counts = refine_changes(spark, lake, step.tickers, step.days, step.files)
        totals.add(counts)
        if counts.rebuilt or number == len(steps):  # a rebuild recomputed all of raw: nothing is left
            break
        commit_step(lake, step.finished, step.continuing, f"{step.year}-12-31", partial)
        committed += step.finished
    return StepsDone(totals, committed, sorted(partial - set(committed)))


def _readable_manifests(lake: Lake, keys: list[str]) -> list[RunManifest]:
    """The manifests among `keys` that can be refined; the others are named and set aside."""
    manifests = []
    for key in keys:
        try:
            manifests.append(read_manifest(lake, key))
        except FileNotFoundError:
            logger.warning(f"manifest {key} does not exist: nothing to refine for it")
        except ManifestError as exc:
            record = set_aside_manifest(lake, key, str(exc))
            logger.warning(f"manifest {key} set aside ({exc}); the other runs are refined. "
                f"Fix it and delete {record} to refine it")
    return manifests


def refine_run(spark: SparkSession, lake: Lake, manifest_key: str = "",
               refine: Callable[[SparkSession, Lake, list[RunManifest]], StepsDone] = refine_manifests,
               extra_rounds: int = EXTRA_ROUNDS) -> RunTotals:
    """Refine `manifest_key` (may be empty or PENDING) and every pending manifest, then mark them processed.

    Pending manifests are those no run has refined: a trigger refused while another run was
    busy, or lost. Before ending, the run looks again (at most `extra_rounds` times) and
    refines what arrived meanwhile, so nothing waits for the next scrape.
    """
    totals = RunTotals()
    requested = [] if manifest_key.strip() in ("", PENDING) else [manifest_key.strip()]
    for _ in range(1 + extra_rounds):
        keys = sorted({*requested, *pending_manifest_keys(lake)})
        requested = []
        if not keys:
            break
        manifests = _readable_manifests(lake, keys)
        totals.set_aside += sum(1 for k in keys if k not in {m.key for m in manifests})
        if manifests:
            done = refine(spark, lake, manifests)
            mark_processed(lake, [m.key for m in manifests if m.key not in done.committed])
            forget_progress(lake, done.partial)
            totals.runs += len(manifests)
            totals.counts.add(done.counts)
    else:
        if left := pending_manifest_keys(lake):
            logger.info(f"{len(left)} manifest(s) still arriving after {1 + extra_rounds} rounds: the next run refines them")
    return totals


def start_crawler(crawler_name: str, glue_client=None) -> bool:
    """Ask the crawler to pick up new partitions: False when a crawl is already running."""
    import boto3

    glue = glue_client or boto3.client("glue")
    try:
        glue.start_crawler(Name=crawler_name)
    except glue.exceptions.CrawlerRunningException:
        return False
    return True


def uncrawled_partitions(lake: Lake) -> list[str]:
    """The crawled tables' partitions (`quotes_daily_compact=2024`: a year) no crawl was started for."""
    found = {f"{name}={folder.split('=', 1)[1]}" for name, table in CRAWLED_TABLES.items()
             for folder in lake.list_folders(table.folder, f"{table.partition_keys[0].name}=")}
    crawled = {key.rsplit("/", 1)[-1] for key in lake.list_files(CRAWLED_PARTITIONS, hidden=True)}
    return sorted(found - crawled)


def crawl_new_partitions(lake: Lake, crawler_name: str, glue_client=None) -> list[str]:
    """Start the crawler when a crawled table has a partition no crawl was started for (a new year of
    the compact tables), and record them; the partitions crawled for, [] when no crawl was needed.

    A crawl bills its minimum (10 minutes) whatever it finds, and a run that only rewrites this
    year's compact file adds no partition: so most daily runs start none. A crawl refused because
    one is running records nothing, so the next run asks again.
    """
    new = uncrawled_partitions(lake)
    if not new:
        return []
    if not start_crawler(crawler_name, glue_client):
        logger.info(f"crawler {crawler_name} already running: the next run starts it for {', '.join(new)}")
        return []
    for name in new:
        lake.write_bytes(f"{CRAWLED_PARTITIONS}/{name}", b"")
    logger.info(f"crawler {crawler_name} started for the new partition(s) {', '.join(new)}")
    return new


def run_in_glue(glue_context, argv: list[str] | None = None) -> RunTotals:
    """The job's work inside Glue, given the GlueContext of whoever inits and commits the Job.

    Reads the job's arguments from `argv` (sys.argv by default), refines the requested and
    pending manifests, then starts the crawler when a compact table has a new year (the other tables'
    partitions are projected by Athena, b3_quotes/contract/tables.py, and need no catalog entry). Never touches
    awsglue.job.Job: Glue's Job wraps one JVM object per process, and the visual job's generated
    script inits and commits it already.
    """
    from awsglue.utils import getResolvedOptions

    args = getResolvedOptions(sys.argv if argv is None else argv, JOB_ARGUMENTS)
    configure_console("stdout")  # the job's lines in the run's output log, as plain as before
    # One region for boto3 and pyarrow alike, as the job definition states it.
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = args["aws_region"]
    lake = Lake.at(args["lake_root"])  # the one Lake of the run, passed down
    totals = refine_run(glue_context.spark_session, lake, args["manifest_key"])
    logger.info(f"refined {totals.runs} scrape run(s) ({args['manifest_key']}): {totals.counts}, "
          f"{totals.set_aside} manifest(s) set aside")
    if totals.runs:
        crawl_new_partitions(lake, args["crawler_name"])
    release_filesystems()  # S3 clients dropped now; pyarrow's S3 is shut down at exit (b3_quotes.storage.lake)
    return totals


def main(argv: list[str]) -> RunTotals:
    """The script job's entry point: Job.init, run_in_glue, Job.commit, as a generated script does."""
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    args = getResolvedOptions(argv, ["JOB_NAME"])
    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    totals = run_in_glue(glue_context, argv)
    job.commit()
    return totals


if __name__ == "__main__":
    main(sys.argv)
