# ClientDesk — `make run` serves it; `make test` is the everyday run, `make test-all` everything.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
# Only this machine can connect unless told otherwise (ADDRESS=0.0.0.0 behind a TLS proxy).
ADDRESS ?= 127.0.0.1
CLIENTS ?= 300
# `make run` serves the demo practice; set CLIENTDESK_DEMO=0 (and a cookie key) for real use.
export CLIENTDESK_DEMO ?= 1

.PHONY: run test test-all venv migrate seed lint format bench clean-data

# Two layers: the run-time packages (requirements.txt, all a practice's server needs) and the
# test and development tools on top (requirements-dev.txt: pytest, Playwright, ruff, ...).
venv: $(VENV)/.installed

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.runtime
	$(BIN)/python -m lib.cli migrate

seed: migrate
	@if [ "$(CLIENTDESK_DEMO)" = "1" ]; then \
		$(BIN)/python -m lib.cli seed-demo --if-empty --clients $(CLIENTS); \
	fi

# The worker (email outbox, reminders) runs next to the app; stopping either stops both.
run: seed
	@if [ "$(CLIENTDESK_DEMO)" = "1" ]; then $(BIN)/python -m lib.cli demo-logins; fi
	@echo "Serving ClientDesk on http://$(ADDRESS):$(PORT)"
	@umask 077; $(BIN)/python -m lib.cli worker & worker=$$!; \
	$(BIN)/streamlit run serve.py --server.address $(ADDRESS) --server.port $(PORT) \
		--server.headless true & app=$$!; \
	trap 'kill $$app $$worker 2>/dev/null' INT TERM; \
	wait $$app; kill $$worker 2>/dev/null; wait

# The everyday run: every test but the `slow` ones (load, 8 writers at once, backup/restore
# round trips, the Chromium suites), with Hypothesis's small profile (tests/conftest.py).
test: venv
	HYPOTHESIS_PROFILE=fast $(BIN)/pytest -n 2 --dist loadgroup -p no:cacheprovider -m "not slow"

# Everything, with the full Hypothesis runs: what CI runs (.ci/run).
test-all: venv
	HYPOTHESIS_PROFILE=full $(BIN)/pytest -n 2 --dist loadgroup -p no:cacheprovider

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv
	$(BIN)/python bench/run.py --clients $(CLIENTS)
