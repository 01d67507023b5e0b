"""Zip the notebook's modules (queries and plots) for an Athena Spark session: `sc.addPyFile(s3://.../charts.zip)`.

    python -m charts.package dist/charts.zip
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from storage import Lake, write_file_atomically

PACKAGE_DIR = Path(__file__).resolve().parent
# What the notebook imports: standard library, pandas and matplotlib only (no settings, no catalog).
NOTEBOOK_MODULES = ("__init__.py", "frames.py", "plots.py")


def write_charts_zip(target: Path) -> Path:
    """A zip holding `charts/` with the notebook's modules, importable with zipimport."""
    def zip_modules(_filesystem: object, temp: str) -> None:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in NOTEBOOK_MODULES:
                archive.write(PACKAGE_DIR / name, f"charts/{name}")

    write_file_atomically(Lake.local(target.parent), target.name, zip_modules)
    return target


if __name__ == "__main__":
    print(write_charts_zip(Path(sys.argv[1] if len(sys.argv) > 1 else "dist/charts.zip")))
