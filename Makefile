# `make run` and `make test` work on a fresh machine: they create .venv/ when it is missing.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bench-installed
PYTEST_ARGS ?=

.PHONY: install run test test-fast leaderboard bench-all clean

install: $(STAMP)

# Reinstalls only when the project's dependencies change, so a second `make install` is instant.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[passt,tensorboard,wandb,hf,browser,slurm,test,docs]"
	@touch $(STAMP)

# Your runs' results go to runs/results, so the committed leaderboard stays as CI checks it;
# a second `make run` finds the finished run and only prints its table.
run: install
	$(VENV)/bin/bench run --results-dir runs/results

test: install
	HYPOTHESIS_PROFILE=full $(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

leaderboard: install
	$(VENV)/bin/bench leaderboard

clean:
	rm -rf $(VENV) build *.egg-info
