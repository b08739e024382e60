# The two commands of the README (demo, test), and the longer local budgets (deep). Each sets
# up .venv (idempotent) first.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo bench test deep

setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m torchnp info
	$(PY) -m torchnp demo
	$(PY) -m torchnp bench --quick

bench: setup
	$(PY) -m torchnp bench --quick

test: setup
	bash scripts/test.sh

deep: setup
	bash scripts/deep.sh
