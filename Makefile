# Two commands for a newcomer: `make demo` (the whole pipeline, offline) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# Installs take the locks (requirements*.lock: exact versions, hash-checked), never the ranges.
UV_INSTALL := $(UV) pip install --quiet --python $(PY) --require-hashes
LAKE_DIR ?= lake
CHART_DIR ?= out

.PHONY: demo test test-latest lock lint clean-lake chart notebook-package

# The installer first (pip, hash-checked), then the runtime's lock. The project itself is installed
# editable: its packages import from anywhere, and the commands b3-scrape, b3-query and b3-chart
# are on the venv's PATH.
$(VENV)/.runtime: requirements.lock requirements-uv.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-uv.lock
	$(UV_INSTALL) -r requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@

# The local JVM's class archive, built once into the venv: every local Spark start takes a third
# less (b3_quotes/deploy/class_archive.py). When it cannot be built it says why; Spark runs without it.
ARCHIVE := $(VENV)/share/b3-quotes/spark-classes.jsa
$(ARCHIVE): $(VENV)/.runtime
	$(PY) -m b3_quotes.deploy.class_archive

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.lock
	$(UV_INSTALL) -r requirements-dev.lock
	touch $@

demo: $(VENV)/.runtime $(ARCHIVE)
	$(PY) scraper/scraper_upload.py --source sample --lake-dir $(LAKE_DIR)
	$(PY) -m b3_quotes.catalog.query --lake-dir $(LAKE_DIR) --file sql/latest_sessions.sql
	$(PY) -m b3_quotes.charts --lake-dir $(LAKE_DIR) --out-dir $(CHART_DIR) --tickers PETR4,VALE3

# make chart TICKERS=PETR4,VALE3 START=2019-06-03 END=2020-06-09 (each optional; Athena when BUCKET is set)
chart: $(VENV)/.runtime $(ARCHIVE)
	$(PY) -m b3_quotes.charts --lake-dir $(LAKE_DIR) --out-dir $(CHART_DIR) $(if $(TICKERS),--tickers $(TICKERS)) \
		$(if $(START),--start $(START)) $(if $(END),--end $(END))

# The notebook's plotting code for an Athena Spark session (upload it, see README).
notebook-package: $(VENV)/.runtime
	$(PY) -m b3_quotes.charts.package dist/charts.zip

# One test process per core, a test file to each (a file's module fixtures are built once).
test: $(VENV)/.dev $(ARCHIVE)
	$(PY) -m pytest -n auto --dist loadfile --no-loadscope-reorder

# Regenerate every lock from its requirements file (b3_quotes/deploy/locks.py); commit both together.
lock: $(VENV)/.runtime
	$(PY) -m b3_quotes.deploy.locks

# Not part of CI: the suite in a throwaway venv with the newest versions the requirement files
# allow, so drift shows here before a lock moves (docs/testing.md).
LATEST_VENV ?= $(or $(TMPDIR),/tmp)/b3-quotes-test-latest
test-latest: $(VENV)/.runtime
	rm -rf $(LATEST_VENV)
	$(UV) venv --quiet --python $(PYTHON) $(LATEST_VENV)
	$(UV) pip install --quiet --python $(LATEST_VENV)/bin/python --upgrade -r requirements-dev.txt
	$(UV) pip install --quiet --python $(LATEST_VENV)/bin/python --no-deps -e .
	$(LATEST_VENV)/bin/python -m b3_quotes.deploy.class_archive
	$(UV) pip list --quiet --python $(LATEST_VENV)/bin/python | grep -iE '^(boto3|botocore|moto|pandas|pyarrow|pyspark|duckdb|numpy) '
	$(LATEST_VENV)/bin/python -m pytest -n auto --dist loadfile --no-loadscope-reorder

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pyright

clean-lake:
	rm -rf $(LAKE_DIR)

# Proves a real deployment end to end, then removes it (opt-in: B3_AWS_CHECK=1, credentials).
.PHONY: aws-check
aws-check: $(VENV)/.dev
	$(PY) -m b3_quotes.deploy.aws_check
