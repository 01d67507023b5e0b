"""The two local commands a user runs most, whole, with the project's Python daemon and with Spark's own.

    .venv/bin/python bench/bench_local_runs.py [--rounds 2]

- the demo's scrape: `scraper_upload.py --source sample` into a fresh lake (17 months of the five
  sample tickers, a cold JVM);
- a daily run on that lake: the five tickers' last sample session again.

Each runs with LOCAL_SPARK_PYTHON_DAEMON unset (the project's, b3_quotes/local_mode/python_daemon.py) and set
to `pyspark.daemon` (the baseline), alternating, `--rounds` times each. It prints each one's mean
wall time, the whole machine's busy CPU-seconds while it ran (run it on an otherwise idle machine),
the process tree's peak memory, and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from process_tree import REPO, run_command  # noqa: E402

SAMPLE = REPO / "data" / "sample" / "yahoo"
SCRAPER = str(REPO / "scraper" / "scraper_upload.py")
DAILY = ["--source", "csv", "--csv-dir", str(SAMPLE), "--tickers", "PETR4,VALE3,ITUB4,BBDC4,ABEV3",
         "--start", "2020-06-09", "--end", "2020-06-09"]
BASELINE = "pyspark.daemon (baseline)"
DAEMONS = {"project daemon": None, BASELINE: "pyspark.daemon"}


def busy_cpu_seconds() -> float:
    """The machine's busy time since boot (user, nice, system, irq, softirq, steal), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def measure(argv: list[str], daemon: str | None) -> tuple[float, float, float]:
    """(wall seconds, busy CPU-seconds, peak MB of the largest process) of one whole command."""
    before = busy_cpu_seconds()
    run = run_command([sys.executable, SCRAPER, *argv], env={"LOCAL_SPARK_PYTHON_DAEMON": daemon} if daemon else None)
    return run.seconds, busy_cpu_seconds() - before, max(run.peaks_mb.values(), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.pop("LOCAL_SPARK_PYTHON_DAEMON", None)  # the project's daemon: the variable unset
    work = Path(tempfile.mkdtemp(prefix="bench-local-runs-"))
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    try:
        for round_number in range(args.rounds):
            for label, daemon in DAEMONS.items():
                lake = work / f"lake-{round_number}-{daemon or 'project'}"
                results.setdefault(("demo scrape", label), []).append(
                    measure(["--source", "sample", "--lake-dir", str(lake)], daemon))
                results.setdefault(("daily run", label), []).append(measure([*DAILY, "--lake-dir", str(lake)], daemon))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"mean of {args.rounds} round(s); CPU is the whole machine's busy time while the command ran")
    for command in ("demo scrape", "daily run"):
        base_wall, base_cpu, _ = (statistics.mean(v) for v in zip(*results[(command, BASELINE)]))
        for label in DAEMONS:
            wall, cpu, peak = (statistics.mean(v) for v in zip(*results[(command, label)]))
            print(f"  {command:12} {label:26} {wall:6.2f} s ({wall / base_wall:4.2f}x)  "
                  f"{cpu:6.2f} CPU-s ({cpu / base_cpu:4.2f}x)  peak {peak:5.0f} MB")


if __name__ == "__main__":
    main()
