# Two entry points: `make demo` (the product, end to end) and `make test` (everything CI runs).
# Both build their own virtual environment, so they work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test demo bench install clean lint system-deps postgres-deps

# System tools the tests drive for real: git (the git filter tests), runuser (the unprivileged-user test).
# Installed with apt-get when missing and we are root (as on CI); otherwise named in the error.
SYSTEM_TOOLS := git runuser

system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing" >&2; apt-get update -qq && apt-get install -y -qq git util-linux >/dev/null; \
	  else echo "make: missing system tools:$$missing (install them, e.g. apt-get install git util-linux)" >&2; exit 1; fi; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq python3-venv \
	  && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# pytest exits 5 when it collects nothing: that is a broken suite, not a pass.
# PostgreSQL server binaries for the governance tests (a throwaway cluster per session, initdb/pg_ctl).
postgres-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing: postgresql" >&2; apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
	  else echo "make: PostgreSQL server binaries missing (apt-get install postgresql)" >&2; exit 1; fi; }

test: system-deps postgres-deps $(STAMP)
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; failing on purpose" >&2; exit 1; fi; \
	exit $$rc

# Every benchmark runs our code and the named competitor side by side and prints the ratio.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_detect.py
	$(BIN)/python benchmarks/bench_scrub.py
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_broker.py

# OpenBao dev server (AppRole for the broker) + stand-in provider + JupyterLab on 127.0.0.1.
# Ctrl-C stops everything it started. DEMO_PORT=8899 make demo picks another JupyterLab port.
demo: $(STAMP)
	@DEMO_PORT=$(DEMO_PORT) $(BIN)/python -m jupyter_securellm.demo

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
