# The two commands of the README. Both set up .venv (idempotent) first.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo bench test

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
