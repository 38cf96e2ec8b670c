# Everything goes through .venv, which the first target that needs it creates and fills.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
RUNTIME := $(shell sed -n 's/^ *Runtime: *//p' template.yaml | head -1)

.PHONY: fuzz install browser run invoke demo test unit integration e2e format lint checkov typecheck complexity check validate build bench clean

install: $(STAMP)

# uv installs the same pinned set in seconds; plain pip is the fallback if uv cannot be had.
$(STAMP): pyproject.toml layers/conveyor/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	( $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8 \
	  && $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]' ) \
	|| $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The dashboard's browser tests drive Chromium through Playwright. Playwright's own browser builds cannot be
# downloaded everywhere, so the system Chromium is used: Debian's package, installed here when missing (as root on
# Debian), else Playwright's download (tests/e2e/dashboard_browser.py picks whichever is there).
CHROMIUM ?= /usr/bin/chromium
browser: $(STAMP)
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else $(BIN)/playwright install chromium; fi

## Start the whole stack locally: API on http://127.0.0.1:3000, every queue's worker, the schedules.
run: $(STAMP)
	$(BIN)/conveyor-local $(ARGS)

## Against a running `make run ARGS="--timeout-scale 3"` (another terminal): Schemathesis with every check and its
## stateful phase (schemathesis.toml); e.g. `make fuzz ARGS="--max-examples 100"`. Not in `make test` (an hour).
STACK_JSON ?= .local/stack.json
fuzz: $(STAMP)
	CONVEYOR_API_KEY=$$($(BIN)/python -c "import json; print(json.load(open('$(STACK_JSON)'))['api_key'])") \
	$(BIN)/schemathesis run $(ARGS) \
	  "$$($(BIN)/python -c "import json; print(json.load(open('$(STACK_JSON)'))['url'])")/v1/openapi.json"

## One function, one event, no Docker: make invoke FN=ApiFunction EVENT=events/api-get-job.json [ARGS=--seed].
## Against the running `make run` if there is one, else an emulator of its own; exit 1 if the handler raised.
invoke: $(STAMP)
	$(BIN)/conveyor-local invoke $(FN) $(if $(EVENT),-e $(EVENT)) $(ARGS)

## Against a running `make run` (another terminal): enqueue sample jobs and watch them settle.
demo: $(STAMP)
	$(BIN)/conveyor demo $(ARGS)

## The full suite: unit, integration (moto) and end-to-end (local stack over HTTP).
# One full suite at a time per machine (flock): several checkouts testing at once on 2 cores starve each other's
# end-to-end stacks. CI runs alone, so there it never waits.
test: $(STAMP) browser
	flock /tmp/conveyor-make-test.lock $(BIN)/python -m pytest -n 2 --dist loadgroup -q

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

e2e: $(STAMP) browser
	$(BIN)/python -m pytest -q tests/e2e

CODE := layers functions local tests bench

## ruff's formatting, applied.
format: $(STAMP)
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix-only --select I $(CODE)

## ruff's rules, the formatting (checked, not applied), the layering contract ([tool.importlinter]) and checkov.
# `validate` too: cfn-lint finds what CloudFormation would refuse at deploy time (e.g. a circular dependency).
lint: $(STAMP) checkov validate
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/lint-imports

## mypy with the pydantic plugin over the layer, the handlers and the local stack ([tool.mypy]): zero errors.
typecheck: $(STAMP)
	$(BIN)/mypy

## No function more complex than rank C (cyclomatic complexity <= 20) in the layer, the handlers or the local stack.
complexity: $(STAMP)
	$(BIN)/radon cc --min C --show-complexity layers functions local
	$(BIN)/xenon --max-absolute C layers functions local

## Everything CI checks: lint, typecheck, complexity, then the full test suite.
check: lint typecheck complexity test

# checkov (IaC security scan) over template.yaml; every skip is justified next to its resource (Metadata.checkov).
# It lives in its own virtual environment: its pins (boto3 among them) conflict with the project's.
CHECKOV_VERSION := 3.3.30
CHECKOV := $(VENV)/checkov/bin/checkov
checkov: $(CHECKOV)
	$(CHECKOV) --file template.yaml --framework cloudformation --quiet --compact --skip-download

$(CHECKOV): $(STAMP)
	test -x $(VENV)/checkov/bin/python || $(PYTHON) -m venv $(VENV)/checkov
	$(BIN)/uv pip install --quiet --python $(VENV)/checkov/bin/python checkov==$(CHECKOV_VERSION) \
	|| $(VENV)/checkov/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $(CHECKOV)

validate: $(STAMP)
	$(BIN)/sam validate --lint

# sam build ships no bytecode, and Lambda's code is read-only: every cold start would compile each imported module
# from source. So the build compiles it, with unchecked-hash .pyc (valid whatever packaging does to the mtimes).
build: $(STAMP)
	PYENV_VERSION=$${PYENV_VERSION:-3.11.7:3.13.0} $(BIN)/sam build
	PYENV_VERSION=$${PYENV_VERSION:-3.11.7:3.13.0} $(RUNTIME) -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build

## Cold start, AWS requests and cost per job, API overhead, local throughput -> bench/results.md (a few minutes).
bench: $(STAMP)
	PYENV_VERSION=$${PYENV_VERSION:-3.11.7:3.13.0} $(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .local .bench
