"""CPU a small S3 file costs the client: storage.Lake's writes against pyarrow's S3 file system alone.

    .venv/bin/python bench/bench_s3_per_file.py [--files 300]

A moto server runs in its own process (its CPU is not the client's), so the figures are the
client's own cost of a file: what caps a Spark task's files per second under the GIL before
S3's latency does. Each variant writes the same one-row Parquet file `--files` times under new
keys (as the job writes one file per ticker and session) and prints the client's CPU per file
(time.process_time, this process only) against the baseline in the same run:

- baseline: one pyarrow S3FileSystem made once and reused, pq.write_table per file;
- Lake.write_parquet: the job's write, one boto3 session and file system per process;
- Lake.write_parquet, a session per file: the same write when every file makes a new boto3
  session and resolves its credentials (how b3_quotes.storage.lake worked before; the "before" figure);
- Lake.write_bytes: a small object through the Lake's boto3 client (the run's records).

Goal: Lake.write_parquet <= 5 ms of CPU a file. Peak memory is this process's (ru_maxrss).
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BUCKET = "bench-lake"
GOAL_MS = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    """A moto server in its own process, listening on 127.0.0.1 only."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
            return server, endpoint
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise SystemExit("the moto server did not start") from None
            time.sleep(0.2)


def cpu_per_file_ms(files: int, write: Callable[[int], None]) -> float:
    write(-1)  # first use: imports, the first client and connection are paid once, outside the figure
    start = time.process_time()
    for n in range(files):
        write(n)
    return (time.process_time() - start) / files * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300)
    args = parser.parse_args()
    server, endpoint = start_moto()
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        import boto3
        import pyarrow as pa
        import pyarrow.fs as pafs
        import pyarrow.parquet as pq

        from b3_quotes.storage import Lake, release_filesystems
        from b3_quotes.storage import lake as storage_lake

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        row = pa.table({"trade_date": pa.array([20240102], pa.int32()), "close_price": [38.12], "volume": [1000]})
        alone = pafs.S3FileSystem(region="us-east-1", endpoint_override=endpoint.removeprefix("http://"),
                                  scheme="http", access_key="bench", secret_key="bench")
        lake = Lake.at(f"s3://{BUCKET}")

        def key(variant: str, n: int) -> str:
            return f"refined/{variant}/dt=2024-01-02/ticker=T{n + 1}/part-0.snappy.parquet"

        def per_file_session(n: int) -> None:
            # What every file cost before: a new boto3 session, its credential chain resolved again
            # (the file system itself was kept while the credentials were the same, as now).
            storage_lake._SESSION.clear()
            lake.write_parquet(key("session-per-file", n), row)

        figures = {
            "pyarrow S3FileSystem reused (baseline)":
                cpu_per_file_ms(args.files, lambda n: pq.write_table(row, f"{BUCKET}/{key('pyarrow', n)}",
                                                                     filesystem=alone, compression="snappy")),
            "Lake.write_parquet": cpu_per_file_ms(args.files, lambda n: lake.write_parquet(key("lake", n), row)),
            "Lake.write_parquet, a session per file (before)": cpu_per_file_ms(args.files, per_file_session),
            "Lake.write_bytes (boto3 put_object)":
                cpu_per_file_ms(args.files, lambda n: lake.write_bytes(f"refined/_records/{n + 1}.json", b"{}")),
        }
        written = len(lake.list_files("refined", recursive=True, hidden=True))
        release_filesystems()
    finally:
        server.terminate()
        server.wait(timeout=30)
    baseline = figures["pyarrow S3FileSystem reused (baseline)"]
    print(f"client CPU per small file, {args.files} files each, moto server in its own process "
          f"({written:,} objects written)")
    for label, ms in figures.items():
        print(f"  {label:<50} {ms:6.2f} ms   x{ms / baseline:4.2f} of the baseline")
    after = figures["Lake.write_parquet"]
    print(f"goal: Lake.write_parquet <= {GOAL_MS} ms: {'met' if after <= GOAL_MS else 'NOT met'} ({after:.2f} ms); "
          f"before/after: x{figures['Lake.write_parquet, a session per file (before)'] / after:.1f}")
    print(f"peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
