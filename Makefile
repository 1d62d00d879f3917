# The two commands of the README: `make run` and `make test` (and `make api`, the platform API).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run api test install browser faketime lint

# Suites that depend on today's date (the demo, the app on it, the pages, the journeys) run
# again with the clock moved by Debian's faketime: the Sunday Europe leaves summer time (the
# run crosses 01:00 UTC) and a leap day. faketime cannot move PostgreSQL's server clock, so
# those runs are DuckDB only (PITWALL_TEST_DUCKDB_ONLY). test_browser.py is left out: the
# journeys and test_app.py open every page already.
DATED_TESTS := tests/test_demo.py tests/test_app.py tests/test_customers.py $(wildcard tests/test_*_page*.py) \
	tests/test_journeys.py
FAKED_CLOCKS := "2026-10-25 00:58:00" "2028-02-29 12:00:00"

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

# Debian's chromium for the browser tests (Playwright drives the system binary).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's faketime for the runs of the suite with the clock moved.
faketime:
	@command -v faketime >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null; }

# The linter and the formatter's check (settings in pyproject.toml).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

run: install
	$(VENV)/bin/streamlit run dashboard/app.py

# The platform API (docs/api.md); on the embedded database stop `make run` first (one writer per file).
API_HOST ?= 127.0.0.1
API_PORT ?= 8000
api: install
	$(PY) -m dashboard api --host $(API_HOST) --port $(API_PORT)

# The clocks' runs go side by side (the machine has two cores), each with its own temporary
# directory and log, printed when both are done.
test: install browser faketime lint
	$(PY) -m pytest -q
	@runs=$$(mktemp -d); i=0; \
	for clock in $(FAKED_CLOCKS); do i=$$((i + 1)); \
		( TZ=UTC PITWALL_TEST_DUCKDB_ONLY=true faketime "$$clock" $(PY) -m pytest -q -p no:cacheprovider \
			--basetemp=$$runs/tmp$$i $(DATED_TESTS) > $$runs/$$i.log 2>&1; echo $$? > $$runs/$$i.status ) & \
	done; wait; \
	failed=0; i=0; \
	for clock in $(FAKED_CLOCKS); do i=$$((i + 1)); \
		echo "The date-dependent suites with the clock at $$clock UTC:"; cat $$runs/$$i.log; \
		[ "$$(cat $$runs/$$i.status)" = 0 ] || failed=1; \
	done; \
	rm -rf $$runs; exit $$failed
