# The two commands of the README (demo, test), the suite under ASan + UBSan (sanitize), the
# longer local budgets (deep) and the wheel + sdist (wheel, into dist/). Each sets up .venv (idempotent) first.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo bench test sanitize deep wheel

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

sanitize: setup
	bash scripts/sanitize.sh

deep: setup
	bash scripts/deep.sh

wheel: setup
	bash scripts/wheel.sh --sdist
