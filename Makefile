# panbench: the two commands to start with are `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
PANBENCH := $(VENV)/bin/panbench

.PHONY: setup setup-mmcv demo test lint bench-pq clean

# mmcv-lite and panbench's own mmcv ops: nothing compiled but panbench's C (docs/setup.md)
setup:
	@bash scripts/setup.sh

# the opt-in: mmcv 2.1.0 with its own compiled ops (a cached wheel, else a compile of 10 min to an hour);
# the venv keeps it until `PANBENCH_MMCV=lite make setup`
setup-mmcv:
	@PANBENCH_MMCV=compiled bash scripts/setup.sh

demo: setup
	$(PANBENCH) data demo
	$(PANBENCH) eval --model all --dataset demo

test: setup
	$(PY) -m pytest -q tests

# ruff over the code, mypy over the package (its settings in pyproject.toml); CI runs it before the tests
lint: setup
	$(VENV)/bin/ruff check panbench tests scripts
	$(VENV)/bin/mypy

bench-pq: setup
	$(PY) scripts/bench_pq.py

clean:
	rm -rf $(VENV) .pytest_cache
