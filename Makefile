# Two entry points: `make demo` (the product, end to end) and `make test` (everything CI runs).
# Both build their own virtual environment, so they work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test demo bench install clean lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# pytest exits 5 when it collects nothing: that is a broken suite, not a pass.
test: $(STAMP)
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; failing on purpose" >&2; exit 1; fi; \
	exit $$rc

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_detect.py

demo: $(STAMP)
	@echo "make demo arrives with the kernel-side issue (#5): it needs the broker and the magics." >&2
	@exit 2

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
