# Two commands matter: `make run` and `make test`. Everything else is a step they use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
UV        := $(VENV)/tools/bin/uv
APP_PY    := $(VENV)/app/bin/python
BOT_PY    := $(VENV)/bot/bin/python
RASA      := $(VENV)/bot/bin/rasa
MODEL     := models/current.tar.gz
TRAIN_DEPS := config.yml domain.yml $(shell find data bot -type f \( -name '*.yml' -o -name '*.py' -o -name '*.txt' \) 2>/dev/null)
PG_URL    ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export PYTHONPATH := $(CURDIR)
export RASA_TELEMETRY_ENABLED := false
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: help envs browser run test test-faults lint typecheck validate unit e2e test-calendar test-postgres test-fuzz test-static test-bot test-app-sqlite test-e2e-sqlite test-app-postgres rasa-test train bench soak profile eod campaign import eval-nlu compare-nlu lock clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(UV):
	@python3 -m venv $(VENV)/tools && $(VENV)/tools/bin/pip install -q uv==0.13.8

$(VENV)/bot/.built: requirements/bot.lock | $(UV)
	@echo "== building the Rasa environment (Python 3.10) =="
	@rm -rf $(VENV)/bot && $(UV) venv -q --python "$$(scripts/find_python.sh 3.10)" $(VENV)/bot
	@$(UV) pip sync -q --python $(BOT_PY) requirements/bot.lock
	@touch $@

$(VENV)/app/.built: requirements/app.lock requirements/dev.lock | $(UV)
	@echo "== building the app environment (Python 3.11) =="
	@rm -rf $(VENV)/app && $(UV) venv -q --python "$$(scripts/find_python.sh 3.11)" $(VENV)/app
	@$(UV) pip sync -q --python $(APP_PY) requirements/app.lock requirements/dev.lock
	@touch $@

envs: $(VENV)/bot/.built $(VENV)/app/.built ## build both environments from the lock files

lock: | $(UV) ## re-resolve the lock files from requirements/*.in
	$(UV) pip compile -q requirements/bot.in --python-version 3.10 --python-platform x86_64-manylinux_2_28 -o requirements/bot.lock
	$(UV) pip compile -q requirements/app.in --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements/app.lock
	cd requirements && ../$(UV) pip compile -q dev.in --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o dev.lock

$(MODEL): $(TRAIN_DEPS) $(VENV)/bot/.built
	@echo "== training the Rasa model (progress in var/train.log) =="
	@mkdir -p var models
	@start=$$(date +%s); $(RASA) train --fixed-model-name current --out models > var/train.log 2>&1 \
	  || { tail -30 var/train.log; exit 1; }; echo "   trained in $$(( $$(date +%s) - start ))s"

train: $(MODEL) ## train the Rasa model into models/ (skipped when data and config are unchanged)

run: envs train ## set up what is missing, then start the whole stack (Ctrl-C stops it)
	@$(APP_PY) -m scripts.stack

lint: envs ## ruff lint and format check; the layering contracts (pyproject.toml, import-linter)
	$(VENV)/app/bin/ruff check .
	$(VENV)/app/bin/ruff format --check .
	$(VENV)/app/bin/lint-imports --no-logo

