# The suite's commands. Each one sets up what it needs first, on a fresh machine too.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)

.PHONY: run test setup lint format bench soak replay-dead-letters clean

# How many processes of a kind `make run` starts, as honcho's -c takes it (e.g.
# PROCESSES=gateway=2,guests=2); one of each by default.
PROCESSES ?=

run: setup
	@echo "Gateway: http://$${GATEWAY_ADDRESS:-127.0.0.1}:$${GATEWAY_PORT:-8000}  (docs at /docs; Ctrl-C stops everything)"
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/honcho start -f Procfile $(if $(PROCESSES),-c $(PROCESSES))

test: lint rabbitmq-management
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(STAMP)
	$(BIN)/python -m servicekit.provision

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# Integration tests give every test its own RabbitMQ vhost through the management API.
.PHONY: rabbitmq-management
rabbitmq-management:
	@curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1 || \
	  (rabbitmq-plugins enable rabbitmq_management >/dev/null && \
	   for i in $$(seq 30); do curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1 && break; sleep 1; done; \
	   curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null || \
	   { echo "RabbitMQ's management API did not come up on 127.0.0.1:15672" >&2; exit 1; })

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Measure the suite end to end on this machine (bench/run.py: `BENCH_GUESTS=1000
# BENCH_SECONDS=5 make bench` for a quick try), or 10 minutes of mixed load (bench/soak.py).
# Both run their own suite on their own databases, vhost and ports.
bench: $(STAMP) wrk
	$(BIN)/python -m bench.run

soak: $(STAMP) wrk
	$(BIN)/python -m bench.soak

# The load generator, from Debian's packages where we may install them; without it the bench
# falls back to its Python load generator.
.PHONY: wrk
wrk:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -qq wrk || { apt-get update -qq && apt-get install -y -qq wrk; }; } \
	  >/dev/null 2>&1; } || echo "wrk is not installed: the bench uses its Python load generator"

replay-dead-letters: $(STAMP)
	$(BIN)/python -m servicekit.bus replay $(QUEUE)

clean:
	rm -rf $(VENV)
