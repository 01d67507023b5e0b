"""Parse throughput of a yearly-sized COTAHIST file: the b3 source's parser vs naive pandas.read_fwf.

    .venv/bin/python bench/bench_cotahist.py [--sessions 250] [--baseline-sessions 20]

The yearly file is built from the real 2021-06-25 daily file repeated with shifted dates.
The baseline parses the same layout with pandas.read_fwf (string columns, then the same
price arithmetic) on the first sessions only, since it is much slower; both figures are
records per second and MB per second, so they compare directly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import time
import zipfile
from pathlib import Path

import pandas as pd

from scraper.sources.b3_cotahist import QUOTE_FIELDS, parse_cotahist

DAILY = Path(__file__).resolve().parent.parent / "data" / "b3" / "COTAHIST_D25062021.ZIP"


def yearly_file(sessions: int) -> bytes:
    with zipfile.ZipFile(DAILY) as archive:
        daily = archive.read(archive.namelist()[0])
    lines = daily.split(b"\r\n")
    header, trailer = lines[0], [ln for ln in lines if ln.startswith(b"99")][0]
    body = [ln for ln in lines if ln.startswith(b"01")]
    day, out = dt.date(2021, 1, 4), [header]
    for _ in range(sessions):
        stamp = day.strftime("%Y%m%d").encode()
        out.extend(ln[:2] + stamp + ln[10:] for ln in body)
        day += dt.timedelta(days=1 if day.weekday() < 4 else 3)
    total = str(len(out) + 1).zfill(11).encode()
    out.append(trailer[:31] + total + trailer[42:])
    return b"\r\n".join(out) + b"\r\n"


def naive_read_fwf(data: bytes) -> pd.DataFrame:
    colspecs = list(QUOTE_FIELDS.values())
    frame = pd.read_fwf(io.BytesIO(data), colspecs=[(0, 2), *colspecs], names=["TIPREG", *QUOTE_FIELDS],
                        dtype=str, encoding="latin-1", header=None)
    frame = frame[frame["TIPREG"] == "01"]
    factor = frame["FATCOT"].astype(int)
    for column in ("PREABE", "PREMAX", "PREMIN", "PREULT"):
        frame[column] = frame[column].astype(int) / 100 / factor
    frame["DATA"] = pd.to_datetime(frame["DATA"], format="%Y%m%d")
    return frame


def measure(label: str, fn, data: bytes, records: int) -> float:
    began = time.perf_counter()
    result = fn(data)
    seconds = time.perf_counter() - began
    assert len(result) == records, (label, len(result), records)
    rate = records / seconds
    print(f"{label:<28} {records:>10,} records  {len(data) / 1e6:8.1f} MB  {seconds:7.2f} s  "
          f"{rate:>12,.0f} records/s  {len(data) / 1e6 / seconds:7.1f} MB/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--baseline-sessions", type=int, default=20)
    args = parser.parse_args()
    yearly = yearly_file(args.sessions)
    sample = yearly_file(args.baseline_sessions)
    per_session = 7518
    print(f"COTAHIST parse benchmark: {args.sessions} sessions built from the real 2021-06-25 file")
    ours = measure("b3_cotahist.parse_cotahist", lambda d: parse_cotahist(d, "bench"), yearly, per_session * args.sessions)
    base = measure("pandas.read_fwf (baseline)", naive_read_fwf, sample, per_session * args.baseline_sessions)
    print(f"speed-up: {ours / base:.1f}x records/s")


if __name__ == "__main__":
    main()
