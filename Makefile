# `make run` and `make test` create or reuse .venv; nothing else needs to be installed first.
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# torch and torchvision are pinned together: this pair is on the build machines' disk.
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: run test lint bench docs clean compare-tools browser screenshot zoo torchvision-published parallel-real

$(VENV)/.ready: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]' $(TORCH)
	touch $@

run: $(VENV)/.ready
	$(VENV)/bin/flopwise

# The HTML report's tests drive Debian's headless chromium: installed here when missing (as root, else via sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "chromium is missing and there is no apt-get: install chromium for the browser tests"; exit 0; fi; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

test: $(VENV)/.ready browser
	$(PY) -m pytest
	$(PY) -m ruff check src tests bench scripts
	$(PY) -m ruff format --check src tests bench scripts
	$(PY) -m mypy

lint: $(VENV)/.ready
	$(PY) -m ruff check src tests bench scripts
	$(PY) -m ruff format --check src tests bench scripts
	$(PY) -m mypy

bench: $(VENV)/.ready
	$(PY) bench/counting_overhead.py
	$(PY) bench/sweep_speed.py
	$(PY) bench/measure_models.py
	$(PY) bench/generate_speed.py

# docs/html_report.png, the README's picture of the HTML report of the guides' three models
screenshot: $(VENV)/.ready browser
	$(PY) -m tests.browser docs/html_report.png

# The full zoo (timm families, diffusers, peft, MoE, CLIP, every transformers model type): about 5 minutes on 2 cores;
# then every torchvision figure published in meta["_ops"] (below).
zoo: $(VENV)/.ready
	$(PY) bench/zoo.py --out docs/zoo.md
	$(PY) bench/torchvision_published.py

# Every torchvision weights entry that publishes its GMACs (meta["_ops"]) beside flopwise's count of the same model on
# the same input, one row each (about 11 minutes on 2 cores); `make test` runs a sample
# (tests/test_torchvision_published.py, all of it with FLOPWISE_TORCHVISION_PUBLISHED=all).
torchvision-published: $(VENV)/.ready
	$(PY) bench/torchvision_published.py

# Parallel plans against real torchrun runs on gloo, the 4-process matrix included (tp=4, dp=4, dp=2×tp=2,
# pp=2×tp=2; dp=2×ep=2×tp=2, dp=4×ep=2, dp=2×cp=2; a few minutes on 2 cores); `make test` runs the 2-process ones
# (tp=2, dp=2, pp=2, dp=2×ep=2, cp=2).
parallel-real: $(VENV)/.ready
	FLOPWISE_PARALLEL_REAL=all $(PY) -m pytest -q tests/test_parallel_real.py tests/test_parallel_real_experts.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info

# Other FLOP counters beside flopwise (docs/comparison.md); they live in their own venv, never in .venv.
COMPARE := build/compare-venv
compare-tools:
	test -x $(COMPARE)/bin/python || $(PYTHON) -m venv $(COMPARE)
	$(COMPARE)/bin/pip install -q $(TORCH) transformers -r bench/requirements-compare.txt
	$(COMPARE)/bin/pip install -q --no-deps -e .
	$(COMPARE)/bin/python bench/compare_tools.py
