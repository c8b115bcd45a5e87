# liqlab: two commands on a fresh machine.
#   make app    set everything up and serve the dashboards with Voila on http://127.0.0.1:8866
#   make test   set everything up (incl. Debian chromium for browser tests) and run the whole suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8866
STAMP  := $(VENV)/.installed-app
TSTAMP := $(VENV)/.installed-test

.PHONY: app test venv browser sample bench bundle clean lab

# liqlab with everything the apps use: exchanges (ccxt), the dashboards (plotly, ipywidgets,
# anywidget, Voila, JupyterLab) and market scans (Dask); versions pinned by constraints.txt
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[all]"
	touch $(STAMP)

# ... plus the test tools
$(TSTAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(TSTAMP)

venv: $(TSTAMP)

# Debian's chromium for the real-browser tests (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
	  else sudo apt-get update && sudo apt-get install -y chromium; fi; }

app: $(STAMP)
	$(VENV)/bin/liqlab app --port $(PORT)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

test: $(TSTAMP) browser
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

sample: $(STAMP)
	$(PY) -m liqlab.sim.sample --out liqlab/sim/sample_data

bench: $(TSTAMP)
	$(PY) benchmarks/run.py

# liqlab's plotly.js (only the apps' trace types), rebuilt from the pinned npm packages in js/
bundle:
	cd js && npm ci --no-audit --no-fund && node build.mjs

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
