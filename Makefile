# panbench: the two commands to start with are `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
PANBENCH := $(VENV)/bin/panbench

.PHONY: setup demo test lint bench-pq clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PANBENCH) data demo
	$(PANBENCH) eval --model all --dataset demo

test: setup
	$(PY) -m pytest -q tests

lint: setup
	$(VENV)/bin/ruff check panbench tests scripts

bench-pq: setup
	$(PY) scripts/bench_pq.py

clean:
	rm -rf $(VENV) .pytest_cache
