# Every target installs what it needs first; a fresh machine needs only Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test demo chaos bench lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## web + payments API + worker + beat on http://127.0.0.1:$${PORT:-8000}
	$(BIN)/python -m devstack run

test: $(STAMP)  ## the whole suite; DATABASE_URL / REDIS_URL select PostgreSQL / a Redis
	$(BIN)/python -m devstack test

demo: $(STAMP)  ## DEMO_ORDERS recharges (default 200) through the real stack, with faults
	$(BIN)/python -m devstack demo

chaos: $(STAMP)  ## every fault scenario on the real stack, 500 orders each; a table; fails on loss
	$(BIN)/python -m chaos

bench: $(STAMP)  ## throughput, latency, scan cost, memory vs baselines; bench/results/<UTC>.json|md|png
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var $(VENV)
