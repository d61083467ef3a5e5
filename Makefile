# make run   - set up and start the dashboard (embedded sandbox when no HubSpot credentials)
# make test  - set up everything the tests need (packages, Debian chromium and postgresql), lint,
#              run the tests (they start their own throwaway PostgreSQL cluster: tests/pgcluster.py)
# make bench - benchmarks against the sandbox on loopback (see README, Performance)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The suite runs in PYTEST_WORKERS processes (pytest-xdist; 0 runs it in this one). Each worker
# starts its own sandboxes and PostgreSQL cluster. Three on two cores: the suite mostly waits
# (sandbox latency, polls, browsers; 10.5 CPU minutes in a 17-minute run with 2 workers), and
# 3 workers ran it in 13 and 14 minutes, green both times; with 4 the browser and sync tests
# starved each other, and runs failed on waits that a starved Streamlit or walker could not
# meet. PYTEST_ARGS adds to it (a directory, -k, ...).
PYTEST_WORKERS ?= 3
PYTEST_ARGS ?=

.PHONY: run test lint bench chromium postgres node-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

chromium:
	@if [ -x /usr/bin/chromium ]; then :; else \
		echo "Installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	fi

# Pipedrive's official Node.js client for the Pipedrive sandbox's contract tests (pinned in its package-lock.json).
PD_NODE := tests/sandbox_pipedrive/node
$(PD_NODE)/node_modules/.package-lock.json: $(PD_NODE)/package-lock.json
	npm ci --prefix $(PD_NODE) --no-audit --no-fund --silent

node-deps: $(PD_NODE)/node_modules/.package-lock.json

# The tests run initdb/pg_ctl from /usr/lib/postgresql/<version>/bin; the package's own
# cluster is not used (and may be stopped).
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else \
		echo "Installing Debian's postgresql for the PostgreSQL store tests"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi

run: $(VENV)/.runtime
	$(BIN)/streamlit run app.py

test: lint chromium postgres node-deps
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist load --durations=25 $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy --strict crm

bench: $(VENV)/.dev chromium
	$(BIN)/python -m crm.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
