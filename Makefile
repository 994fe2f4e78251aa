# The ledger's everyday commands. `make run` and `make test` are all a new user needs.
#
# The virtual environment is created on first use and synced to uv.lock (every runtime,
# ops and dev package at its locked version and hash) only when the lock or pyproject.toml
# changes (a stamp file remembers the last sync), so every target is cheap to repeat.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PYTHON := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed
PACKAGES := shared_kernel command_service query_service projector schema bench ops tests
# uv installs the lock; pip only bootstraps uv itself, at the version the lock names.
UV_VERSION = $(shell python3 -c 'import tomllib; print(next(p["version"] for p in tomllib.load(open("uv.lock", "rb"))["package"] if p["name"] == "uv"))')

# Every step below runs with `.env` (ENV_FILE) loaded by python-dotenv's `dotenv run
# --no-override`: a variable already in the environment wins, as in pydantic-settings. No
# URL defaults are exported here, which would hide the file's values; the code has them.
ENV_FILE ?= .env
RUN := $(if $(wildcard $(ENV_FILE)),$(VENV)/bin/dotenv -f $(ENV_FILE) run --no-override --)
export ENV_FILE
export PYTHONUNBUFFERED := 1
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# supervisord's pid file and control socket (ops/supervisord.conf); one per running stack.
export LEDGER_RUN_DIR ?= $(CURDIR)/.run
SUPERVISOR_CONF := ops/supervisord.conf

PYTEST_TIMEOUT ?= 300
PYTEST_PATHS ?= tests
PYTEST_ARGS ?=

.PHONY: help install lock services migrate run ctl test lint typecheck pytest bench schemas status clean distclean
.PHONY: replay republish
.PHONY: rebuild dead-letters
.PHONY: bench-tracing bench-scale
.PHONY: soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(PYTHON):
	python3 -m venv $(VENV)

$(STAMP): uv.lock pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --locked --all-extras
	touch $@

install: $(STAMP) ## create .venv with exactly the versions in uv.lock (runtime, ops and dev)

lock: | $(PYTHON) ## upgrade uv.lock to the newest versions pyproject.toml allows, from PyPI
	@[ -x $(UV) ] || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) lock --upgrade

services: install ## check PostgreSQL and Redis answer (start local ones when they do not)
	@ops/services.sh ensure

migrate: install services ## apply schema/sql to DATABASE_URL (idempotent)
	$(RUN) $(PYTHON) -m schema.migrate

# supervisord in the foreground restarts a process that dies; Ctrl-C stops them all and it
# exits 0 (ops/supervisord.conf).
run: migrate ## start and supervise command service, transfer saga, relay, projector, query service (Ctrl-C stops all)
	@mkdir -p $(LEDGER_RUN_DIR)
	$(RUN) $(VENV)/bin/supervisord -c $(SUPERVISOR_CONF)

ctl: install ## supervisorctl of a running `make run`, e.g. make ctl ARGS='restart projector' (default: status)
	@$(VENV)/bin/supervisorctl -c $(SUPERVISOR_CONF) $(or $(ARGS),status)

test: lint typecheck pytest ## lint, typecheck, then the whole test suite on real PostgreSQL and Redis

pytest: install services ## only the test suite (PYTEST_PATHS=tests/schema PYTEST_ARGS='-k name')
	@status=0; $(RUN) $(PYTHON) -m pytest $(PYTEST_PATHS) -q --timeout=$(PYTEST_TIMEOUT) $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make: pytest collected no tests (exit 5), which counts as a failure" >&2; fi; \
	exit $$status

lint: install ## ruff
	$(VENV)/bin/ruff check .

typecheck: install ## mypy (strict)
	$(VENV)/bin/mypy $(PACKAGES)

