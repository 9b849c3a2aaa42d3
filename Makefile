# The two commands of the README. Both build the virtualenv they need, so a fresh clone works.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: example test venv lint bench faults-long

$(BIN)/pipelined: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,test]'
	touch $@

venv: $(BIN)/pipelined

example: $(BIN)/pipelined
	$(BIN)/pipelined dev -c config/example.yaml

test: $(BIN)/pipelined
	@command -v mosquitto >/dev/null 2>&1 || command -v /usr/sbin/mosquitto >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq mosquitto >/dev/null)
	@# promtool (Debian's prometheus package) checks deploy/prometheus/alerts.yaml in tests/test_deploy.py.
	@command -v promtool >/dev/null 2>&1 \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null)
	$(BIN)/ruff check pipelined tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(BIN)/pipelined
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/isolation.py
	$(BIN)/python bench/sqs.py
	$(BIN)/python bench/streams.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/gateway.py
	$(BIN)/python bench/runtimes.py
	$(BIN)/python bench/log_store.py

# The fault suite with ten times the kills and records (release checks; it is in `make test` at 1x).
faults-long: $(BIN)/pipelined
	PIPELINED_FAULTS_SCALE=10 $(BIN)/python -m pytest -q -s tests/faults
