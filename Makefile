# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv, installs kpod into it, and runs.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
DEMO_OUT ?= runs/demo

.PHONY: demo test install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/kpod demo --out $(DEMO_OUT)

test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 --durations=15

clean:
	rm -rf $(VENV) runs .pytest_cache
