# ClientDesk — two commands: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
# Only this machine can connect unless told otherwise (ADDRESS=0.0.0.0 behind a TLS proxy).
ADDRESS ?= 127.0.0.1
CLIENTS ?= 300
# `make run` serves the demo practice; set CLIENTDESK_DEMO=0 (and a cookie key) for real use.
export CLIENTDESK_DEMO ?= 1

.PHONY: run test venv migrate seed lint format bench clean-data

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

migrate: venv
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

test: venv
	$(BIN)/pytest -n 2 --dist loadgroup -p no:cacheprovider

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv
	$(BIN)/python bench/run.py --clients $(CLIENTS)
