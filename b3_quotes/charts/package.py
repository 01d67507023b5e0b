"""Zip the notebook's modules (queries and plots) for an Athena Spark session: `sc.addPyFile(s3://.../charts.zip)`.

    python -m b3_quotes.charts.package dist/charts.zip
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from b3_quotes.storage import Lake, write_file_atomically

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the notebook imports: standard library, pandas and matplotlib only (no settings, no catalog),
# and the contract's tables (standard library) for the SQL of the adjusted prices' view.
NOTEBOOK_MODULES = ("b3_quotes/__init__.py", "b3_quotes/charts/__init__.py", "b3_quotes/charts/frames.py",
                    "b3_quotes/charts/plots.py", "b3_quotes/contract/__init__.py", "b3_quotes/contract/tables.py")


def write_charts_zip(target: Path) -> Path:
    """A zip holding the notebook's modules (NOTEBOOK_MODULES), importable with zipimport."""
    def zip_modules(_filesystem: object, temp: str) -> None:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in NOTEBOOK_MODULES:
                archive.write(REPO_ROOT / name, name)

    write_file_atomically(Lake.local(target.parent), target.name, zip_modules)
    return target


if __name__ == "__main__":
    print(write_charts_zip(Path(sys.argv[1] if len(sys.argv) > 1 else "dist/charts.zip")))
