# Two commands for a newcomer: `make demo` (the whole pipeline, offline) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LAKE_DIR ?= lake
CHART_DIR ?= out

.PHONY: demo test lint clean-lake chart notebook-package

# The project itself is installed editable: its packages import from anywhere, and the
# commands b3-scrape, b3-query and b3-chart are on the venv's PATH.
$(VENV)/.runtime: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# The local JVM's class archive, built once into the venv: every local Spark start takes a third
# less (deploy/class_archive.py). When it cannot be built it says why; Spark runs without it.
ARCHIVE := $(VENV)/share/b3-quotes/spark-classes.jsa
$(ARCHIVE): $(VENV)/.runtime
	$(PY) -m deploy.class_archive

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

demo: $(VENV)/.runtime $(ARCHIVE)
	$(PY) scraper/scraper_upload.py --source sample --lake-dir $(LAKE_DIR)
	$(PY) -m catalog.query --lake-dir $(LAKE_DIR) --file sql/latest_sessions.sql
	$(PY) -m charts --lake-dir $(LAKE_DIR) --out-dir $(CHART_DIR) --tickers PETR4,VALE3

# make chart TICKERS=PETR4,VALE3 START=2019-06-03 END=2020-06-09 (each optional; Athena when BUCKET is set)
chart: $(VENV)/.runtime $(ARCHIVE)
	$(PY) -m charts --lake-dir $(LAKE_DIR) --out-dir $(CHART_DIR) $(if $(TICKERS),--tickers $(TICKERS)) \
		$(if $(START),--start $(START)) $(if $(END),--end $(END))

# The notebook's plotting code for an Athena Spark session (upload it, see README).
notebook-package: $(VENV)/.runtime
	$(PY) -m charts.package dist/charts.zip

# One test process per core, a test file to each (a file's module fixtures are built once).
test: $(VENV)/.dev $(ARCHIVE)
	$(PY) -m pytest -n auto --dist loadfile --no-loadscope-reorder

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pyright

clean-lake:
	rm -rf $(LAKE_DIR)

# Proves a real deployment end to end, then removes it (opt-in: B3_AWS_CHECK=1, credentials).
.PHONY: aws-check
aws-check: $(VENV)/.dev
	$(PY) -m deploy.aws_check
