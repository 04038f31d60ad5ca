# `make demo` and `make test` set everything up on first use: .venv from the system python3, with every
# package pinned by constraints.txt (`make lock` refreshes the pins within pyproject's ranges).
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench lint lock

# tf-keras, for the tests that write SavedModels as the authors did, goes in --no-deps: it asks for the
# `tensorflow` wheel, which would install over tensorflow-cpu (the same `tensorflow` module, no CUDA parts).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip -c constraints.txt
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps tf-keras==2.21.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/catalogdb demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check catalogdb tests benchmarks

# The long runs (science.py, paper_scale.py) take --out DIR and are run by hand; steps.py is their runner.
bench: $(STAMP)
	for script in benchmarks/*.py; do case $$script in */steps.py|*/science.py|*/paper_scale.py) continue;; esac; \
		$(PY) $$script; done

# Resolve pyproject's ranges afresh in a throw-away venv and pin the result; then run `make test`.
lock:
	rm -rf .lock-venv && python3 -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet ".[dev]"
	( echo "# pip constraints for .[dev], made by \`make lock\` on $$(uname -m) Python $$(.lock-venv/bin/python -c 'import platform; print(platform.python_version())')"; \
	  .lock-venv/bin/python -m pip freeze --all --exclude-editable | grep -v -i '^catalogdb' ) > constraints.txt
	rm -rf .lock-venv build catalogdb.egg-info
