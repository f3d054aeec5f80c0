# The one entry point: `make run` serves the API with embedded defaults, `make test` runs
# every check. Both install what is missing first.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install web test-browser run runtimes runtimes-default migrate test check lint format typecheck pytest \
	conformance bench-languages test-faults test-contract bench soak lock clean

$(STAMP): pyproject.toml constraints.txt scripts/bootstrap.sh tests/support/node/package-lock.json
	VENV=$(VENV) bash scripts/bootstrap.sh
	@touch $(STAMP)

install: $(STAMP)

# The web app (web/): built by Vite into web/dist, which the API serves at /. Rebuilt only
# when its sources or lock file changed (the stamp); `npm ci` only when the lock did.
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html \
	web/vite.config.ts web/tsconfig.json web/package.json
WEB_STAMP := web/.build-stamp

web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

$(WEB_STAMP): web/node_modules/.package-lock.json $(WEB_SOURCES)
	cd web && npm run build
	@touch $@

web: $(WEB_STAMP)

# The small default set of language runtimes (python, javascript, c, cpp, bash): quick to
# install, so a first `make run` stays quick. Without root it prints the apt-get command and
# the server starts with whatever is installed.
runtimes-default: install
	-$(BIN)/coderoom runtimes install --defaults

# Every language runtime coderoom knows (apt as root; see docs/LANGUAGES.md).
runtimes: install
	$(BIN)/coderoom runtimes install --all

# Listens on 127.0.0.1 unless HOST is set (in the environment or .env): see README.
run: runtimes-default web
	$(BIN)/coderoom migrate
	$(BIN)/coderoom serve

migrate: install
	$(BIN)/coderoom migrate

# Everything CI runs: lint, types, import contracts, the suite, the API contract (OpenAPI
# fuzzed by schemathesis, docs/API.md executed), the browser tests, then the fault suite.
test: check pytest test-contract test-browser test-faults

check: lint typecheck

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -m "not faults and not browser and not contract"

# The API against a real `coderoom serve`: schemathesis with every check (fixed seed and
# budget, about a minute) and every ```sh block of docs/API.md run in order.
test-contract: install
	$(BIN)/pytest -m contract

# The web app end to end: headless Debian chromium driven by Playwright against a real
# `coderoom serve` (tests/browser).
test-browser: install web
	$(BIN)/pytest -m browser

# The standing fault suite: a deployment of real processes on private PostgreSQL and Redis,
# under load, with one fault at a time; what it measured goes to .fault-report.jsonl.
test-faults: install
	rm -f .fault-report.jsonl
	CODEROOM_FAULT_REPORT=$(CURDIR)/.fault-report.jsonl $(BIN)/pytest -m faults

bench: install
	$(BIN)/python bench/e2e.py

soak: install
	$(BIN)/python bench/soak.py

# Only the per-language conformance suite (part of `make test` too).
conformance: install
	$(BIN)/pytest -m conformance

bench-languages: install
	$(BIN)/python bench/languages.py

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-resolve the pinned versions after changing pyproject.toml's dependency ranges.
lock: install
	$(BIN)/pip freeze --exclude-editable | grep -v "^pip==" > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