# The chaos suite's fault schedule SOAK_ROUNDS times over, on its own PostgreSQL and Redis.
SOAK_ROUNDS ?= 5
soak: install ## the chaos suite, every fault SOAK_ROUNDS (5) times over, under load
	CHAOS_ROUNDS=$(SOAK_ROUNDS) $(PYTHON) -m pytest tests/chaos/test_chaos.py -q -s \
		--timeout=$$(( $(SOAK_ROUNDS) * 300 + 300 )) $(PYTEST_ARGS)

bench: install ## benchmark the running stack (start it with `make run` first)
	$(RUN) $(PYTHON) -m bench

bench-scale: install services ## the bench's figures at 100k and at 1M events side by side (own stack and scratch database; long)
	$(RUN) $(PYTHON) -m bench.scale

bench-tracing: install services ## tracing on vs off: command throughput and latency (own scratch database)
	$(RUN) $(PYTHON) -m bench.tracing_overhead $(ARGS)

# `make replay STREAM=<id> [VERSION=n] [FORMAT=json]` reads the event store; with AT=<position>
# it shows the stream's read-model rows as of that position; `make replay FROM=<position>` is
# `make republish`. Exit status 1: snapshot + tail differs from the full fold; 2: bad or unknown id.
replay: install ## STREAM=<id> [VERSION=n] [FORMAT=json]: events, states, snapshot check; AT=<position>: read models then
ifneq ($(strip $(FROM)),)
	@$(RUN) $(PYTHON) -m command_service.relay.republish --from $(FROM)$(if $(INTO), --stream $(INTO))$(if $(KEEP_GROUPS), --keep-groups)
else ifneq ($(strip $(AT)),)
	@$(RUN) $(PYTHON) -m projector.time_travel $(STREAM) --at $(AT)$(if $(FORMAT), --format $(FORMAT))
else
	@$(RUN) $(PYTHON) -m command_service.replay $(STREAM)$(if $(VERSION), --version $(VERSION))$(if $(FORMAT), --format $(FORMAT))
endif

republish: install ## FROM=<position> [INTO=<key>] [KEEP_GROUPS=1]: re-publish the log to the Redis Stream
	@$(RUN) $(PYTHON) -m command_service.relay.republish --from $(FROM)$(if $(INTO), --stream $(INTO))$(if $(KEEP_GROUPS), --keep-groups)

# `make rebuild PROJECTION=<name>` runs `python -m projector.rebuild <name>` (progress bar,
# verify, swap); ARGS=--rollback swaps back, ARGS=--drop-old drops the replaced tables,
# ARGS=--status shows every projection's last rebuild. Exit 1: refused or failed; 3: one runs.
rebuild: install ## PROJECTION=<name> [ARGS=--rollback|--drop-old]: rebuild a read model beside the live one, verify, swap
	@if [ -z "$(strip $(PROJECTION))$(filter --status,$(ARGS))" ]; then \
		echo "make rebuild: name the read model, e.g. make rebuild PROJECTION=account_balances" >&2; exit 2; fi
	@$(RUN) $(PYTHON) -m projector.rebuild $(PROJECTION) $(ARGS)

# `make dead-letters` runs `python -m projector.dead_letters`: the dead-letter stream and the
# streams each projection holds back; REPLAY=all|<position> replays them after a fix.
# Exit 1: some streams still fail.
dead-letters: install ## [REPLAY=all|<position>] [FORMAT=json]: parked events and blocked streams; replay them after a fix
	@$(RUN) $(PYTHON) -m projector.dead_letters$(if $(REPLAY), --replay $(REPLAY))$(if $(FORMAT), --format $(FORMAT))

schemas: install ## regenerate schema/events/*.json from shared_kernel.language.events
	$(PYTHON) -m schema.generate_event_schemas

status: install ## PostgreSQL, Redis, each process's /health/ready, the head, each projection's checkpoint and lag
	@ops/services.sh check && echo "PostgreSQL and Redis answer"
	@$(RUN) $(PYTHON) -m ops.health

clean: ## remove caches and build output (keeps .venv and bench-reports)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean ## also remove .venv
	rm -rf $(VENV)
