# Developer tasks for target-restapi. Needs only Python 3.11+ and make.
#   make demo   run the target against a local receiver (see demo/run.py)
#   make test   tests, then lint (ruff and mypy)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LINT_PATHS := $(wildcard target_restapi tests benchmarks demo scripts)

.PHONY: help venv demo test pytest lint typecheck bench about readme-settings readme-check clean

help:
	@echo "make venv             create .venv: the target, editable, and the dev dependency group"
	@echo "make demo             deliver sample_data/ to a local receiver, show requests and STATE"
	@echo "make test             run the tests (pytest), then lint"
	@echo "make lint             ruff check, ruff format --check and mypy"
	@echo "make typecheck        mypy over target_restapi/ only"
	@echo "make bench            run benchmarks/run.py (BENCH_ARGS=\"--goals 2\": single mode only)"
	@echo "make about            print the target's --about in markdown"
	@echo "make readme-settings  regenerate the settings in README.md and meltano.yml"
	@echo "make readme-check     fail if README.md or meltano.yml settings are out of date"

venv: $(STAMP)

# Reinstalls whenever pyproject.toml changes; a failed install leaves no stamp.
# Dependency groups (pyproject.toml) need pip 25.1 or later: the venv's pip is upgraded first.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { \
	  rm -rf $(VENV); \
	  echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu install python3-venv" >&2; \
	  exit 1; }
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade 'pip>=25.1'
	$(PY) -m pip install --quiet --disable-pip-version-check -e . --group dev
	@touch $(STAMP)

demo: venv
	$(PY) demo/run.py

# Four pytest-xdist workers: most tests wait on loopback servers, so more workers than
# cores pays; loadgroup keeps the sshd and Meltano tests each on one worker. PYTEST_WORKERS=0
# runs in this process (for pdb, or to see a test's own timing).
PYTEST_WORKERS ?= 4

# pytest exits 5 when it collects no tests: say so loudly, but do not fail on it.
pytest: venv
	@if [ ! -d tests ]; then echo "WARNING: no tests/ folder: no tests were run"; exit 0; fi; \
	rc=0; $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "WARNING: pytest collected no tests"; exit 0; fi; \
	exit $$rc

test: pytest lint

lint: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

# mypy's settings and paths are in pyproject.toml ([tool.mypy]).
typecheck: venv
	$(VENV)/bin/mypy

bench: venv
	$(PY) -m pip install --quiet --disable-pip-version-check --group bench
	$(PY) benchmarks/run.py $(BENCH_ARGS)

about: venv
	@$(VENV)/bin/target-restapi --about --format=markdown

readme-settings: venv
	$(PY) scripts/sync_settings_docs.py

readme-check: venv
	$(PY) scripts/sync_settings_docs.py --check

clean:
	rm -rf $(VENV) demo/out .pytest_cache .ruff_cache .mypy_cache

# Meltano and container. The Meltano end-to-end test installs Meltano once into
# .cache/meltano-venv; `make test` runs it too (SKIP_MELTANO_E2E=1 skips it).
.PHONY: meltano-e2e container-test docker-build

meltano-e2e: venv
	$(PY) -m pytest -ra tests/end_to_end/test_meltano_e2e.py tests/settings/test_plugin_definition.py

container-test: venv
	$(PY) -m pytest -ra tests/end_to_end/test_container.py

docker-build:
	docker build -t target-restapi .
