# Everything goes through .venv, which the first target that needs it creates and fills.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: install run demo test unit integration e2e lint validate build bench clean

install: $(STAMP)

# uv installs the same pinned set in seconds; plain pip is the fallback if uv cannot be had.
$(STAMP): pyproject.toml layers/conveyor/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	( $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8 \
	  && $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]' ) \
	|| $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Start the whole stack locally: API on http://127.0.0.1:3000, every queue's worker, the schedules.
run: $(STAMP)
	$(BIN)/conveyor-local $(ARGS)

## Against a running `make run` (another terminal): enqueue sample jobs and watch them settle.
demo: $(STAMP)
	$(BIN)/conveyor demo $(ARGS)

## The full suite: unit, integration (moto) and end-to-end (local stack over HTTP).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

e2e: $(STAMP)
	$(BIN)/python -m pytest -q tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check layers functions local tests bench

validate: $(STAMP)
	$(BIN)/sam validate --lint

build: $(STAMP)
	PYENV_VERSION=$${PYENV_VERSION:-3.11.7:3.13.0} $(BIN)/sam build

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .local