BOT_SIDE_BENCH := bench/nlu_eval.py bench/nlu_spacy.py bench/nlu_compare.py bench/tracker_store.py bench/contact_phrases_compare.py
typecheck: envs ## mypy on every package but tests/: the app's against the app environment, bot/ and Rasa's benchmarks against Rasa's
	$(VENV)/app/bin/mypy ledger api jobs actions settings scripts $(filter-out $(BOT_SIDE_BENCH),$(wildcard bench/*.py))
	$(VENV)/app/bin/mypy --python-executable $(BOT_PY) --python-version 3.10 bot $(BOT_SIDE_BENCH)

validate: var/validate.ok ## rasa data validate (skipped when data, domain and config are unchanged)

var/validate.ok: $(TRAIN_DEPS) $(VENV)/bot/.built
	@mkdir -p var
	@$(RASA) data validate --max-history 5 > var/validate.log 2>&1 || { cat var/validate.log; exit 1; }
	@echo "rasa data validate: ok"; touch $@

rasa-test: var/rasa-test.ok ## Rasa's own test stories (tests/rasa/), skipped when the model and stories are unchanged

var/rasa-test.ok: $(MODEL) tests/rasa/test_stories.yml
	@$(RASA) test core --stories tests/rasa/test_stories.yml -m $(MODEL) --out var/rasa-test \
	  --fail-on-prediction-errors > var/rasa-test.log 2>&1 \
	  || { grep -E "Correct|Accuracy|failed" var/rasa-test.log; cat var/rasa-test/failed_test_stories.yml; exit 1; }
	@echo "rasa test stories: $$(grep -m1 -oE 'Correct: +[0-9]+ / [0-9]+' var/rasa-test.log)"; touch $@

unit: envs ## unit and integration tests (no Rasa processes)
	$(BOT_PY) -m pytest -q --noconftest -p no:cacheprovider tests/bot
	$(APP_PY) -m pytest -q tests --ignore=tests/bot -m "not e2e"

e2e: envs train ## end-to-end: real Rasa, action server and gateway
	$(APP_PY) -m pytest -q tests/e2e -m e2e

test-calendar: envs train ## the date- and hour-sensitive tests, unit and end to end, at each instant of tests/calendar.py
	@$(BOT_PY) -m pytest -q --noconftest -p no:cacheprovider -m calendar tests/bot
	@for at in $$($(APP_PY) -c 'from tests.calendar import CALENDAR; print(*CALENDAR.values())'); do \
	  echo "== the clock at $$at (Asia/Shanghai) =="; \
	  TEST_CLOCK=$$at $(APP_PY) -m pytest -q -m calendar tests --ignore=tests/bot || exit 1; \
	done

test-postgres: envs train browser ## the whole app suite against PostgreSQL ($$PG_URL; .ci/run): unit, end-to-end, browser
	DATABASE_URL=$(PG_URL) $(APP_PY) -m pytest -q tests --ignore=tests/bot -m "not fuzz"

test-faults: envs train ## kill -9 / SIGSTOP each part and cut PostgreSQL under live conversations (3-5 min)
	RUN_FAULTS=1 PG_URL=$(PG_URL) $(APP_PY) -m pytest -q tests/faults

browser: ## Debian's Chromium and a CJK font for the browser tests (apt; needs root)
	@if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "cjk"; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "Install Debian's chromium and fonts-noto-cjk (apt-get install chromium fonts-noto-cjk)"; exit 1; fi; \
	mkdir -p var; echo "== installing chromium and fonts-noto-cjk (apt) =="; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk > var/apt.log 2>&1 \
	  || { tail -20 var/apt.log; exit 1; }

# `make test` runs its steps side by side (make -j3): training beside the static checks and the
# tests that need no model; the end-to-end pass and Rasa's stories once the model is there. Each
# step's lines carry its name; var/test/<step>.log keeps each step's whole output.
TEST_STEPS := test-e2e-sqlite rasa-test test-static test-app-sqlite test-app-postgres test-bot validate
test: ## lint, types, rasa validate and stories, unit, e2e and browser on SQLite; the database-dependent tests on PostgreSQL when it answers
	@start=$$(date +%s); $(MAKE) --no-print-directory -j2 envs browser && $(MAKE) --no-print-directory -j3 $(TEST_STEPS) \
	  && echo "== make test passed in $$(( $$(date +%s) - start )) s (steps in var/test/) ==" \
	  || { echo "== make test FAILED: grep FAILED var/test/*.log =="; exit 1; }

test-static: envs
	@scripts/step.sh static $(MAKE) --no-print-directory lint typecheck

test-bot: envs
	@scripts/step.sh bot $(BOT_PY) -m pytest -q --noconftest -p no:cacheprovider tests/bot

test-app-sqlite: envs ## the app suite without the real stack, on SQLite
	@scripts/step.sh app-sqlite $(APP_PY) -m pytest -q -p no:cacheprovider tests --ignore=tests/bot -m "not e2e and not browser and not fuzz"

test-e2e-sqlite: envs train browser ## end-to-end, conversations and browser tests: the real stack once, on SQLite
	@scripts/step.sh e2e-sqlite $(APP_PY) -m pytest -q -p no:cacheprovider tests --ignore=tests/bot -m "(e2e or browser) and not fuzz"

# What differs by database: the ledger's SQL and the gateway's transactions (tests/ledger,
# tests/api, tests/scripts), only the tests that touch the database (TEST_SCOPE=database,
# tests/conftest.py). `make test-postgres` runs everything against PostgreSQL; .ci/run does.
test-app-postgres: envs
	@if $(APP_PY) -m scripts.pg_ready "$(PG_URL)"; then \
	  DATABASE_URL=$(PG_URL) TEST_SCOPE=database scripts/step.sh app-postgres $(APP_PY) -m pytest -q -p no:cacheprovider \
	    tests/ledger tests/api tests/scripts -m "not e2e and not browser and not fuzz"; \
	else echo "[app-postgres] PostgreSQL not reachable at $(PG_URL): skipped"; fi

test-fuzz: envs ## schemathesis against the gateway's own /openapi.json (about 40-70 s; .ci/run)
	$(APP_PY) -m pytest -q tests/api/test_schema_fuzz.py -m fuzz

bench: envs train ## turns (gateway vs bare Rasa), campaign, end-of-day, 1 vs 2 Rasa servers, tracker store, the production shape, soak -> bench/results/*.json
	$(APP_PY) -m bench.run
	@echo "== tracker store: Rasa's SQL store against ours, in-process =="
	@$(BOT_PY) -m bench.tracker_store 2>> var/bench-tracker.log
	@echo "== conversations on SQLite against PostgreSQL + Redis, bare Rasa beside each (BENCH_LEVELS) =="
	@if $(APP_PY) -m scripts.pg_ready "$(PG_URL)"; then $(APP_PY) -m bench.shape; else echo "PostgreSQL not reachable: skipped"; fi
	@echo "== soak: $${SOAK_MINUTES:-30} minutes of mixed conversations and a campaign =="
	$(APP_PY) -m bench.soak

soak: envs train ## mixed conversations + a campaign at a steady rate, SOAK_MINUTES (30): errors, p99, memory per 5 min
	$(APP_PY) -m bench.soak

eod: envs ## end-of-day: plans and promises brought up to today, broken-plan notices (idempotent)
	$(APP_PY) -m scripts.eod $(ARGS)

campaign: envs ## create and send a campaign: make campaign ARGS="--name 提醒 --buckets M1,M2"
	$(APP_PY) -m scripts.campaign $(ARGS)

import: envs ## import a book of accounts, all or nothing: make import ARGS="book.jsonl" (or .csv)
	$(APP_PY) -m scripts.import_accounts $(ARGS)

profile: envs train ## py-spy on each process under 10 concurrent conversations -> var/profile/
	$(APP_PY) -m bench.profile

eval-nlu: envs train ## NLU on the held-out file and by 5-fold cross-validation -> bench/results/nlu.json
	@$(BOT_PY) -m bench.nlu_eval 2> var/eval-nlu.log

compare-nlu: envs ## pipelines in bench/nlu_configs/ and rules vs spaCy for entities -> bench/results/nlu_*.json
	@$(BOT_PY) -m bench.nlu_compare $(PIPELINES) 2> var/compare-nlu.log
	@$(BOT_PY) -m bench.nlu_spacy 2>> var/compare-nlu.log

clean: ## remove environments, models and local data
	rm -rf $(VENV) models var .pytest_cache .mypy_cache .ruff_cache
