# panbench: the two commands to start with are `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
PANBENCH := $(VENV)/bin/panbench

.PHONY: setup setup-mmcv setup-vision demo test test-system test-vision lint bench-pq clean

# mmcv-lite and panbench's own mmcv ops: nothing compiled but panbench's C (docs/setup.md)
setup:
	@bash scripts/setup.sh

# the opt-in: mmcv 2.1.0 with its own compiled ops (a cached wheel, else a compile of 10 min to an hour);
# the venv keeps it until `PANBENCH_MMCV=lite make setup`
setup-mmcv:
	@PANBENCH_MMCV=compiled bash scripts/setup.sh

# the second environment: torch 2.14.1 with its torchvision 0.29.1, timm and detectron2's evaluation packages
# (.venv-vision, some 7 GB; docs/setup.md#the-torchvision-environment)
setup-vision:
	@PANBENCH_VISION=1 bash scripts/setup.sh

demo: setup
	$(PANBENCH) data demo
	$(PANBENCH) eval --model all --dataset demo

# what a change to the package can break: every test not marked `system`, on a worker per core (pytest-xdist, a file's
# tests in one worker; each worker's threads: tests/conftest.py), in one step (docs/testing.md, "How long")
test: setup
	$(PY) -m pytest -q -m "not system" -n auto --dist loadfile tests

# what tests the machine: the tests marked `system` (the set-up run for real, the wheel in a fresh venv, the notebook
# in a kernel, sweeps on the one-node Slurm cluster); with `make test`, every test once (docs/testing.md#two-targets).
# SYSTEM_FILES: the files that hold them, longest first (docs/testing.md, "How long"), the order in which
# pytest-xdist hands them to the workers (--no-loadscope-reorder), so that no long file is left to the end;
# tests/test_test_tree.py checks that it names each file holding a system test. TIMED_SYSTEM: those that time their
# commands' Ctrl-C and a Slurm job's checkpoint against the machine's load, run after the others, beside each other
# only (not beside the pip installs and compiles); ALONE_SYSTEM: the one that times the gaps in the commands' output,
# which any other test's load stretches, last and alone
TIMED_SYSTEM := tests/cli/test_interrupt_system.py tests/cluster/test_submit_slurm.py \
	tests/cli/test_interrupt_commands_system.py
ALONE_SYSTEM := tests/cli/test_waits_system.py
SYSTEM_FILES := tests/test_notebook.py tests/evaluation/test_batch_size.py tests/test_setup_torch.py \
	tests/evaluation/test_bench_gpu_eval.py tests/test_packaging.py tests/evaluation/test_flops.py \
	tests/evaluation/test_grid.py tests/cluster/test_slurm_launcher.py tests/integrations/test_torchmetrics_metric.py \
	tests/integrations/test_mmdet_metric.py tests/test_setup_speed.py tests/test_setup_cuda_pair.py \
	$(TIMED_SYSTEM) $(ALONE_SYSTEM)
test-system: setup
	$(PY) -m pytest -q -m system -n auto --dist loadfile --no-loadscope-reorder \
		$(filter-out $(TIMED_SYSTEM) $(ALONE_SYSTEM),$(SYSTEM_FILES))
	$(PY) -m pytest -q -m system -n auto --dist loadfile --no-loadscope-reorder $(TIMED_SYSTEM)
	$(PY) -m pytest -q -m system $(ALONE_SYSTEM)

# the tests marked `torchvision` in .venv-vision; there none may skip (tests/conftest.py)
test-vision: setup-vision
	PANBENCH_VISION_TIER=1 .venv-vision/bin/python -m pytest -q -m torchvision tests

# ruff over the code, mypy over the package (its settings in pyproject.toml); CI runs it before the tests
lint: setup
	$(VENV)/bin/ruff check panbench tests scripts
	$(VENV)/bin/mypy

bench-pq: setup
	$(PY) scripts/bench_pq.py

clean:
	rm -rf $(VENV) .venv-vision .pytest_cache
