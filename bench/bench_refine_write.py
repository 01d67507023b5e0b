"""Cost of writing refined partitions (one file per ticker and session): the job's writer vs Spark's.

    .venv/bin/python bench/bench_refine_write.py [--tickers 5] [--sessions 355]

Builds refined daily rows from the bundled sample (repeating its tickers under new codes
for more tickers), then times etl.refined_writer.write_partitions (each Spark task writes its
partitions' files with pyarrow) against Spark's own writer with dynamic partition overwrite on
the same rows (the baseline, local file system as configured by b3_quotes.local_mode.spark), in one
run. Both write and then rewrite dt=/ticker= folders.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from b3_quotes.contract.tables import QUOTES_DAILY, RAW_QUOTES
from b3_quotes.local_mode.spark import local_spark
from b3_quotes.storage import Lake
from etl.refined_writer import write_partitions
from etl.transforms import refine_daily
from scraper.raw_writer import RunStamp, write_raw_run
from scraper.sources.csv_files import sample_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickers", type=int, default=5, help="multiple of the 5 sample tickers is exact")
    parser.add_argument("--sessions", type=int, default=355)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-refine-"))
    try:
        base = sample_source().fetch(["PETR4", "VALE3", "ITUB4", "BBDC4", "ABEV3"], None, None).quotes.dropna()
        copies = [base.assign(ticker=base["ticker"] + (f"X{i}" if i else "")) for i in range(-(-args.tickers // 5))]
        import pandas as pd

        quotes = pd.concat(copies, ignore_index=True)
        days = sorted(set(quotes["trade_date"]))[: args.sessions]
        quotes = quotes[quotes["trade_date"].isin(days)]
        import datetime as dt

        write_raw_run(Lake.local(work / "lake"), {RAW_QUOTES: quotes}, RunStamp("bench", {}, dt.datetime.now(dt.UTC), "bench"))
        spark = local_spark("bench-refine-write")
        raw = spark.read.option("basePath", str(work / "lake/raw/quotes")).parquet(str(work / "lake/raw/quotes"))
        daily = refine_daily(raw).cache()
        rows = daily.count()
        print(f"refined write benchmark: {rows:,} rows = {rows:,} dt/ticker partitions "
              f"({quotes['ticker'].nunique()} tickers x {len(days)} sessions)")

        timings = {}
        for label, write in (
            ("etl.refined_writer.write_partitions (job)",
             lambda i: write_partitions(daily, Lake.local(work / "job"), QUOTES_DAILY)),
            ("Spark dynamic overwrite (baseline)",
             lambda i: daily.repartition(2, "dt", "ticker").write.mode("overwrite")
             .option("partitionOverwriteMode", "dynamic").partitionBy("dt", "ticker")
             .parquet(str(work / "spark" / "quotes_daily"))),
        ):
            for attempt in ("first write", "rewrite"):
                began = time.perf_counter()
                write(attempt)
                timings[(label, attempt)] = time.perf_counter() - began
        for (label, attempt), seconds in timings.items():
            print(f"{label:<36} {attempt:<12} {seconds:7.2f} s  {rows / seconds:8.0f} partitions/s")
        job = sum(v for (k, _), v in timings.items() if k.startswith("etl"))
        spark_s = sum(v for (k, _), v in timings.items() if k.startswith("Spark"))
        print(f"speed-up over Spark's writer: {spark_s / job:.1f}x")
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
