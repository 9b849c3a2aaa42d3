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
	@# The cluster tests need PostgreSQL on 127.0.0.1:5432 with trust for the postgres role.
	@pg_isready -q -h 127.0.0.1 || ( \
		(command -v pg_ctlcluster >/dev/null || (apt-get update -qq && apt-get install -y -qq postgresql >/dev/null)) \
		&& v=$$(ls /etc/postgresql | sort -n | tail -1) \
		&& sed -i 's/^\(host .*127.0.0.1\/32 *\)[a-z0-9-]*$$/\1trust/' /etc/postgresql/$$v/main/pg_hba.conf \
		&& (pg_ctlcluster $$v main start || pg_ctlcluster $$v main reload) \
		&& for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 && break; sleep 1; done )
	$(BIN)/ruff check pipelined tests bench
	$(BIN)/mypy
	@# Bytecode once, up front: this machine sets PYTHONDONTWRITEBYTECODE, and every daemon and CLI
	@# subprocess of the suite would otherwise compile pipelined anew (about 0.4 s each).
	$(BIN)/python -m compileall -q pipelined tests >/dev/null
	@# Two workers (pytest-xdist); each has its own moto server and its own slice of ports (tests/support.py).
	$(BIN)/python -m pytest -q -n auto --maxprocesses 2

bench: $(BIN)/pipelined
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/isolation.py
	$(BIN)/python bench/sqs.py
	$(BIN)/python bench/streams.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/gateway.py
	$(BIN)/python bench/runtimes.py
	$(BIN)/python bench/log_store.py
	$(BIN)/python bench/cluster.py

# The fault and cluster suites with ten times the kills, records and ticks (release checks; both are in
# `make test` at 1x).
faults-long: $(BIN)/pipelined
	PIPELINED_FAULTS_SCALE=10 $(BIN)/python -m pytest -q -s tests/faults tests/cluster
